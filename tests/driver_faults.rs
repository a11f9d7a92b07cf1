//! What a real driver does that a driver written from the documentation does not (issue 23),
//! each produced on request by the stand-in GPU (tests/common/fake_driver.rs) that NVIDIA's own
//! nvidia-smi and MPS control daemon drive, and what migbench does about it.

mod common;

use common::fake_driver::{FakeDriver, ONE_FULL_JOB};
use serde_json::json;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// variants.csv's rows as (name, status, reason).
fn variants(gpu: &FakeDriver) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(gpu.run_dir().join("variants.csv")).unwrap();
    let mut rows = csv_rows(&text);
    let header = rows.remove(0);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (n, s, r) = (col("variant"), col("status"), col("reason"));
    rows.into_iter()
        .map(|row| (row[n].clone(), row[s].clone(), row[r].clone()))
        .collect()
}

/// A small CSV reader: fields with quotes and commas, as the results writer quotes them.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => row.push(std::mem::take(&mut field)),
            ('\n', false) => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (c, _) => field.push(c),
        }
    }
    rows
}

const MIG_THEN_FULL: &str = r#"
[[variants]]
name = "mig"
mode = "mig"
layout = ["3g.40gb", "3g.40gb"]
jobs = [{ workload = "probe", count = 2 }]

[[variants]]
name = "full"
mode = "full"
jobs = [{ workload = "probe" }]
"#;

/// Items 1 and 6: NVML's MIG device handles lag behind the instances nvidia-smi made. Before,
/// a listing that failed became "no devices" and the variant waited for a slot forever; now
/// the variant fails naming both views, the GPU is put back, and the next variant runs.
#[test]
fn a_stale_nvml_view_of_mig_fails_the_variant_clearly_and_the_next_one_runs() {
    for lag in [1, 8] {
        let Some(gpu) = FakeDriver::with(json!({ "nvml_lag": lag })) else {
            return;
        };
        let scenario = gpu.write_scenario(MIG_THEN_FULL);
        let out = gpu.run(&scenario, &[]);
        let found = variants(&gpu);
        let (_, status, reason) = &found[0];
        assert_eq!(
            status,
            "setup_failed",
            "lag {lag}: {found:?} {}",
            stderr(&out)
        );
        assert!(
            reason.contains("are not the compute instances `nvidia-smi mig -lci` lists")
                && reason.contains("stale"),
            "lag {lag}: {reason}"
        );
        assert_eq!(
            found.get(1).map(|f| f.1.as_str()),
            Some("ran"),
            "lag {lag}: {found:?} {}",
            stderr(&out)
        );
        gpu.assert_as_found();
    }
}

/// Item 3: CUDA joins an MPS daemon at the default pipe directory whenever one runs there.
/// Full and time-slicing jobs get a pipe directory where no daemon can be, so a daemon someone
/// left at the default never takes them as clients.
#[test]
fn full_and_time_slicing_jobs_never_join_a_daemon_at_the_default_pipe_directory() {
    let Some(gpu) = FakeDriver::h100() else {
        return;
    };
    let default = gpu.dir.path().join("default-mps");
    let (pipe, log) = (default.join("pipe"), default.join("log"));
    for d in [&pipe, &log] {
        std::fs::create_dir_all(d).unwrap();
    }
    let mut node = gpu.node_state();
    node["default_mps_pipe"] = json!(pipe);
    gpu.write_node(&node);
    let mps = |input: Option<&str>| {
        let mut cmd = std::process::Command::new("nvidia-cuda-mps-control");
        // For this test's GPU alone: a daemon without CUDA_VISIBLE_DEVICES serves every GPU,
        // and the tests beside this one would record it as part of their GPU's state.
        cmd.env("CUDA_MPS_PIPE_DIRECTORY", &pipe)
            .env("CUDA_MPS_LOG_DIRECTORY", &log)
            .env("CUDA_VISIBLE_DEVICES", &gpu.uuid);
        match input {
            None => {
                assert!(cmd.arg("-d").status().unwrap().success());
            }
            Some(text) => {
                use std::io::Write;
                let mut child = cmd.stdin(std::process::Stdio::piped()).spawn().unwrap();
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(text.as_bytes())
                    .unwrap();
                child.wait().unwrap();
            }
        }
    };
    mps(None);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !pipe.join("control").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let scenario = gpu.write_scenario(
        r#"
[[variants]]
name = "full"
mode = "full"
jobs = [{ workload = "probe" }]

[[variants]]
name = "timeslice"
mode = "timeslice"
jobs = [{ workload = "probe", count = 2 }]
"#,
    );
    let out = gpu.run(&scenario, &[]);
    mps(Some("quit\n"));
    assert!(out.status.success(), "{}", stderr(&out));
    let control = std::fs::read_to_string(log.join("control.log")).unwrap();
    assert!(control.contains("Starting control daemon"), "{control}");
    assert!(
        !control.contains("User did not send valid credentials"),
        "a job connected to the default daemon: {control}"
    );
    assert!(variants(&gpu).iter().all(|(_, status, _)| status == "ran"));
}

