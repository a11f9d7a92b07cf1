//! Serving scenarios end to end on the simulator: vLLM-like servers started as jobs, driven by
//! the load generator, and recorded in the `requests` and `serving` tables, which are read back
//! and checked against each other and against the simulated physics. Also: servers that run out
//! of memory or never get ready are recorded as such and the run goes on; bad serving input is
//! rejected with its place in the file.

mod common;

use std::path::Path;

use common::{migbench, ran, run_sim_output, table};
use polars::prelude::*;

/// The serving tests sample VRAM every 20 simulated milliseconds.
const SAMPLE_OFTEN: &[&str] = &["--sample-ms", "20"];

/// A column of `df` where `keep` holds, as f64 (nulls as NaN).
fn floats(df: &DataFrame, column: &str) -> Vec<f64> {
    let c = df.column(column).unwrap().cast(&DataType::Float64).unwrap();
    c.f64()
        .unwrap()
        .iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect()
}

fn strings(df: &DataFrame, column: &str) -> Vec<String> {
    let c = df.column(column).unwrap();
    c.str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap_or("").to_string())
        .collect()
}

fn near(actual: f64, expected: f64, tolerance: f64) -> bool {
    (actual - expected).abs() <= expected.abs() * tolerance
}

/// The `serving` row of a variant (scope `variant`) as column -> value.
struct Row<'a> {
    df: &'a DataFrame,
    i: usize,
}

impl Row<'_> {
    fn f(&self, column: &str) -> f64 {
        floats(self.df, column)[self.i]
    }
    fn s(&self, column: &str) -> String {
        strings(self.df, column)[self.i].clone()
    }
}

fn rows<'a>(df: &'a DataFrame, variant: &str, scope: &str) -> Vec<Row<'a>> {
    let (v, s) = (strings(df, "variant"), strings(df, "scope"));
    (0..df.height())
        .filter(|&i| v[i] == variant && s[i] == scope)
        .map(|i| Row { df, i })
        .collect()
}

