//! `migbench compare` on simulator runs: its exit status follows constructed regressions and
//! improvements of batch and serving variants (0 unchanged or within the threshold, 1 regressed),
//! and bad input is refused with status 2.

mod common;

use std::path::{Path, PathBuf};

use common::edit::{edited_copy, edited_table, scale};
use common::{compare, migbench, report, run_sim, serving_run, strs, SAMPLE_EVERY_SECOND};
use polars::prelude::*;
use serde_json::Value;

#[test]
fn compare_exits_1_on_regressions_and_0_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_sim(
        "scenarios/h100-3x-ti2v.toml",
        &dir.path().join("runs"),
        SAMPLE_EVERY_SECOND,
    );
    let case =
        |name: &str, edit: &dyn Fn(&mut DataFrame)| edited_copy(&run, &dir.path().join(name), edit);

    compare(&run, &run)
        .success()
        .stdout(predicates::str::contains("unchanged"));

    let slower = case("slower", &|df| {
        scale(df, "mps-staggered", "time_per_unit_s", 1.2);
        scale(df, "mps-staggered", "units_per_hour", 1.0 / 1.2);
    });
    compare(&run, &slower)
        .code(1)
        .stdout(predicates::str::contains("time per unit +20.0%"))
        .stderr(predicates::str::contains(
            "1 variant(s) regressed beyond 5.0%: h100-3x-ti2v/mps-staggered",
        ));

    let within = case("within", &|df| {
        scale(df, "mig-2x3g", "time_per_unit_s", 1.04)
    });
    compare(&run, &within).success();
    migbench()
        .args(["compare", "--threshold", "3%"])
        .arg(&run)
        .arg(&within)
        .assert()
        .code(1);

    let hungrier = case("hungrier", &|df| {
        scale(df, "full-sequential", "gpu_vram_peak_gib", 1.1)
    });
    compare(&run, &hungrier)
        .code(1)
        .stdout(predicates::str::contains("peak VRAM +10.0%"));

    let faster = case("faster", &|df| {
        scale(df, "full-sequential", "time_per_unit_s", 0.8);
        scale(df, "full-sequential", "units_per_hour", 1.25);
    });
    compare(&run, &faster)
        .success()
        .stdout(predicates::str::contains(
            "improved h100-3x-ti2v/full-sequential: time per unit -20.0%",
        ));
    // The other way round, the improvement is a regression.
    compare(&faster, &run).code(1);

    let oom = case("oom", &|df| {
        let names = strs(df, "variant");
        let bump = |c: &str, by: i64| -> Series {
            let v: Vec<u32> = df
                .column(c)
                .unwrap()
                .u32()
                .unwrap()
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    let v = v.unwrap() as i64;
                    (if names.get(i) == Some("mig-2x3g") {
                        v + by
                    } else {
                        v
                    }) as u32
                })
                .collect();
            Series::new(c.into(), v)
        };
        let (ok, oom) = (bump("jobs_ok", -1), bump("jobs_oom", 1));
        df.with_column(ok).unwrap();
        df.with_column(oom).unwrap();
    });
    compare(&run, &oom)
        .code(1)
        .stdout(predicates::str::contains("OOMs 0 → 1"));

    // A report directory is a side too.
    let report_dir = dir.path().join("report");
    report(&run, &report_dir);
    compare(&report_dir, &run).success();
    compare(&report_dir, &slower).code(1);
    migbench()
        .args(["compare", "--format", "json"])
        .arg(&report_dir)
        .arg(&slower)
        .assert()
        .code(1)
        .stdout(predicates::str::contains("\"verdict\": \"regressed\""));
}

#[test]
fn compare_rejects_bad_input_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_sim(
        "scenarios/h100-3x-ti2v.toml",
        &dir.path().join("runs"),
        SAMPLE_EVERY_SECOND,
    );
    compare(&run, Path::new("/nonexistent"))
        .code(2)
        .stderr(predicates::str::contains(
            "candidate /nonexistent: no such directory",
        ));
    compare(&run, &run.join("logs"))
        .code(2)
        .stderr(predicates::str::contains("candidate: no runs found"));
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    compare(&empty, &run)
        .code(2)
        .stderr(predicates::str::contains("no runs found"));
    migbench()
        .args(["compare", "--threshold", "five"])
        .arg(&run)
        .arg(&run)
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "--threshold: expected a percentage",
        ));

    // The same variants, but measured on a GPU: refused, not compared.
    let measured = edited_copy(&run, &dir.path().join("measured"), |_| {});
    let manifest = measured.join("manifest.json");
    let mut m: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    m["simulated"] = Value::Bool(false);
    m["backend"] = "nvml".into();
    std::fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();
    compare(&run, &measured)
        .code(2)
        .stderr(predicates::str::contains(
            "refusing to compare simulated results with measured ones",
        ));
}

