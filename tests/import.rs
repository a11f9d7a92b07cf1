//! `migbench import` of `vllm bench serve --save-result` files: migbench's own files imported
//! back give the same figures; an imported run sits beside a simulated one in a report and is
//! refused by `compare` against it (simulated and measured are never compared), while two
//! imports compare; a detailed file gives each request; a bad file exits 2 at its place and
//! writes nothing.

mod common;

use std::path::{Path, PathBuf};

use common::{migbench, ran, run_dir, run_sim_output, table};
use polars::prelude::*;

/// A small sweep: one server on the whole GPU, two on MIG instances, at one and four users.
/// The `[load]` of the sweep scenario ([`common::sweep_scenario`]).
const SWEEP_LOAD: &str = r#"endpoint = "chat"
requests = 16
warmup_requests = 1
input_tokens = 128
output_tokens = 32
ignore_eos = true
slo = { ttft_ms = 500, tpot_ms = 20 }
sweep = { concurrencies = [1, 4], trim = 0.1 }"#;

/// The sweep, run once per test binary.
fn sweep_run() -> &'static Path {
    static RUN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    RUN.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("import-sweep");
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).unwrap();
        let scenario = out.join("sweep.toml");
        std::fs::write(&scenario, common::sweep_scenario(SWEEP_LOAD)).unwrap();
        let (dir, output) = run_sim_output(&scenario, &out.join("runs"), &[]);
        ran(&output);
        dir
    })
}