#[test]
fn the_a100_qwen3_scenario_runs_and_its_tables_agree() {
    let out = tempfile::tempdir().unwrap();
    let (dir, output) = run_sim_output(
        Path::new("scenarios/a100-qwen3.toml"),
        out.path(),
        SAMPLE_OFTEN,
    );
    let stdout = ran(&output);
    assert!(stdout.contains("TPOT p50 ms"), "{stdout}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    // The scenario's old `time_scale` is ignored: simulated time advances by events.
    assert_eq!(manifest["clock"], "simulated");
    assert_eq!(manifest["pace"], serde_json::Value::Null);

    let serving = table(&dir, "serving");
    let requests = table(&dir, "requests");
    let servers_per_variant = [
        ("full-1x4b", 1.0),
        ("mps-2x4b", 2.0),
        ("mps-4x4b", 4.0),
        ("mig-2x2g", 2.0),
        ("mig-4x1g", 4.0),
        ("mig-14b-2x4b", 3.0),
    ];
    let (req_variant, req_warmup, req_error) = (
        strings(&requests, "variant"),
        requests.column("warmup").unwrap().bool().unwrap().clone(),
        strings(&requests, "error"),
    );
    let (req_out, req_ttft, req_tpot, req_e2el) = (
        floats(&requests, "output_tokens"),
        floats(&requests, "ttft_ms"),
        floats(&requests, "tpot_ms"),
        floats(&requests, "e2el_ms"),
    );
    for (variant, servers) in servers_per_variant {
        let v = rows(&serving, variant, "variant");
        assert_eq!(v.len(), 1, "{variant}");
        let v = &v[0];
        // 32 measured requests per server, none failed; warm-ups left out.
        assert_eq!(v.f("servers"), servers);
        assert_eq!(v.f("completed"), 32.0 * servers, "{variant}");
        assert_eq!(v.f("failed"), 0.0);
        // The throughputs are the totals over the duration...
        let duration = v.f("duration");
        assert!(near(
            v.f("output_throughput"),
            v.f("total_output_tokens") / duration,
            1e-9
        ));
        assert!(near(
            v.f("request_throughput"),
            v.f("completed") / duration,
            1e-9
        ));
        assert!(near(
            v.f("total_token_throughput"),
            (v.f("total_input_tokens") + v.f("total_output_tokens")) / duration,
            1e-9
        ));
        // ...and the totals are the sums of the requests table.
        let measured: Vec<usize> = (0..requests.height())
            .filter(|&i| req_variant[i] == variant && !req_warmup.get(i).unwrap())
            .collect();
        assert_eq!(measured.len() as f64, 32.0 * servers);
        assert!(measured.iter().all(|&i| req_error[i].is_empty()));
        let tokens: f64 = measured.iter().map(|&i| req_out[i]).sum();
        assert_eq!(tokens, v.f("total_output_tokens"), "{variant}");
        // Per request: TPOT = (E2E - TTFT) / (output tokens - 1); lengths within 128 +- 25 %.
        for &i in &measured {
            assert!((96.0..=160.0).contains(&req_out[i]), "{}", req_out[i]);
            let tpot = (req_e2el[i] - req_ttft[i]) / (req_out[i] - 1.0);
            assert!(near(req_tpot[i], tpot, 1e-9));
        }
        // Servers' rows add up to the variant's.
        let per_server = rows(&serving, variant, "server");
        assert_eq!(per_server.len() as f64, servers);
        let sum: f64 = per_server.iter().map(|s| s.f("total_output_tokens")).sum();
        assert_eq!(sum, v.f("total_output_tokens"));
        assert!(per_server.iter().all(|s| s.s("server_outcome") == "ok"));
        assert!(per_server
            .iter()
            .all(|s| s.f("duration") <= duration + 1e-9));
        // Cost: EUR 1.89 per GPU-hour over the duration, per million output tokens.
        let cost = 1.89 * duration / 3600.0 / (v.f("total_output_tokens") / 1e6);
        assert!(near(v.f("cost_per_million_output_tokens"), cost, 1e-9));
    }

    // The simulated physics: a decode step's work is the same everywhere, so TPOT scales as
    // 1 / s^alpha with the SM share s (alpha = 0.669 for qwen3-4b, reference A100, 108 SMs).
    let tpot = |variant: &str| rows(&serving, variant, "variant")[0].f("median_tpot_ms");
    let full = tpot("full-1x4b");
    for (variant, share) in [
        ("mig-4x1g", 14.0 / 108.0),
        ("mig-2x2g", 28.0 / 108.0),
        ("mps-2x4b", 0.5),
        ("mps-4x4b", 0.25),
    ] {
        let expected = full / f64::powf(share, 0.669);
        let got = tpot(variant);
        assert!(
            // The model's own spread: a step also costs a pass over the weights and prefill,
            // whose share differs a little between variants; scheduling adds nothing any more.
            near(got, expected, 0.03),
            "{variant}: median TPOT {got:.2} ms, expected {expected:.2} ms from {full:.2} ms on the whole GPU"
        );
    }

    // Memory as vLLM takes it: the fraction of its device, held from halfway through start-up.
    let jobs = table(&dir, "jobs");
    let (variant, peak) = (strings(&jobs, "variant"), floats(&jobs, "vram_peak_gib"));
    let constant = floats(&jobs, "vram_constant_gib");
    let held = |v: &str| {
        (0..jobs.height())
            .filter(|&i| variant[i] == v)
            .map(|i| (peak[i], constant[i]))
            .collect::<Vec<(f64, f64)>>()
    };
    assert_eq!(held("full-1x4b"), [(72.0, 72.0)], "0.9 of 80 GiB");
    assert_eq!(held("mps-2x4b"), [(36.0, 36.0); 2], "0.45 of 80 GiB each");
    // 0.9 of a 1g.10gb's 9.5 GiB; the constant level is counted in 0.25 GiB bins.
    for (p, c) in held("mig-4x1g") {
        assert!(near(p, 8.55, 1e-9) && c == 8.5, "{p} {c}");
    }

    // serving.json: vLLM's keys and per-request lists for each server.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("serving.json")).unwrap()).unwrap();
    let variants = json["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 6);
    let mig = variants
        .iter()
        .find(|v| v["variant"] == "mig-4x1g")
        .unwrap();
    assert!(mig["metrics"]["p99_ttft_ms"].as_f64().unwrap() > 0.0);
    for server in mig["servers"].as_array().unwrap() {
        assert_eq!(server["ttfts"].as_array().unwrap().len(), 32);
        assert_eq!(server["itls"].as_array().unwrap().len(), 32);
        assert_eq!(server["model"], "Qwen/Qwen3-4B");
    }
}

/// A server workload for test scenarios.
fn server(name: &str, startup_s: f64, ready_timeout_s: f64, extra: &str) -> String {
    format!(
        r#"
[workloads.{name}]
name = "{name}"
title = "{name}"
kind = "server"
unit = "request"
command = ["serve", "--port", "{{port}}"]
server = {{ ready_timeout_s = {ready_timeout_s:?} }}
[workloads.{name}.memory]
constant_gib = 8.0
peak_gib = 8.0
source = "test"
[workloads.{name}.sim]
alpha = 0.7
peak_at = 0.0
peak_for = 0.0
source = "test"
[workloads.{name}.sim.server]
reference_gpu = "a100-80gb"
weights_gib = 7.9
kv_mib_per_token = 0.140625
memory_fraction = 0.9
prefill_tokens_per_s = 20000
decode_tokens_per_s = 140
batch_decode_tokens_per_s = 5000
startup_s = {startup_s:?}
source = "test"
{extra}
"#
    )
}

#[test]
fn servers_that_run_out_of_memory_or_never_get_ready_are_recorded_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
[scenario]
name = "serving-failures"
time_scale = 50

[gpu]
model = "a100-80gb"

[load]
requests = 4
max_concurrency = 2
input_tokens = 16
output_tokens = 8
{}{}{}
# Two servers that each take 0.9 of the GPU: the second cannot get its KV cache.
[[variants]]
name = "mps-both-greedy"
mode = "mps"
jobs = [{{ workload = "greedy", count = 2 }}]

# Ready only after 100 s, given 10: stopped and recorded; then the next server runs.
[[variants]]
name = "slow-then-ok"
mode = "full"
jobs = [{{ workload = "slow" }}, {{ workload = "greedy" }}]

# 0.05 of 80 GiB is less than the weights: vLLM refuses to start.
[[variants]]
name = "no-kv-cache"
mode = "full"
jobs = [{{ workload = "greedy", args = ["--gpu-memory-utilization", "0.05"] }}]
"#,
        server(
            "greedy",
            2.0,
            600.0,
            "memory_fraction_flag = \"--gpu-memory-utilization\""
        ),
        server("slow", 100.0, 10.0, ""),
        "",
    );
    let scenario = dir.path().join("failures.toml");
    std::fs::write(&scenario, text).unwrap();
    let (run, output) = run_sim_output(&scenario, &dir.path().join("out"), SAMPLE_OFTEN);
    let stdout = ran(&output);

    let jobs = table(&run, "jobs");
    let (variant, outcome, reason) = (
        strings(&jobs, "variant"),
        strings(&jobs, "outcome"),
        strings(&jobs, "reason"),
    );
    let of = |v: &str| {
        let mut o: Vec<String> = (0..jobs.height())
            .filter(|&i| variant[i] == v)
            .map(|i| outcome[i].clone())
            .collect();
        o.sort();
        o
    };
    assert_eq!(of("mps-both-greedy"), ["ok", "oom"]);
    assert_eq!(of("slow-then-ok"), ["not_ready", "ok"]);
    assert_eq!(of("no-kv-cache"), ["oom"]);
    let not_ready = (0..jobs.height())
        .find(|&i| outcome[i] == "not_ready")
        .unwrap();
    assert!(
        reason[not_ready].starts_with("/health did not answer 200 in time"),
        "{}",
        reason[not_ready]
    );
    let no_kv = (0..jobs.height())
        .find(|&i| variant[i] == "no-kv-cache")
        .unwrap();
    assert!(
        reason[no_kv].contains("No available memory for the cache blocks"),
        "{}",
        reason[no_kv]
    );

    // The servers that ran served their load; those that did not have rows that say why.
    let serving = table(&run, "serving");
    for (v, completed) in [
        ("mps-both-greedy", 4.0),
        ("slow-then-ok", 4.0),
        ("no-kv-cache", 0.0),
    ] {
        let row = &rows(&serving, v, "variant")[0];
        assert_eq!(row.f("completed"), completed, "{v}");
        assert_eq!(row.f("failed"), 0.0, "{v}");
    }
    let outcomes: Vec<String> = rows(&serving, "slow-then-ok", "server")
        .iter()
        .map(|r| r.s("server_outcome"))
        .collect();
    assert_eq!(outcomes, ["not_ready", "ok"]);
    assert!(stdout.contains("no-kv-cache"), "{stdout}");
}