#[test]
fn compare_exits_1_when_a_serving_variant_regressed() {
    let run = serving_run();
    let dir = tempfile::tempdir().unwrap();
    let case = |name: &str, edit: &dyn Fn(&mut DataFrame)| {
        edited_table(run, &dir.path().join(name), "serving", edit)
    };
    compare(run, run)
        .success()
        .stdout(predicates::str::contains("Δ out"));

    let fewer_tokens = case("fewer-tokens", &|df| {
        scale(df, "mps-4x4b", "output_throughput", 0.8)
    });
    compare(run, &fewer_tokens)
        .code(1)
        .stdout(predicates::str::contains("output throughput -20.0%"))
        .stderr(predicates::str::contains(
            "1 variant(s) regressed beyond 5.0%: a100-qwen3/mps-4x4b",
        ));

    let later_first_token = case("later-first-token", &|df| {
        scale(df, "mig-2x2g", "median_ttft_ms", 1.1)
    });
    compare(run, &later_first_token)
        .code(1)
        .stdout(predicates::str::contains("median TTFT +10.0%"));

    let slower_tokens = case("slower-tokens", &|df| {
        scale(df, "mig-4x1g", "median_tpot_ms", 1.2)
    });
    compare(run, &slower_tokens)
        .code(1)
        .stdout(predicates::str::contains("median TPOT +20.0%"));

    let within = case("within", &|df| {
        scale(df, "full-1x4b", "median_tpot_ms", 1.03)
    });
    compare(run, &within).success();

    let more_tokens = case("more-tokens", &|df| {
        scale(df, "full-1x4b", "output_throughput", 1.2)
    });
    compare(run, &more_tokens)
        .success()
        .stdout(predicates::str::contains(
            "improved a100-qwen3/full-1x4b: output throughput +20.0%",
        ));
    compare(&more_tokens, run).code(1);
}

/// A copy of a run whose manifest `edit` changed.
fn with_manifest(run: &Path, to: &Path, edit: impl Fn(&mut Value)) -> PathBuf {
    let copy = edited_copy(run, to, |_| {});
    let manifest = copy.join("manifest.json");
    let mut m: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    edit(&mut m);
    std::fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();
    copy
}

#[test]
fn compare_refuses_different_experiments_unless_allowed_and_then_says_what_differs_first() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_sim(
        "scenarios/h100-3x-ti2v.toml",
        &dir.path().join("runs"),
        SAMPLE_EVERY_SECOND,
    );
    let edited = with_manifest(&run, &dir.path().join("edited"), |m| {
        m["scenario_sha256"] = "0123456789abcdef".into();
    });
    let b200 = with_manifest(&run, &dir.path().join("b200"), |m| {
        m["gpu_model"] = "b200".into();
        m["gpu_name"] = "NVIDIA B200".into();
    });
    let sha = serde_json::from_slice::<Value>(&std::fs::read(run.join("manifest.json")).unwrap())
        .unwrap()["scenario_sha256"]
        .as_str()
        .unwrap()[..12]
        .to_string();
    compare(&run, &edited)
        .code(2)
        .stdout("")
        .stderr(predicates::str::contains(format!(
            "h100-3x-ti2v: scenario file sha256 {sha} in the baseline, 0123456789ab in the candidate"
        )))
        .stderr(predicates::str::contains("--allow-different"));
    compare(&run, &b200).code(2).stderr(predicates::str::contains(
        "h100-3x-ti2v: GPU model h100-80gb (H100 80GB HBM3) in the baseline, b200 (NVIDIA B200) in the candidate",
    ));
    // A report directory remembers its runs' scenario files.
    let report_dir = dir.path().join("report");
    report(&run, &report_dir);
    compare(&report_dir, &edited).code(2);
    for format in ["table", "md"] {
        let out = migbench()
            .args(["compare", "--allow-different", "--format", format])
            .arg(&report_dir)
            .arg(&edited)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let out = String::from_utf8(out).unwrap();
        let differs = out
            .find("scenario file sha256")
            .expect("the difference is printed");
        assert!(differs < out.find("unchanged").unwrap(), "{out}");
    }
    let json = migbench()
        .args(["compare", "--allow-different", "--format", "json"])
        .arg(&run)
        .arg(&b200)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let json: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(json["differences"].as_array().unwrap().len(), 1, "{json}");
}
