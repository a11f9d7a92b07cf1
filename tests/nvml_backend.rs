//! The NVML backend end to end, against the stand-in GPU (tests/common/fake_driver.rs): a
//! libnvidia-ml that answers NVML calls with the driver's rules, driven by NVIDIA's own
//! nvidia-smi and MPS control daemon, and CUDA jobs that hold device memory. `cargo test` builds
//! the stand-in (examples); the real driver is checked by docs/validation.md's procedure.
//!
//! These tests run the same `migbench run`, `discover` and `restore` a user runs on a GPU, so
//! they check what only the real backend does: IDs read back from the driver, MIG UUIDs handed
//! to jobs, memory sampled through NVML per process and instance, MPS daemons with private
//! directories, pending MIG modes, and the GPU left as found.

use std::path::Path;
use std::process::Output;

use polars::prelude::*;
use serde_json::{json, Value};

mod common;
use common::fake_driver::{mps_daemon_pipes_under, mps_processes_under, FakeDriver, ONE_FULL_JOB};

struct Job {
    variant: String,
    workload: String,
    outcome: String,
    uuid: String,
    peak: Option<f64>,
    reason: String,
    pid: Option<u32>,
}

fn jobs(run: &Path) -> Vec<Job> {
    let df = LazyFrame::scan_parquet(run.join("jobs.parquet"), Default::default())
        .unwrap()
        .collect()
        .unwrap();
    let s = |c: &str| df.column(c).unwrap().str().unwrap().clone();
    let peak = df.column("vram_peak_gib").unwrap().f64().unwrap().clone();
    let pid = df.column("pid").unwrap().u32().unwrap().clone();
    let (variant, workload, outcome, uuid, reason) = (
        s("variant"),
        s("workload"),
        s("outcome"),
        s("instance_uuid"),
        s("reason"),
    );
    (0..df.height())
        .map(|i| Job {
            variant: variant.get(i).unwrap().to_string(),
            workload: workload.get(i).unwrap().to_string(),
            outcome: outcome.get(i).unwrap().to_string(),
            uuid: uuid.get(i).unwrap_or("").to_string(),
            peak: peak.get(i),
            reason: reason.get(i).unwrap_or("").to_string(),
            pid: pid.get(i),
        })
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

const ALL_MODES: &str = r#"
[[variants]]
name = "full"
mode = "full"
jobs = [{ workload = "probe" }, { workload = "engine" }]

[[variants]]
name = "mps"
mode = "mps"
mps = { active_thread_percentage = 50 }
jobs = [{ workload = "probe", count = 2 }, { workload = "engine" }, { workload = "greedy" }]

[[variants]]
name = "mig"
mode = "mig"
layout = ["3g.40gb", { profile = "3g.40gb", compute = ["1c.3g.40gb", "2c.3g.40gb"] }]
jobs = [{ workload = "probe", count = 3 }]

[[variants]]
name = "mig-mps"
mode = "mig+mps"
layout = ["3g.40gb", "3g.40gb"]
jobs = [{ workload = "probe", count = 4 }]
"#;

#[test]
fn every_mode_runs_on_the_nvml_backend_and_leaves_the_gpu_as_found() {
    let Some(gpu) = FakeDriver::h100() else {
        return;
    };
    // With the CSV copy of the samples, which this test reads as a user would.
    let out = gpu.run(&gpu.write_scenario(ALL_MODES), &["--samples-csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = gpu.run_dir();
    let jobs = jobs(&run);
    let of = |v: &str| jobs.iter().filter(|j| j.variant == v).collect::<Vec<_>>();

    // Each job pinned where its mode says: the GPU's UUID, or a MIG device of the variant's.
    let gpu_uuid = gpu.uuid.as_str();
    for j in of("full").iter().chain(&of("mps")) {
        assert_eq!(j.uuid, gpu_uuid, "{} {}", j.variant, j.workload);
    }
    for j in of("mig").iter().chain(&of("mig-mps")) {
        assert!(
            j.uuid.starts_with("MIG-"),
            "{} ran on {}",
            j.variant,
            j.uuid
        );
    }
    assert_eq!(of("mig").len(), 3);
    let mig_devices: std::collections::BTreeSet<&str> =
        of("mig").iter().map(|j| j.uuid.as_str()).collect();
    assert_eq!(mig_devices.len(), 3, "one job per MIG device of the layout");

    // Every job but the greedy one completed; the greedy one is an OOM, and the others went on.
    for j in &jobs {
        let expected = if j.workload == "greedy" { "oom" } else { "ok" };
        assert_eq!(
            j.outcome, expected,
            "{} {}: {}",
            j.variant, j.workload, j.reason
        );
    }
    assert!(
        jobs.iter()
            .any(|j| j.workload == "greedy" && j.reason.contains("CUDA out of memory")),
        "the OOM's reason is the job's own message"
    );

    // Peaks sampled through NVML, per process by GI/CI ID on MIG, and for `engine` from the
    // child process that holds its memory.
    for j in jobs.iter().filter(|j| j.outcome == "ok") {
        let peak = j
            .peak
            .unwrap_or_else(|| panic!("no peak for {} {}", j.variant, j.workload));
        assert!(
            (peak - 6.0).abs() < 0.01,
            "{} {}: peak {peak}",
            j.variant,
            j.workload
        );
    }

    // NVML named each process's MIG device by its GPU and compute instance IDs.
    let samples = std::fs::read_to_string(run.join("samples.csv")).unwrap();
    for j in of("mig").iter().chain(&of("mig-mps")) {
        let pid = j.pid.unwrap().to_string();
        let labels: std::collections::BTreeSet<&str> = samples
            .lines()
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f[3] == "process" && f[4] == pid)
            .map(|f| f[5])
            .collect();
        assert_eq!(
            labels.into_iter().collect::<Vec<_>>(),
            vec![j.uuid.as_str()]
        );
    }

    // Instance rows came from MIG device handles, with their capacity.
    let instances = std::fs::read_to_string(run.join("instances.csv")).unwrap();
    assert!(
        instances.contains("3g.40gb@0") && instances.contains("3g.40gb@4"),
        "{instances}"
    );

    // MIG made and unmade through nvidia-smi, by the IDs the driver gave (from 5 up here).
    let calls = gpu.calls();
    let changes: Vec<&String> = calls.iter().filter(|c| !c.contains("-l")).collect();
    assert_eq!(
        changes.first().unwrap().as_str(),
        "-i 0 -mig 1",
        "{calls:#?}"
    );
    assert_eq!(
        changes.last().unwrap().as_str(),
        "-i 0 -mig 0",
        "{calls:#?}"
    );
    assert!(
        calls.contains(&"mig -i 0 -cgi 9:0".to_string()),
        "{calls:#?}"
    );
    assert!(
        calls.contains(&"mig -i 0 -gi 5 -cci 2".to_string()),
        "{calls:#?}"
    );
    assert!(
        calls.contains(&"mig -i 0 -gi 5 -dgi".to_string()),
        "{calls:#?}"
    );
    // Each MIG variant enables MIG mode and disables it again at its teardown.
    let count = |c: &str| calls.iter().filter(|x| *x == c).count();
    assert_eq!(count("-i 0 -mig 1"), 2, "{calls:#?}");
    assert_eq!(count("-i 0 -mig 0"), 2, "{calls:#?}");

    // MPS: limits set before the first client, logs kept with the run, no daemon left.
    let log = std::fs::read_to_string(run.join("mps/mps/r1/d0/log/control.log")).unwrap();
    let limit = log
        .find("set_default_active_thread_percentage 50")
        .expect(&log);
    // NVIDIA's daemon logs each connection; a stand-in job's (which sends no CUDA handshake)
    // ends "User did not send valid credentials", or, when the daemon is busy, "Unable to
    // accept connection": either way a client came after the limits were set.
    let client = [
        "User did not send valid credentials",
        "Unable to accept connection",
    ]
    .iter()
    .filter_map(|line| log.find(line))
    .min()
    .expect(&log);
    assert!(limit < client, "{log}");
    assert!(
        log.contains("Cmd:quit") && log.contains("Exit with status 0"),
        "{log}"
    );
    assert!(run.join("mps/mig-mps/r1/d1/log/control.log").exists());
    assert_eq!(mps_processes_under(gpu.dir.path()), Vec::<String>::new());

    // The GPU as found: MIG off, no instances; the journal closed, the lock released.
    let state = gpu.state();
    assert_eq!(state["mig_current"], json!(false));
    assert_eq!(state["gis"], json!([]));
    let journal = std::fs::read_to_string(run.join("journal.jsonl")).unwrap();
    assert!(
        journal.lines().last().unwrap().contains("closed"),
        "{journal}"
    );

    // Results say they were measured on hardware through NVML.
    let variants = std::fs::read_to_string(run.join("variants.csv")).unwrap();
    assert!(
        variants.contains("nvml") && !variants.contains(",sim,"),
        "{variants}"
    );
}

#[test]
fn discover_lists_the_mig_devices_with_the_ids_the_driver_gave() {
    let Some(gpu) = FakeDriver::with(json!({ "mig_current": true, "mig_pending": true })) else {
        return;
    };
    gpu.smi(&["mig", "-i", "0", "-cgi", "9:4"]);
    gpu.smi(&["mig", "-i", "0", "-gi", "5", "-cci", "0"]);
    gpu.smi(&["mig", "-i", "0", "-gi", "5", "-cci", "1"]);
    let out = gpu
        .migbench()
        .args(["discover", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let found: Value = serde_json::from_slice(&out.stdout).unwrap();
    let g = &found[0];
    assert_eq!(g["model"], json!({ "Ok": "h100-80gb" }));
    assert_eq!(g["mig_current"], json!(true));
    assert_eq!(g["driver"], json!("535.261.03"));
    assert_eq!(g["cuda"], json!("12.2"));
    let migs = g["mig_devices"].as_array().unwrap();
    let ids: Vec<(u64, u64)> = migs
        .iter()
        .map(|m| {
            (
                m["gpu_instance_id"].as_u64().unwrap(),
                m["compute_instance_id"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ids, vec![(5, 0), (5, 1)]);
    assert!((migs[0]["memory_gib"].as_f64().unwrap() - 39.5).abs() < 0.01);
}

/// A GPU is known by its PCI device ID before its name, which drifts between drivers and board
/// revisions: an H100 that a driver calls something new is still an H100; one whose ID and name
/// the catalog both lack is reported with both.
#[test]
fn discover_identifies_a_gpu_by_its_pci_device_id() {
    let Some(gpu) = FakeDriver::with(json!({ "name": "NVIDIA H100 80GB HBM3 Rev B" })) else {
        return;
    };
    let found: Value = serde_json::from_slice(
        &common::succeeds(gpu.migbench().args(["discover", "--format", "json"])).stdout,
    )
    .unwrap();
    assert_eq!(found[0]["name"], json!("NVIDIA H100 80GB HBM3 Rev B"));
    assert_eq!(found[0]["model"], json!({ "Ok": "h100-80gb" }));

    let Some(gpu) = FakeDriver::with(json!({ "name": "NVIDIA Z100", "pci_device_id": 0xffff }))
    else {
        return;
    };
    let found: Value = serde_json::from_slice(
        &common::succeeds(gpu.migbench().args(["discover", "--format", "json"])).stdout,
    )
    .unwrap();
    let error = found[0]["model"]["Err"].as_str().unwrap();
    assert!(
        error.contains("NVIDIA Z100 (PCI device ID 0xffff)") && error.contains("h100-80gb"),
        "{error}"
    );
}

/// A MIG variant, then one that needs no MIG.
const MIG_THEN_MPS: &str = r#"
[[variants]]
name = "mig"
mode = "mig"
layout = ["3g.40gb", "3g.40gb"]
jobs = [{ workload = "probe", count = 2 }]

[[variants]]
name = "mps"
mode = "mps"
jobs = [{ workload = "probe", count = 2 }]
"#;

#[test]
fn a_mig_mode_change_left_pending_is_reported_and_taken_back() {
    // As in a VM: enabling MIG needs a GPU reset, which migbench never does.
    let Some(gpu) = FakeDriver::with(json!({ "mig_needs_reset": true })) else {
        return;
    };
    let out = gpu.run_variants(MIG_THEN_MPS);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("needs a GPU reset"), "{said}");
    let state = gpu.state();
    assert_eq!(
        state["mig_pending"],
        json!(false),
        "the pending enable was taken back"
    );
    assert_eq!(state["mig_current"], json!(false));
    assert!(gpu.calls().contains(&"-i 0 -mig 0".to_string()));
    // The MIG variant is recorded as not run, with the reason; the one that needs no MIG ran.
    let run = gpu.run_dir();
    let jobs = jobs(&run);
    assert!(jobs.iter().any(|j| j.variant == "mps" && j.outcome == "ok"));
    assert!(jobs
        .iter()
        .filter(|j| j.variant == "mig")
        .all(|j| j.outcome == "not_run"));
    let variants = std::fs::read_to_string(run.join("variants.csv")).unwrap();
    assert!(
        variants.lines().any(|l| l.starts_with("mig,")
            && l.contains("setup_failed")
            && l.contains("GPU reset")),
        "{variants}"
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("setup_failed"), "{summary}");
    let journal = std::fs::read_to_string(run.join("journal.jsonl")).unwrap();
    assert!(
        journal.lines().last().unwrap().contains("closed"),
        "{journal}"
    );

    // The report keeps the failed variant, with why, among measured (not simulated) results.
    let report = gpu.dir.path().join("report");
    let out = gpu
        .migbench()
        .args(["report", "--out"])
        .arg(&report)
        .arg(gpu.out())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(
        md.contains("measured (nvml)") && !md.contains("simulated"),
        "{md}"
    );
    assert!(
        md.contains("setup_failed") && md.contains("GPU reset"),
        "{md}"
    );
}

#[test]
fn without_root_a_mig_variant_fails_naming_the_step_and_the_others_run() {
    let Some(gpu) = FakeDriver::with(json!({ "not_root": true })) else {
        return;
    };
    let out = gpu.run_variants(MIG_THEN_MPS);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("enable MIG mode needs root"), "{said}");
    assert!(said.contains("nvidia-smi -i 0 -mig 1"), "{said}");
    let jobs = jobs(&gpu.run_dir());
    assert!(jobs
        .iter()
        .filter(|j| j.variant == "mps")
        .all(|j| j.outcome == "ok"));
    assert!(jobs
        .iter()
        .filter(|j| j.variant == "mig")
        .all(|j| j.outcome == "not_run"));
    assert_ne!(gpu.state()["mig_current"], json!(true));
}

#[test]
fn a_gpu_in_use_by_someone_else_is_refused_unless_forced() {
    let Some(gpu) = FakeDriver::h100() else {
        return;
    };
    // Another user's CUDA process, holding 2 GiB.
    let mut other = std::process::Command::new(gpu.job())
        .args(["--gib", "2", "--seconds", "30"])
        .env("MIGBENCH_FAKE_GPU", gpu.gpu_dir())
        .env("CUDA_VISIBLE_DEVICES", &gpu.uuid)
        .spawn()
        .unwrap();
    let procs = gpu.gpu_dir().join("procs");
    while std::fs::read_dir(&procs).map_or(true, |d| d.count() == 0) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let scenario = gpu.write_scenario(
        r#"
[[variants]]
name = "full"
mode = "full"
jobs = [{ workload = "probe" }]
"#,
    );
    let refused = gpu.run(&scenario, &[]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains(&other.id().to_string()),
        "{}",
        stderr(&refused)
    );
    let forced = gpu.run(&scenario, &["--force"]);
    other.kill().unwrap();
    other.wait().unwrap();
    assert!(forced.status.success(), "{}", stderr(&forced));
    // The job's peak is its own, not the other process's.
    let jobs = jobs(&gpu.run_dir());
    assert!((jobs[0].peak.unwrap() - 6.0).abs() < 0.01);
}

const LONG_MIG: &str = r#"
[workloads.long]
name = "long"
title = "holds 4 GiB for a minute"
kind = "batch"
unit = "job"
command = ["JOB", "--gib", "4", "--seconds", "60"]
timeout_s = 120
memory = { constant_gib = 4, peak_gib = 4, source = "its arguments" }
sim = { alpha = 1.0, peak_at = 0.0, peak_for = 0.0, source = "its arguments" }

[[variants]]
name = "mig-mps"
mode = "mig+mps"
layout = ["3g.40gb", "3g.40gb"]
jobs = [{ workload = "long", count = 2 }]
"#;

/// Starts a run of two minute-long jobs under mig+mps and returns it once both hold memory.
fn start_long_run(gpu: &FakeDriver) -> std::process::Child {
    let scenario = gpu.write_scenario(&LONG_MIG.replace("JOB", &gpu.job()));
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_migbench"))
        .envs(gpu.env())
        .args(["run", "--quiet", "--out"])
        .arg(gpu.out())
        .arg(&scenario)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let procs = gpu.gpu_dir().join("procs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::read_dir(&procs).map_or(0, |d| d.count()) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the jobs never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child
}

#[test]
fn after_a_crash_restore_stops_the_runs_jobs_and_puts_the_gpu_back() {
    let Some(gpu) = FakeDriver::h100() else {
        return;
    };
    let mut run = start_long_run(&gpu);
    // A crash: no teardown at all. The jobs and MPS daemons outlive migbench.
    run.kill().unwrap();
    run.wait().unwrap();
    assert_eq!(gpu.state()["gis"].as_array().unwrap().len(), 2);
    // One daemon per MIG device, each with its pipe directory (a command being sent to one is
    // a second `nvidia-cuda-mps-control` process for a moment, with the same directory).
    let daemons = mps_daemon_pipes_under(gpu.dir.path());
    assert_eq!(daemons.len(), 2, "one daemon per MIG device: {daemons:?}");

    let restore = gpu.migbench().arg("restore").output().unwrap();
    let said = String::from_utf8_lossy(&restore.stdout);
    assert!(restore.status.success(), "{said}{}", stderr(&restore));
    assert!(
        said.contains("stopped 2 job(s) the crashed run left running"),
        "{said}"
    );
    assert!(said.contains("the GPU is as the run found it"), "{said}");
    gpu.assert_as_found();
    let journal = std::fs::read_to_string(gpu.run_dir().join("journal.jsonl")).unwrap();
    assert!(
        journal.lines().last().unwrap().contains("closed"),
        "{journal}"
    );

    // Safe to run twice.
    let again = gpu
        .migbench()
        .arg("restore")
        .arg(gpu.run_dir())
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to do"));
}

#[test]
fn sigterm_stops_the_jobs_and_tears_down() {
    let Some(gpu) = FakeDriver::h100() else {
        return;
    };
    let mut run = start_long_run(&gpu);
    // SAFETY: signals the migbench this test started.
    unsafe { libc::kill(run.id() as i32, libc::SIGTERM) };
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    gpu.assert_as_found();
    let jobs = jobs(&gpu.run_dir());
    assert_eq!(jobs.len(), 2);
    assert!(
        jobs.iter().all(|j| j.outcome == "interrupted"),
        "{:?}",
        jobs.iter().map(|j| &j.outcome).collect::<Vec<_>>()
    );
}

#[test]
fn a_gpu_the_catalog_does_not_know_is_an_error_naming_the_known_ones() {
    // Its name and its PCI device ID (0x2684) are both unknown.
    let Some(gpu) =
        FakeDriver::with(json!({ "name": "NVIDIA GeForce RTX 4090", "pci_device_id": 0x2684 }))
    else {
        return;
    };
    let out = gpu.run_variants(ONE_FULL_JOB);
    assert_eq!(out.status.code(), Some(2));
    let said = stderr(&out);
    assert!(said.contains("NVIDIA GeForce RTX 4090"), "{said}");
    assert!(
        said.contains("h100-80gb") && said.contains("a100-40gb"),
        "{said}"
    );
    // Nothing was changed or recorded as a run.
    assert!(gpu.calls().is_empty());
    assert!(!gpu.out().exists() || std::fs::read_dir(gpu.out()).unwrap().count() == 0);
}

/// The utilization figures of the MIG instances' sample rows.
fn instance_utilization(samples: &polars::prelude::DataFrame) -> Vec<f64> {
    let scope = common::strs(samples, "scope");
    let utilization = common::floats(samples, "utilization_pct");
    (0..samples.height())
        .filter(|&i| scope.get(i) == Some("instance"))
        .filter_map(|i| utilization.get(i))
        .collect()
}

/// Energy on the NVML path: the GPU's total-energy counter read around each variant's jobs
/// (through the stand-in's nvmlDeviceGetTotalEnergyConsumption), power on every GPU sample,
/// each job's share of it; and a board that reports neither has no energy, never 0.
#[test]
fn energy_comes_from_the_gpu_counter_and_is_shared_among_the_jobs() {
    const VARIANTS: &str = r#"
[[variants]]
name = "full"
mode = "full"
jobs = [{ workload = "probe" }]

[[variants]]
name = "mig"
mode = "mig"
layout = ["4g.40gb", "3g.40gb"]
jobs = [{ workload = "probe", count = 2 }]
"#;
    let Some(gpu) = FakeDriver::h100() else {
        return;
    };
    let out = gpu.run_variants(VARIANTS);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = gpu.run_dir();
    let variants = common::table(&run, "variants");
    let names = common::strs(&variants, "variant");
    let sources = common::strs(&variants, "energy_source");
    let energy = common::floats(&variants, "energy_j");
    let power = common::floats(&variants, "mean_power_w");
    let per_unit = common::floats(&variants, "energy_per_unit_j");
    // The H100's catalog power: 70 W idle, 700 W board (docs/energy.md).
    for i in 0..variants.height() {
        let name = names.get(i).unwrap();
        assert_eq!(sources.get(i), Some("counter"), "{name}");
        let (joules, watts) = (energy.get(i).unwrap(), power.get(i).unwrap());
        assert!((70.0..=700.0).contains(&watts), "{name}: {watts} W");
        assert!(joules > 0.0, "{name}: {joules} J");
        assert!(
            (per_unit.get(i).unwrap() * if name == "mig" { 2.0 } else { 1.0 } - joules).abs()
                < 1e-6
        );
    }
    // The jobs' shares add up to their variant's energy.
    let jobs = common::table(&run, "jobs");
    let (job_variant, job_energy) = (
        common::strs(&jobs, "variant"),
        common::floats(&jobs, "energy_j"),
    );
    for i in 0..variants.height() {
        let shares: f64 = (0..jobs.height())
            .filter(|&j| job_variant.get(j) == names.get(i))
            .map(|j| job_energy.get(j).unwrap())
            .sum();
        assert!(
            (shares - energy.get(i).unwrap()).abs() < 1e-6 * shares.max(1.0),
            "{shares}"
        );
    }
    // Power on the GPU's samples, none on the others.
    let samples = common::table(&run, "samples");
    let (scope, watts) = (
        common::strs(&samples, "scope"),
        common::floats(&samples, "power_w"),
    );
    let mut gpu_rows = 0;
    for i in 0..samples.height() {
        match scope.get(i) {
            Some("gpu") => {
                gpu_rows += 1;
                assert!((70.0..=700.0).contains(&watts.get(i).unwrap()));
            }
            _ => assert_eq!(watts.get(i), None),
        }
    }
    assert!(gpu_rows > 0);

    // The H100 has GPM: each MIG instance's SM activity is sampled (from its second sample on,
    // as GPM gives it between two), and the MIG variant's energy is shared by it.
    let splits = common::strs(&variants, "energy_split");
    let split_of = |name: &str| {
        splits.get(
            (0..variants.height())
                .find(|&i| names.get(i) == Some(name))
                .unwrap(),
        )
    };
    assert_eq!(split_of("mig"), Some("sm_activity"));
    assert_eq!(split_of("full"), Some("sm_seconds"));
    let busy = instance_utilization(&samples);
    assert!(busy.iter().all(|u| (0.0..=100.0).contains(u)), "{busy:?}");
    assert!(
        busy.iter().any(|&u| u > 50.0),
        "a probe keeps its instance busy: {busy:?}"
    );

    // Without GPM (an Ampere GPU has none): no instance utilization, and shares by SM-seconds.
    let Some(gpu) = FakeDriver::with(json!({ "gpm": false })) else {
        return;
    };
    let out = gpu.run_variants(VARIANTS);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = gpu.run_dir();
    let samples = common::table(&run, "samples");
    assert!(instance_utilization(&samples).is_empty());
    let splits = common::strs(&common::table(&run, "variants"), "energy_split");
    assert!(splits.into_iter().all(|s| s == Some("sm_seconds")));

    // A board without power readings: energy is absent, not zero.
    let Some(gpu) = FakeDriver::with(json!({ "board_w": 0.0 })) else {
        return;
    };
    let out = gpu.run_variants(ONE_FULL_JOB);
    assert!(out.status.success(), "{}", stderr(&out));
    let variants = common::table(&gpu.run_dir(), "variants");
    assert_eq!(common::floats(&variants, "energy_j").get(0), None);
    assert_eq!(common::strs(&variants, "energy_source").get(0), None);
}