/// Item 3: under EXCLUSIVE_PROCESS a device takes one process at a time, so time-slicing is
/// refused with the reason; the modes that keep one process per device run.
#[test]
fn an_exclusive_process_gpu_refuses_time_slicing_and_runs_the_other_modes() {
    let Some(gpu) = FakeDriver::with(json!({ "compute_mode": 3 })) else {
        return;
    };
    let scenario = gpu.write_scenario(
        r#"
[[variants]]
name = "timeslice"
mode = "timeslice"
jobs = [{ workload = "probe", count = 2 }]

[[variants]]
name = "full"
mode = "full"
jobs = [{ workload = "probe" }]
"#,
    );
    gpu.run(&scenario, &[]);
    let found = variants(&gpu);
    assert_eq!(found[0].1, "infeasible", "{found:?}");
    assert!(found[0].2.contains("EXCLUSIVE_PROCESS"), "{found:?}");
    assert_eq!(found[1].1, "ran", "{found:?}");
}

/// Item 8: NVML from drivers 535.43 to 535.86 returns process lists in entries of the wrong
/// size. migbench refuses such a driver before it changes anything.
#[test]
fn a_driver_whose_process_lists_are_corrupt_is_refused_before_anything_changes() {
    let Some(gpu) = FakeDriver::h100() else {
        return;
    };
    let mut node = gpu.node_state();
    node["driver"] = json!("535.54.03");
    gpu.write_node(&node);
    let out = gpu.run_variants(MIG_THEN_FULL);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains("535.54.03") && text.contains("535.43–535.86"),
        "{text}"
    );
    assert!(gpu.calls().is_empty(), "{:?}", gpu.calls());
}

const ONE_MIG_VARIANT: &str = r#"
[[variants]]
name = "mig"
mode = "mig"
layout = ["3g.40gb", { profile = "3g.40gb", compute = ["1c.3g.40gb", "2c.3g.40gb"] }]
jobs = [{ workload = "probe", count = 3 }]
"#;

/// Item 5: for a moment after the last job ends the driver still holds its instance ("In use
/// by another client", no process listed). The teardown tries again, then puts the GPU back.
#[test]
fn a_teardown_refused_while_handles_close_is_tried_again_and_the_gpu_put_back() {
    let Some(gpu) = FakeDriver::with(json!({ "linger_ms": 700 })) else {
        return;
    };
    let out = gpu.run_variants(ONE_MIG_VARIANT);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(variants(&gpu)[0].1, "ran");
    gpu.assert_as_found();
    // The driver refused, and the same step went through later.
    let calls = gpu.calls();
    let dci: Vec<&String> = calls.iter().filter(|c| c.ends_with("-dci")).collect();
    assert!(
        dci.len() > 3,
        "three compute instances, some tried more than once: {calls:#?}"
    );
}

/// Item 5: an instance that never frees is not left silently: the run fails naming the step,
/// how long it tried and who holds the NVIDIA device files, and `restore` puts it back later.
#[test]
fn an_instance_that_never_frees_is_reported_and_restore_puts_it_back_later() {
    let Some(gpu) = FakeDriver::with(json!({ "linger_ms": 600_000 })) else {
        return;
    };
    let out = gpu.run_variants(ONE_MIG_VARIANT);
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(
        text.contains("In use by another client")
            && text.contains("still in use after 6.3 s of tries")
            && text.contains("/dev/nvidia*"),
        "{text}"
    );
    assert_eq!(
        gpu.state()["mig_current"],
        json!(true),
        "left changed, and said so"
    );
    let mut node = gpu.node_state();
    node["gpus"][0]["linger_ms"] = json!(0);
    gpu.write_node(&node);
    let restored = gpu
        .migbench()
        .arg("restore")
        .arg(gpu.run_dir())
        .output()
        .unwrap();
    assert!(restored.status.success(), "{}", stderr(&restored));
    gpu.assert_as_found();
}