fn validate(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    std::fs::write(&path, text).unwrap();
    let out = migbench().arg("validate").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    String::from_utf8_lossy(&out.stderr).to_string()
}

const HEAD: &str = "[scenario]\nname = \"x\"\n[gpu]\nmodel = \"a100-80gb\"\n";

#[test]
fn bad_serving_input_is_located_in_the_file() {
    let err = validate(&format!(
        "{HEAD}[load]\nrate = 0.0\nrequests = 3\n[[variants]]\nname = \"v\"\nmode = \"full\"\njobs = [{{ workload = \"qwen3-4b\" }}]\n"
    ));
    assert!(
        err.contains("s.toml:6:8: rate must be a number above 0 and at most 1000000, found 0"),
        "{err}"
    );
    let err = validate(&format!(
        "{HEAD}[load]\nmax_concurrency = 2\n[[variants]]\nname = \"v\"\nmode = \"full\"\njobs = [{{ workload = \"qwen3-4b\" }}]\n"
    ));
    assert!(
        err.contains("load needs requests = N or duration_s = S"),
        "{err}"
    );
    let err = validate(&format!(
        "{HEAD}[[variants]]\nname = \"v\"\nmode = \"full\"\njobs = [{{ workload = \"qwen3-4b\" }}]\n"
    ));
    assert!(
        err.contains("s.toml:6:8: variant 'v' runs servers but has no load"),
        "{err}"
    );
    let err = validate(&format!(
        "{HEAD}[load]\nrequests = 1\n[[variants]]\nname = \"v\"\nmode = \"full\"\njobs = [{{ workload = \"qwen3-4b\", args = [\"--gpu-memory-utilization\", \"1.5\"] }}]\n"
    ));
    assert!(
        err.contains("qwen3-4b: --gpu-memory-utilization takes a fraction above 0 and at most 1, found '1.5'"),
        "{err}"
    );
    let err = validate(&format!(
        "{HEAD}[[variants]]\nname = \"v\"\nmode = \"full\"\nload = {{ requests = 1, endpoint = \"embeddings\" }}\njobs = [{{ workload = \"qwen3-4b\" }}]\n"
    ));
    assert!(
        err.contains("unknown variant `embeddings`, expected `completions` or `chat`"),
        "{err}"
    );
}

