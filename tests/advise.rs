//! `migbench advise`: what it predicts is what `migbench run --sim` then measures on the scenario
//! it writes (its in-process simulation uses the simulator's own GPU and memory curves), and
//! bad requests exit 2.

use std::path::Path;

use assert_cmd::Command;

fn migbench() -> Command {
    Command::cargo_bin("migbench").unwrap()
}

/// Advises, writes the top three, runs them on the simulator, and checks every figure.
fn advise_then_run(dir: &Path, args: &[&str]) -> serde_json::Value {
    let file = dir.join("advised.toml");
    let o = migbench()
        .arg("advise")
        .args(args)
        .args(["--format", "json", "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let advice: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let o = migbench()
        .args(["run", "--sim", "--quiet", "--format", "json", "--out"])
        .arg(dir.join("runs"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ran: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ran = ran["variants"].as_array().unwrap();
    assert_eq!(ran.len(), 3, "the top three are written");
    let candidates = advice["candidates"].as_array().unwrap();
    for (v, c) in ran.iter().zip(candidates) {
        assert_eq!(v["variant"], c["name"], "in advise's order");
        assert!(c["rejected"].is_null());
        assert_eq!(v["jobs_ok"], c["ok"]);
        assert_eq!(v["jobs_oom"], c["oom"]);
        let (run, predicted) = (
            v["makespan_s"].as_f64().unwrap(),
            c["makespan_s"].as_f64().unwrap(),
        );
        // Both are the same event-driven physics: only floating-point order differs.
        assert!(
            (run - predicted).abs() < 1e-6 * run,
            "{}: advise {predicted} s, run --sim {run} s",
            c["name"]
        );
    }
    advice
}

#[test]
fn advised_figures_are_what_the_simulator_runs() {
    let tmp = tempfile::tempdir().unwrap();
    // Three TI2V-5B on an H100: the shipped scenario's figures, now from advise.
    let advice = advise_then_run(tmp.path(), &["--gpu", "h100-80gb", "--workload", "ti2v-5b"]);
    let all = advice["candidates"].as_array().unwrap();
    let by_name = |n: &str| all.iter().find(|c| c["name"] == n).unwrap();
    assert_eq!(advice["copies"], 3);
    // Three at once under MPS peak past the GPU: one OOM, never advised.
    assert_eq!(by_name("mps-together")["oom"], 1);
    assert!(by_name("mps-together")["rejected"].is_string());
    // Staggered MPS beats one at a time, which beats 2 x 3g.40gb (the third waits).
    let uph = |n: &str| by_name(n)["units_per_hour"].as_f64().unwrap();
    assert!(uph("mps-stagger60s") > uph("full-sequential"));
    assert!(uph("full-sequential") > uph("mig-2x3g.40gb"));
    assert!(all[0]["mode"] == "mps");

    // S2V-14B and TI2V-5B on an H100 fit only staggered, S2V-14B first (T experiment 4 and the
    // shipped scenario's staggered variant): the workloads' turns become start_s.
    let tmp = tempfile::tempdir().unwrap();
    let advice = advise_then_run(
        tmp.path(),
        &["--gpu", "h100-80gb", "--workload", "ti2v-5b,s2v-14b"],
    );
    let all = advice["candidates"].as_array().unwrap();
    assert_eq!(all[0]["name"], "mps-stagger30s-s2v-14b-first");
    let by_name = |n: &str| all.iter().find(|c| c["name"] == n).unwrap();
    assert!(
        by_name("mps-stagger60s")["rejected"].is_string(),
        "TI2V-5B first runs out"
    );
    assert!(by_name("mps-together")["rejected"].is_string());

    // A mix on a B200 with isolation required: only MIG and the whole GPU, the MIG layouts
    // pinning each workload to instances it fits.
    let tmp = tempfile::tempdir().unwrap();
    let advice = advise_then_run(
        tmp.path(),
        &[
            "--gpu",
            "b200-180gb",
            "--workload",
            "ti2v-5b,s2v-14b",
            "--isolation",
            "required",
        ],
    );
    for c in advice["candidates"].as_array().unwrap() {
        assert!(c["mode"] == "mig" || c["mode"] == "full", "{c}");
    }
}

#[test]
fn headroom_rules_out_configurations_that_come_too_close_to_full() {
    let out = |headroom: &str| -> serde_json::Value {
        let o = migbench()
            .args([
                "advise",
                "--gpu",
                "h100-80gb",
                "--workload",
                "ti2v-5b",
                "--format",
                "json",
            ])
            .args(["--copies", "3", "--headroom", headroom])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    // Staggered MPS peaks at 75 of 79.6 GiB (94 %): advised with no headroom, not with 10 %.
    let first = |v: &serde_json::Value| v["candidates"][0]["name"].as_str().unwrap().to_string();
    assert!(first(&out("0%")).starts_with("mps-stagger"));
    let strict = out("10%");
    assert!(!first(&strict).starts_with("mps-stagger"));
    let stagger = strict["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "mps-stagger60s")
        .unwrap();
    assert!(stagger["rejected"].as_str().unwrap().contains("--headroom"));
}

#[test]
fn bad_requests_exit_2_saying_why() {
    for (args, says) in [
        (vec!["--workload", "qwen3-4b"], "batch workloads"),
        (
            vec!["--workload", "ti2v-5b", "--objective", "p99-ttft"],
            "time to first token",
        ),
        (vec!["--workload", "nope"], "nope"),
        (vec!["--workload", "ti2v-5b", "--copies", "0"], "--copies"),
        (vec!["--workload", "missing/file.toml"], "cannot read"),
    ] {
        let o = migbench()
            .args(["advise", "--gpu", "h100-80gb"])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
