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
    let serving = ran["serving"].as_array().unwrap().clone();
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
        // Both are the same event-driven physics: only floating-point order differs. A server
        // variant's span is seen on the run's 100 ms polling grid, which starts where the
        // variant falls in its run: it may differ by one step.
        let grid = if c["serving"].is_null() {
            0.0
        } else {
            0.1 + 1e-6
        };
        assert!(
            (run - predicted).abs() < 1e-6 * run + grid,
            "{}: advise {predicted} s, run --sim {run} s",
            c["name"]
        );
        // Model servers: what the load generator measured, figure by figure.
        if !c["serving"].is_null() {
            let s = serving.iter().find(|s| s["variant"] == c["name"]).unwrap();
            for (measured, predicted) in [
                ("p99_ttft_ms", "p99_ttft_ms"),
                ("median_ttft_ms", "median_ttft_ms"),
                ("p99_tpot_ms", "p99_tpot_ms"),
                ("output_throughput", "output_tokens_per_s"),
            ] {
                let (run, predicted) = (
                    s[measured].as_f64().unwrap(),
                    c["serving"][predicted].as_f64().unwrap(),
                );
                assert!(
                    (run - predicted).abs() < 1e-6 * run,
                    "{}: advise {predicted}, run --sim {run} ({measured})",
                    c["name"]
                );
            }
            assert_eq!(s["failed"], 0);
        }
    }
    advice
}

const LOAD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/a100-qwen3.toml");

/// `advise` arguments for servers on an A100 under the shipped scenario's load.
fn servers_on_a100<'a>(workloads: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--gpu",
        "a100-80gb",
        "--workload",
        workloads,
        "--load",
        LOAD,
    ];
    args.extend_from_slice(more);
    args
}

#[test]
fn advised_servers_are_what_the_simulated_servers_and_load_generator_measure() {
    // Two Qwen3-4B servers on an A100 under the shipped scenario's load, ranked by p99 TTFT.
    let tmp = tempfile::tempdir().unwrap();
    let advice = advise_then_run(tmp.path(), &servers_on_a100("qwen3-4b", &[]));
    assert_eq!(advice["objective"], "p99-ttft", "the servers' default");
    assert_eq!(advice["copies"], 2);
    let all = advice["candidates"].as_array().unwrap();
    let p99 = |c: &serde_json::Value| c["serving"]["p99_ttft_ms"].as_f64().unwrap();
    for pair in all.windows(2) {
        if pair[1]["rejected"].is_null() {
            // Ranked to the 0.1 ms printed.
            assert!(p99(&pair[0]) <= p99(&pair[1]) + 0.05, "ranked by p99 TTFT");
        }
    }
    let by_name = |n: &str| all.iter().find(|c| c["name"] == n).unwrap();
    // Sharing the SMs under MPS answers first tokens sooner than half the GPU each, which is
    // sooner than 2g.20gb each (the shipped scenario's mps-2x4b and mig-2x2g).
    assert!(p99(by_name("mps-together")) < p99(by_name("mig-2x3g.40gb")));
    assert!(p99(by_name("mig-2x3g.40gb")) < p99(by_name("mig-2x2g.20gb")));
    // vLLM preallocates its fraction of its device: 0.9 of each instance, 2 x 0.45 of the GPU.
    for c in all {
        let fullest = c["fullest"].as_f64().unwrap();
        assert!((fullest - 0.9).abs() < 0.01, "{}: {fullest}", c["name"]);
    }
    assert!(by_name("mps-together")["memory_fraction"][0] == 0.45);
}