/// Item 4: on an A100 a MIG mode change waits for a reset, and while another process holds
/// NVML open the driver refuses it outright ("In use by another client") — migbench itself
/// did. migbench lets NVML go around the change, reports the pending mode in nvidia-smi's own
/// words, takes it back and says what the GPU shows then.
#[test]
fn on_an_a100_the_mode_change_is_not_blocked_by_migbenchs_own_nvml_and_is_taken_back() {
    let Some(gpu) = FakeDriver::node("a100-40gb", json!({})) else {
        return;
    };
    let scenario = gpu.dir.path().join("a100.toml");
    let text = std::fs::read_to_string(gpu.write_scenario(
        r#"
[[variants]]
name = "mig"
mode = "mig"
layout = ["3g.20gb", "3g.20gb"]
jobs = [{ workload = "probe", count = 2 }]
"#,
    ))
    .unwrap()
    .replace("h100-80gb", "a100-40gb");
    std::fs::write(&scenario, text).unwrap();
    let out = gpu.run(&scenario, &[]);
    let found = variants(&gpu);
    assert_eq!(found[0].1, "setup_failed", "{found:?} {}", stderr(&out));
    let reason = &found[0].2;
    assert!(!reason.contains("In use by another client"), "{reason}");
    assert!(
        reason.contains("needs a GPU reset")
            && reason.contains("nvidia-smi said: Warning: MIG mode is in pending enable state")
            && reason
                .contains("the pending change was taken back, now disabled with disable pending"),
        "{reason}"
    );
    let state = gpu.state();
    assert_eq!(
        (&state["mig_current"], &state["mig_pending"]),
        (&json!(false), &json!(false))
    );
}

/// Item 9: NVML in a container may report the host's PIDs, so no job's process is ever found
/// in its lists. The run says so, on stderr and in events.jsonl, naming `--pid=host`.
#[test]
fn pids_from_another_namespace_are_warned_about_naming_pid_host() {
    let Some(gpu) = FakeDriver::with(json!({ "pid_offset": 100_000 })) else {
        return;
    };
    let out = gpu.run_variants(ONE_FULL_JOB);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains("variant full: NVML never listed the PID") && text.contains("--pid=host"),
        "{text}"
    );
    let events = std::fs::read_to_string(gpu.run_dir().join("events.jsonl")).unwrap();
    assert!(events.contains("\"attribution_warning\""), "{events}");
}

/// Item 3: a CUDA client that cannot reach its MPS daemon runs without MPS, silently. migbench
/// checks NVML's MPS process list and says which jobs of an MPS variant were never in it.
#[test]
fn jobs_that_ran_without_mps_in_an_mps_variant_are_named() {
    let Some(gpu) = FakeDriver::with(json!({ "mps_unreachable": true })) else {
        return;
    };
    let scenario = gpu.write_scenario(
        r#"
[[variants]]
name = "mps"
mode = "mps"
jobs = [{ workload = "probe", count = 2 }]
"#,
    );
    let out = gpu.run(&scenario, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains("variant mps: job(s) 0, 1 ran without MPS")
            && text.contains("never as MPS clients"),
        "{text}"
    );
}

/// Item 7: drivers R450 and R470 name GPUs without "NVIDIA " (`A100-SXM4-40GB`,
/// k8s-device-plugin#343): the catalog model is found anyway, and a scenario for it runs.
#[test]
fn a_gpu_named_without_nvidia_is_still_its_catalog_model() {
    let Some(gpu) = FakeDriver::node("a100-40gb", json!({ "name": "A100-SXM4-40GB" })) else {
        return;
    };
    let out = common::succeeds(gpu.migbench().args(["discover", "--format", "json"]));
    let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(found[0]["name"], json!("A100-SXM4-40GB"));
    assert_eq!(found[0]["model"], json!({ "Ok": "a100-40gb" }));
}