/// The `vllm bench serve` files of `run`.
fn vllm_files(run: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(run.join("vllm"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// `migbench import --gpu a100-80gb --out OUT ARGS... FILES...`; returns the run directory.
fn import(out: &Path, args: &[&str], files: &[PathBuf]) -> PathBuf {
    let done = migbench()
        .args(["import", "--gpu", "a100-80gb", "--out"])
        .arg(out)
        .args(args)
        .args(files)
        .output()
        .unwrap();
    ran(&done);
    run_dir(out)
}

/// A variant row of `serving`: its variant and point, and every figure's column and value.
type VariantRow = ((String, Option<u32>), Vec<String>);

/// Each variant row of `serving`, in order of variant and point.
fn variant_rows(dir: &Path) -> Vec<VariantRow> {
    let df = table(dir, "serving");
    let df = df
        .lazy()
        .filter(col("scope").eq(lit("variant")))
        .collect()
        .unwrap();
    let figures: Vec<&str> = df
        .get_column_names()
        .into_iter()
        .map(|c| c.as_str())
        .filter(|c| {
            ![
                "mode",
                "backend",
                "price_per_hour",
                "cost_per_million_output_tokens",
                "note",
                "model",
                "repetition",
                "rounds",
            ]
            .contains(c)
        })
        .collect();
    let mut rows: Vec<_> = (0..df.height())
        .map(|i| {
            let cell = |c: &str| df.column(c).unwrap().get(i).unwrap().to_string();
            let point = df.column("point").unwrap().u32().unwrap().get(i);
            let key = (cell("variant"), point);
            (
                key,
                figures.iter().map(|c| format!("{c}={}", cell(c))).collect(),
            )
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn migbench_s_own_vllm_files_import_back_with_the_same_figures() {
    let run = sweep_run();
    let files = vllm_files(run);
    assert_eq!(files.len(), 4, "{files:?}");
    let out = tempfile::tempdir().unwrap();
    let imported = import(out.path(), &["--mode", "mig"], &files);
    // Every figure of every point, to the bit: the load, the servers, vLLM's keys, attainment.
    let (ours, back) = (variant_rows(run), variant_rows(&imported));
    assert_eq!(back.len(), 4);
    assert_eq!(ours, back);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(imported.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["imported_from"], "vllm bench serve");
    assert_eq!(manifest["backend"], "imported");
    assert_eq!(manifest["simulated"], false);
    // The points are read back in order of load.
    let serving = table(&imported, "serving");
    assert!(serving
        .column("backend")
        .unwrap()
        .str()
        .unwrap()
        .into_iter()
        .all(|b| b == Some("imported")));
}

#[test]
fn an_imported_run_sits_beside_a_simulated_one_in_report_and_compare() {
    let run = sweep_run();
    let out = tempfile::tempdir().unwrap();
    let files = vllm_files(run);
    // Under the simulated run's scenario name, so that compare matches their variants.
    let same = ["--scenario", "sweep"];
    let imported = import(&out.path().join("a"), &same, &files);
    // Both runs in one report: the imported one labelled with the tool that measured it.
    let done = migbench()
        .arg("report")
        .arg(run)
        .arg(&imported)
        .arg("--out")
        .arg(out.path().join("report"))
        .output()
        .unwrap();
    ran(&done);
    let data: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.path().join("report").join("report.json")).unwrap(),
    )
    .unwrap();
    let origins: Vec<(String, bool)> = data["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["backend"].as_str().unwrap().to_string(),
                r["simulated"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(
        origins.contains(&("vllm bench serve".into(), false)),
        "{origins:?}"
    );
    assert!(origins.contains(&("sim".into(), true)), "{origins:?}");
    // The imported sweep's points are in the report's sweep table beside the simulated ones.
    let sweep = data["sweep"].as_array().unwrap();
    let imported_points = sweep
        .iter()
        .filter(|p| p["backend"] == "vllm bench serve")
        .count();
    assert_eq!(imported_points, 4, "{sweep:?}");
    assert_eq!(sweep.len(), 8);
    let md = std::fs::read_to_string(out.path().join("report").join("report.md")).unwrap();
    assert!(md.contains("measured (vllm bench serve)"), "{md}");

    // compare never sets measured against simulated figures: refused, exit 2.
    let refused = common::compare(run, &imported).code(2);
    let err = String::from_utf8_lossy(&refused.get_output().stderr).to_string();
    assert!(err.contains("simulated"), "{err}");

    // Two imports compare; a variant whose throughput halved is a regression (exit 1). One
    // load each (compare sets a variant's figures side by side, not a sweep's points).
    let worse_dir = out.path().join("worse-files");
    std::fs::create_dir_all(&worse_dir).unwrap();
    let first: Vec<PathBuf> = files
        .iter()
        .filter(|f| f.to_string_lossy().ends_with("-p0.json"))
        .cloned()
        .collect();
    assert_eq!(first.len(), 2);
    let mut worse = Vec::new();
    for f in &first {
        let mut json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
        if f.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("full-")
        {
            let t = json["output_throughput"].as_f64().unwrap();
            json["output_throughput"] = (t / 2.0).into();
        }
        let to = worse_dir.join(f.file_name().unwrap());
        std::fs::write(&to, serde_json::to_vec(&json).unwrap()).unwrap();
        worse.push(to);
    }
    let candidate = import(&out.path().join("b"), &same, &worse);
    let before = import(&out.path().join("c"), &same, &first);
    let again = import(&out.path().join("d"), &same, &first);
    common::compare(&before, &again).success();
    let regressed = common::compare(&before, &candidate).code(1);
    let err = String::from_utf8_lossy(&regressed.get_output().stderr).to_string();
    assert!(err.contains("full"), "{err}");
}

#[test]
fn a_detailed_file_gives_each_request_and_files_at_several_rates_a_sweep() {
    let out = tempfile::tempdir().unwrap();
    let file = |rate: f64, ttft: f64| {
        serde_json::json!({
            "date": "20261206-120000", "backend": "openai-chat", "label": "vllm-4b",
            "model_id": "Qwen/Qwen3-4B", "request_rate": rate, "max_concurrency": null,
            "duration": 2.0, "completed": 2, "failed": 1, "total_input_tokens": 30,
            "total_output_tokens": 5, "request_throughput": 1.0, "output_throughput": 2.5,
            "total_token_throughput": 17.5,
            "mean_ttft_ms": ttft * 1000.0, "median_ttft_ms": ttft * 1000.0, "std_ttft_ms": 0.0,
            "p99_ttft_ms": ttft * 1000.0,
            "input_lens": [10, 20, 5], "output_lens": [3, 2, 0], "ttfts": [ttft, ttft, 0.0],
            "itls": [[0.05, 0.05], [0.1], []], "errors": ["", "", "HTTP 500"],
            "latencies": [ttft + 0.15, ttft + 0.2, 0.0], "start_times": [1000.5, 1001.0, 1001.25],
        })
    };
    let mut files = Vec::new();
    // Written out of order: the points follow the rate.
    for (name, rate, ttft) in [("b.json", 8.0, 0.3), ("a.json", 2.0, 0.1)] {
        let path = out.path().join(name);
        std::fs::write(&path, serde_json::to_vec(&file(rate, ttft)).unwrap()).unwrap();
        files.push(path);
    }
    let dir = import(&out.path().join("runs"), &["--mode", "mps"], &files);
    let requests = table(&dir, "requests");
    assert_eq!(requests.height(), 6);
    let ttft = requests.column("ttft_ms").unwrap().f64().unwrap();
    let point = requests.column("point").unwrap().u32().unwrap();
    let rows: Vec<(Option<u32>, Option<f64>)> = point.into_iter().zip(ttft).collect();
    assert_eq!(rows[0], (Some(0), Some(100.0)));
    assert_eq!(rows[3], (Some(1), Some(300.0)));
    // The failed request has no TTFT and keeps its error.
    assert_eq!(rows[2], (Some(0), None));
    let errors = requests.column("error").unwrap().str().unwrap();
    assert_eq!(errors.get(2), Some("HTTP 500"));
    // vLLM's own latencies (beyond TTFT plus the gaps), and its send times from the first.
    let e2el = requests.column("e2el_ms").unwrap().f64().unwrap();
    assert!((e2el.get(0).unwrap() - 250.0).abs() < 1e-9, "{e2el:?}");
    assert!((e2el.get(1).unwrap() - 300.0).abs() < 1e-9, "{e2el:?}");
    let sent = requests.column("sent_s").unwrap().f64().unwrap();
    let sent: Vec<Option<f64>> = sent.into_iter().take(3).collect();
    assert_eq!(sent, [Some(0.0), Some(0.5), Some(0.75)]);
    let serving = table(&dir, "serving");
    let rate = serving.column("request_rate").unwrap().f64().unwrap();
    let points = serving.column("point").unwrap().u32().unwrap();
    let scopes = serving.column("scope").unwrap().str().unwrap();
    let variant_rows: Vec<(Option<u32>, Option<f64>)> = (0..serving.height())
        .filter(|&i| scopes.get(i) == Some("variant"))
        .map(|i| (points.get(i), rate.get(i)))
        .collect();
    assert_eq!(variant_rows, [(Some(0), Some(2.0)), (Some(1), Some(8.0))]);
    // The file has no p90: the TTFT summary is computed from its two completed requests.
    let p90 = serving.column("p90_ttft_ms").unwrap().f64().unwrap();
    assert!((p90.get(0).unwrap() - 100.0).abs() < 1e-9);
    let modes = table(&dir, "variants");
    assert_eq!(
        modes.column("mode").unwrap().str().unwrap().get(0),
        Some("mps")
    );
}

#[test]
fn a_bad_file_exits_2_at_its_place_and_writes_nothing() {
    let out = tempfile::tempdir().unwrap();
    let good = out.path().join("good.json");
    std::fs::write(&good, r#"{"duration": 1.0, "completed": 1}"#).unwrap();
    for (text, at, says) in [
        (
            "{\"duration\": 1.0,\n \"completed\": 1,,}",
            ":2:17:",
            "allowed: the JSON object",
        ),
        (
            "{\"duration\": 1.0, \"completed\": 1,\n  \"p99_ttft_ms\": -4.5}",
            ":2:3:",
            "'p99_ttft_ms' is -4.5; allowed: a number of 0 or more, or null",
        ),
        (
            "{\"duration\": 1.0, \"completed\": 1, \"ttfts\": [0.1],\n \"itls\": [[0.1]]}",
            ":1:1:",
            "no 'input_lens' beside the other per-request lists",
        ),
    ] {
        let bad = out.path().join("bad.json");
        std::fs::write(&bad, text).unwrap();
        let runs = out.path().join("runs");
        let done = migbench()
            .args(["import", "--gpu", "a100-80gb", "--out"])
            .arg(&runs)
            .arg(&good)
            .arg(&bad)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&done.stderr);
        assert_eq!(done.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!("bad.json{at}")) && err.contains(says),
            "{err}"
        );
        assert!(!runs.exists(), "nothing is written for a bad file");
    }
    // An unknown GPU and an unknown mode are refused with what is allowed.
    let done = migbench()
        .args(["import", "--gpu", "a100-80gb", "--mode", "shared"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(done.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&done.stderr)
        .contains("allowed: full, timeslice, mps, mig, mig+mps"));
}

#[test]
fn vllm_bench_files_import_as_vllm_bench_serve_s_and_multi_turn_ones_are_refused() {
    let out = tempfile::tempdir().unwrap();
    // Two points of a `vllm-bench --sweep-max-concurrency 1,4` run: vLLM's keys, and its own
    // (`steady_state`, `endpoint_type`, `input_throughput`, `rtfx`, `failed_requests`).
    let point = |concurrency: u32, throughput: f64, ttft: f64, steady: &str| {
        format!(
            r#"{{"date": "20261206-101500", "endpoint_type": "openai-chat", "backend": "openai-chat",
  "label": null, "model_id": "Qwen/Qwen3-4B", "tokenizer_id": null, "num_prompts": 40,
  "max_model_len": null, "request_rate": "inf", "burstiness": 1.0,
  "max_concurrency": {concurrency}, "duration": 20.0, "completed": 39, "failed": 1,
  "total_input_tokens": 9984, "total_output_tokens": 4992, "request_throughput": {throughput},
  "request_goodput": null, "input_throughput": 499.2, "output_throughput": 249.6,
  "total_token_throughput": 748.8, "max_output_tokens_per_s": 300.0,
  "max_concurrent_requests": {concurrency}, "rtfx": 0.0,
  "failed_requests": [{{"index": 7, "error": "timeout", "ttft": 0.0, "itl": [],
    "output_tokens": 0, "start_time": 3.5, "latency": 0.0}}],
  "mean_ttft_ms": {ttft}, "median_ttft_ms": {ttft}, "std_ttft_ms": 1.0, "p99_ttft_ms": 90.0,
  "mean_tpot_ms": 12.0, "median_tpot_ms": 12.0, "std_tpot_ms": 0.5, "p99_tpot_ms": 14.0,
  "mean_itl_ms": 12.0, "median_itl_ms": 12.0, "std_itl_ms": 0.5, "p99_itl_ms": 15.0,
  "mean_e2el_ms": 900.0, "median_e2el_ms": 880.0, "std_e2el_ms": 40.0, "p99_e2el_ms": 1000.0,
  "steady_state": {steady}}}"#
        )
    };
    let files = [
        (1, 1.95, 40.0, "null"),
        (
            4,
            6.5,
            60.0,
            r#"{"request_throughput": 6.9, "output_throughput": 260.0}"#,
        ),
    ]
    .map(|(c, tput, ttft, steady)| {
        let file = out
            .path()
            .join(format!("openai-chat-infqps-concurrency{c}.json"));
        std::fs::write(&file, point(c, tput, ttft, steady)).unwrap();
        file
    });
    let dir = import(
        &out.path().join("runs"),
        &["--variant", "full-1x4b"],
        &files,
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["imported_from"], "vllm-bench");
    // Two points of a sweep, in order of concurrency, with the files' whole-run figures.
    let rows = variant_rows(&dir);
    let points: Vec<Option<u32>> = rows.iter().map(|((_, point), _)| *point).collect();
    assert_eq!(points, [Some(0), Some(1)]);
    assert!(rows
        .iter()
        .all(|((variant, _), _)| variant.contains("full-1x4b")));
    let serving = table(&dir, "serving");
    let throughput: Vec<Option<f64>> = serving
        .column("request_throughput")
        .unwrap()
        .f64()
        .unwrap()
        .into_iter()
        .collect();
    assert!(throughput.contains(&Some(1.95)) && throughput.contains(&Some(6.5)));
    assert!(
        !throughput.contains(&Some(6.9)),
        "the steady-state window is not read"
    );
    // The report names the tool that measured it.
    let report = migbench()
        .args(["report", "--out"])
        .arg(out.path().join("report"))
        .arg(&dir)
        .output()
        .unwrap();
    ran(&report);
    let md = std::fs::read_to_string(out.path().join("report/report.md")).unwrap();
    assert!(md.contains("measured (vllm-bench)"), "{md}");

    // A multi-turn result counts conversations: refused at its mode, nothing written.
    let multi = out.path().join("multi.json");
    std::fs::write(
        &multi,
        "{\"date\": \"20261206-101500\",\n  \"mode\": \"multi_turn\", \"duration\": 20.0, \"completed\": 80}",
    )
    .unwrap();
    let runs = out.path().join("multi-runs");
    let done = migbench()
        .args(["import", "--gpu", "a100-80gb", "--out"])
        .arg(&runs)
        .arg(&multi)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(2), "{err}");
    assert!(
        err.contains("multi.json:2:3:") && err.contains("multi-turn results"),
        "{err}"
    );
    assert!(!runs.exists());
}