/// A small sweep: the whole GPU against two MIG servers at one, four and 16 users per server.
/// The `[load]` of the sweep scenario ([`common::sweep_scenario`]).
const SWEEP_LOAD: &str = r#"endpoint = "chat"
requests = 40
warmup_requests = 1
range_ratio = 0.25
input_tokens = 256
output_tokens = 64
ignore_eos = true
slo = { ttft_ms = 500, tpot_ms = 20 }
sweep = { concurrencies = [1, 4, 16], trim = 0.1 }"#;

#[test]
fn a_sweep_drives_each_point_in_turn_and_the_report_names_the_capacity_within_slo() {
    let out = tempfile::tempdir().unwrap();
    let scenario = out.path().join("sweep.toml");
    std::fs::write(&scenario, common::sweep_scenario(SWEEP_LOAD)).unwrap();
    let (dir, output) = run_sim_output(&scenario, &out.path().join("runs"), &[]);
    ran(&output);
    let serving = table(&dir, "serving");
    let (variant, scope) = (strings(&serving, "variant"), strings(&serving, "scope"));
    let point = serving.column("point").unwrap().u32().unwrap().clone();
    let users = serving.column("max_concurrency").unwrap().u32().unwrap();
    let attainment = floats(&serving, "slo_attainment");
    let rps = floats(&serving, "request_throughput");
    for (name, servers) in [("full", 1), ("mig", 2)] {
        let rows: Vec<usize> = (0..serving.height())
            .filter(|&i| variant[i] == name && scope[i] == "variant")
            .collect();
        // One variant row per point, in the order run, at the point's load.
        let points: Vec<(Option<u32>, Option<u32>)> =
            rows.iter().map(|&i| (point.get(i), users.get(i))).collect();
        assert_eq!(
            points,
            [(Some(0), Some(1)), (Some(1), Some(4)), (Some(2), Some(16))],
            "{name}"
        );
        let server_rows = (0..serving.height())
            .filter(|&i| variant[i] == name && scope[i] == "server")
            .count();
        assert_eq!(server_rows, 3 * servers, "{name}");
        // More users carry more requests per second; every attainment is a share.
        let carried: Vec<_> = rows.iter().map(|&i| rps[i]).collect();
        assert!(
            carried[0] < carried[1] && carried[1] < carried[2],
            "{name}: {carried:?}"
        );
        assert!(rows.iter().all(|&i| (0.0..=1.0).contains(&attainment[i])));
    }
    // Each server started once: one job per server, whatever the points.
    assert_eq!(table(&dir, "jobs").height(), 3);
    // Each point as vLLM's --save-result file.
    let file = dir.join("vllm").join("mig-r1-p2.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(json["max_concurrency"], 16);
    assert_eq!(json["request_rate"], "inf");
    assert_eq!(json["backend"], "openai-chat");
    for key in [
        "completed",
        "request_throughput",
        "p99_ttft_ms",
        "median_tpot_ms",
    ] {
        assert!(json.get(key).is_some(), "{key}");
    }

    let report = out.path().join("report");
    let done = migbench()
        .args(["report", "--out"])
        .arg(&report)
        .arg(out.path().join("runs"))
        .output()
        .unwrap();
    ran(&done);
    let data: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("report.json")).unwrap()).unwrap();
    assert_eq!(data["sweep"].as_array().unwrap().len(), 6);
    let capacity = data["capacity"].as_array().unwrap();
    assert_eq!(capacity.len(), 2);
    let verdict = &data["verdicts"][0]["most_requests_per_gpu_within_slo"];
    let best = capacity
        .iter()
        .filter_map(|c| Some((c["variant"].as_str()?, c["requests_per_s"].as_f64()?)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .expect("a variant within the SLO at its lightest point");
    assert_eq!(verdict["variant"], best.0);
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(md.contains("Most requests/s per GPU within SLO"), "{md}");
    assert!(report.join("plots").read_dir().unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with("sweep-pareto")));
}

#[test]
fn a_bad_sweep_is_located_in_the_file() {
    let body =
        "[[variants]]\nname = \"v\"\nmode = \"full\"\njobs = [{ workload = \"qwen3-4b\" }]\n";
    let err = validate(&format!(
        "{HEAD}[load]\nrequests = 3\nsweep = {{ concurrencies = [1, 0] }}\n{body}"
    ));
    assert!(
        err.contains("s.toml:7:")
            && err.contains("sweep.concurrencies must be an integer from 1 to 10000, found 0"),
        "{err}"
    );
    let err = validate(&format!(
        "{HEAD}[load]\nrequests = 3\nsweep = {{ rates = [1.0], points = 4 }}\n{body}"
    ));
    assert!(err.contains("load.sweep takes exactly one of"), "{err}");
    let err = validate(&format!(
        "{HEAD}[load]\nduration_s = 3\nsweep = {{ points = 4 }}\n{body}"
    ));
    assert!(err.contains("load.sweep needs requests = N"), "{err}");
}