#[test]
fn a_server_mix_with_isolation_required_gets_an_instance_each() {
    let tmp = tempfile::tempdir().unwrap();
    let advice = advise_then_run(
        tmp.path(),
        &servers_on_a100(
            "qwen3-14b,qwen3-4b",
            &[
                "--isolation",
                "required",
                "--objective",
                "output-tokens-per-s",
            ],
        ),
    );
    for c in advice["candidates"].as_array().unwrap() {
        assert_eq!(c["mode"], "mig", "{c}");
        // Each workload pinned to its own instance, and the 14B's holds its weights.
        let (big, small) = (&c["instances"][0], &c["instances"][1]);
        assert_eq!(big.as_array().unwrap().len(), 1);
        assert_ne!(big, small);
        let slot = big[0].as_u64().unwrap() as usize;
        let profile = c["layout"][slot].as_str().unwrap();
        assert!(
            profile.starts_with("3g") || profile.starts_with("4g") || profile.starts_with("7g"),
            "{c}"
        );
    }
}

#[test]
fn server_headroom_counts_what_vllm_preallocates() {
    // Every server takes 90 % of what it is given: 15 % headroom leaves nothing to advise.
    let o = migbench()
        .args([
            "advise",
            "--gpu",
            "a100-80gb",
            "--workload",
            "qwen3-4b",
            "--load",
            LOAD,
        ])
        .args(["--headroom", "15%", "--format", "json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let advice: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for c in advice["candidates"].as_array().unwrap() {
        assert!(
            c["rejected"].as_str().unwrap().contains("--headroom"),
            "{c}"
        );
    }
    assert!(advice["explanation"]
        .as_str()
        .unwrap()
        .contains("no configuration"));
}

#[test]
fn advised_figures_are_what_the_simulator_runs() {
    let tmp = tempfile::tempdir().unwrap();
    // Three TI2V-5B on an H100: the shipped scenario's figures, now from advise. Without a
    // headroom, as the scenario runs them: three fit staggered only at 0 %.
    let advice = advise_then_run(
        tmp.path(),
        &[
            "--gpu",
            "h100-80gb",
            "--workload",
            "ti2v-5b",
            "--headroom",
            "0",
        ],
    );
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
        &[
            "--gpu",
            "h100-80gb",
            "--workload",
            "ti2v-5b,s2v-14b",
            "--headroom",
            "0",
        ],
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
        (vec!["--workload", "qwen3-4b"], "--load"),
        (
            vec![
                "--workload",
                "qwen3-4b",
                "--load",
                LOAD,
                "--objective",
                "units-per-hour",
            ],
            "model servers",
        ),
        (
            vec!["--workload", "qwen3-4b,ti2v-5b", "--load", LOAD],
            "a mix",
        ),
        (
            vec!["--workload", "ti2v-5b", "--load", LOAD],
            "batch workloads",
        ),
        (
            vec!["--workload", "qwen3-4b", "--load", "missing.toml"],
            "cannot read",
        ),
        (
            vec![
                "--workload",
                "qwen3-4b",
                "--load",
                "scenarios/workloads/qwen3-4b.toml",
            ],
            "no [load]",
        ),
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

/// `advise --format json` on `args`.
fn advice(args: &[&str]) -> serde_json::Value {
    let o = migbench()
        .arg("advise")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn candidate<'a>(advice: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    advice["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no candidate {name}"))
}

/// S2V-14B with TI2V-5B a little later under MPS fills the H100 to 99 % at the peaks: fastest,
/// but not advised unless the user gives up the default 10 % headroom (vLLM's own margin).
#[test]
fn a_pool_that_peaks_at_99_percent_is_not_advised_by_default() {
    let mix = ["--gpu", "h100-80gb", "--workload", "s2v-14b,ti2v-5b"];
    let by_default = advice(&mix);
    let close = candidate(&by_default, "mps-stagger30s");
    assert!(close["fullest"].as_f64().unwrap() > 0.99);
    let why = close["rejected"].as_str().unwrap();
    assert!(
        why.contains("above the 90 %") && why.contains("vLLM"),
        "{why}"
    );
    let winner = &by_default["candidates"][0];
    assert!(winner["rejected"].is_null());
    assert!(winner["fullest"].as_f64().unwrap() <= 0.9);

    let asked = advice(&[&mix[..], &["--headroom", "0"]].concat());
    assert_eq!(asked["candidates"][0]["name"], "mps-stagger30s");
    assert!(asked["candidates"][0]["rejected"].is_null());
}

/// Advised configurations within the model's error of the winner are ties: 2 % by default, or
/// the largest residual of a workload's calibration.
#[test]
fn configurations_within_the_models_error_are_ties() {
    let check = |advice: &serde_json::Value, band: f64| -> (usize, usize) {
        let all = advice["candidates"].as_array().unwrap();
        let best = all[0]["units_per_hour"].as_f64().unwrap();
        let (mut ties, mut apart) = (0, 0);
        for c in all.iter().skip(1).filter(|c| c["rejected"].is_null()) {
            let off = (c["units_per_hour"].as_f64().unwrap() - best).abs() / best;
            assert_eq!(c["tie"], off <= band, "{} is {off} off", c["name"]);
            if off <= band {
                ties += 1;
            } else {
                apart += 1;
            }
        }
        (ties, apart)
    };
    let plain = advice(&["--gpu", "h100-80gb", "--workload", "ti2v-5b"]);
    let (ties, apart) = check(&plain, 0.02);
    assert!(ties > 0 && apart > 0, "{ties} ties, {apart} apart");
    assert!(plain["explanation"]
        .as_str()
        .unwrap()
        .contains("Within the model's error (2.0 %)"));
    assert_eq!(candidate(&plain, "mps-stagger30s")["tie"], false);

    // A calibration that fits its runs to 5 % widens the band.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ti2v-5b.toml");
    let shipped = std::fs::read_to_string("scenarios/workloads/ti2v-5b.toml").unwrap();
    std::fs::write(
        &file,
        format!(
            "{shipped}\n[calibration]\nmigbench = \"test\"\nruns = [\"r\"]\n[[calibration.fitted]]\nkey = \"sim.alpha\"\nvalue = 1.0\nhow = \"fitted\"\nmax_residual = 0.05\n"
        ),
    )
    .unwrap();
    let wide = advice(&["--gpu", "h100-80gb", "--workload", file.to_str().unwrap()]);
    check(&wide, 0.05);
    assert_eq!(candidate(&wide, "mps-stagger30s")["tie"], true);
}

/// A workload file that writes the new sharing terms as 0 gives every figure of the one
/// without them: the single-exponent model is the new model's special case.
#[test]
fn the_new_sharing_terms_at_zero_change_no_figure() {
    let dir = tempfile::tempdir().unwrap();
    let old = r#"name = "old-ti2v"
title = "TI2V-5B as profiled before issue 29"
kind = "batch"
unit = "video"
command = ["python", "generate.py"]
[memory]
constant_gib = 21.0
peak_gib = 33.0
source = "T"
[timing]
reference_gpu = "h100-80gb"
full_gpu_s = 242.0
source = "T"
[sim]
alpha = 0.669
peak_at = 0.92
peak_for = 0.06
source = "T"
"#;
    let zeros = old.replace(
        "alpha = 0.669\n",
        "alpha = 0.669\nhost_fraction = 0.0\nbandwidth_fraction = 0.0\nmps_interference = 0.0\n",
    );
    let (a, b) = (dir.path().join("a.toml"), dir.path().join("b.toml"));
    std::fs::write(&a, old).unwrap();
    std::fs::write(&b, zeros).unwrap();
    for gpu in ["h100-80gb", "b200-180gb"] {
        let figures = |file: &Path| {
            let v = advice(&["--gpu", gpu, "--workload", file.to_str().unwrap()]);
            v["candidates"].clone()
        };
        let (x, y) = (figures(&a), figures(&b));
        assert!(x.as_array().unwrap().len() > 10);
        assert_eq!(x, y, "{gpu}");
    }
}
