//! `migbench run --sim` end to end: the orchestrator on the simulated GPU in every mode.
//!
//! Durations are simulated seconds. Simulated time advances by events, so they are exact: the
//! only tolerances left are the model's own (its `alpha` is rounded).

mod common;

use std::path::Path;

use common::{migbench, run_sim_output, table, SAMPLE_EVERY_SECOND};
use polars::prelude::*;

struct Job {
    variant: String,
    job: u32,
    outcome: String,
    start: f64,
    end: f64,
    uuid: String,
    peak: Option<f64>,
    constant: Option<f64>,
    exit: Option<i32>,
}

fn job_rows(df: &DataFrame) -> Vec<Job> {
    let s = |c: &str| df.column(c).unwrap().str().unwrap().clone();
    let f = |c: &str| df.column(c).unwrap().f64().unwrap().clone();
    let (variant, outcome, uuid) = (s("variant"), s("outcome"), s("instance_uuid"));
    let (start, end, peak, constant) = (
        f("start_s"),
        f("end_s"),
        f("vram_peak_gib"),
        f("vram_constant_gib"),
    );
    let job = df.column("job").unwrap().u32().unwrap().clone();
    let exit = df.column("exit_code").unwrap().i32().unwrap().clone();
    (0..df.height())
        .map(|i| Job {
            variant: variant.get(i).unwrap().to_string(),
            job: job.get(i).unwrap(),
            outcome: outcome.get(i).unwrap().to_string(),
            start: start.get(i).unwrap_or(f64::NAN),
            end: end.get(i).unwrap_or(f64::NAN),
            uuid: uuid.get(i).unwrap_or("").to_string(),
            peak: peak.get(i),
            constant: constant.get(i),
            exit: exit.get(i),
        })
        .collect()
}

fn near(actual: f64, expected: f64, tolerance: f64) -> bool {
    (actual - expected).abs() <= expected * tolerance
}

#[test]
fn h100_three_ti2v_videos_follow_the_physics() {
    let out = tempfile::tempdir().unwrap();
    let (dir, output) = run_sim_output(
        Path::new("scenarios/h100-3x-ti2v.toml"),
        out.path(),
        SAMPLE_EVERY_SECOND,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("backend: sim — a simulated GPU"),
        "{stdout}"
    );

    let rows = job_rows(&table(&dir, "jobs"));
    assert_eq!(rows.len(), 12);
    let variant = |v: &str| rows.iter().filter(|j| j.variant == v).collect::<Vec<_>>();

    // Whole GPU, one after another: 242 s each (T), peaks 33 GiB, holds 21 GiB.
    for j in variant("full-sequential") {
        assert_eq!(j.outcome, "ok");
        assert!(
            (j.end - j.start - 242.0).abs() < 1e-6,
            "{}",
            j.end - j.start
        );
        assert_eq!((j.peak, j.constant), (Some(33.0), Some(21.0)));
    }
    let full = variant("full-sequential");
    assert!(
        full[1].start >= full[0].end - 1e-6 && full[2].start >= full[1].end - 1e-6,
        "one at a time"
    );

    // Three at once under MPS: at the peak 33 + 33 + 21 GiB does not fit in 79.65, so exactly
    // one job runs out of memory; the other two go on and finish.
    let together = variant("mps-together");
    let outcomes: Vec<&str> = together.iter().map(|j| j.outcome.as_str()).collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == "oom").count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| **o == "ok").count(),
        2,
        "{outcomes:?}"
    );
    let oom = together.iter().find(|j| j.outcome == "oom").unwrap();
    assert_eq!(oom.exit, Some(1));
    let log = std::fs::read_to_string(dir.join(format!("logs/mps-together/r1-j{}.log", oom.job)))
        .unwrap();
    assert!(
        log.contains("torch.OutOfMemoryError: CUDA out of memory."),
        "{log}"
    );

    // A minute apart under MPS: only one peaks at a time, so all three finish; starts honour
    // the 60 s stagger.
    let staggered = variant("mps-staggered");
    assert!(staggered.iter().all(|j| j.outcome == "ok"));
    let t0 = staggered[0].start;
    for (k, j) in staggered.iter().enumerate() {
        assert!(
            (j.start - t0 - 60.0 * k as f64).abs() < 1e-9,
            "job {k} started at +{}",
            j.start - t0
        );
    }

    // MIG 2 × 3g.40gb: 410 s per video (T: 6 min 50 s); the third waits for a free instance
    // and runs on the one that freed first.
    let mig = variant("mig-2x3g");
    assert!(mig
        .iter()
        .all(|j| j.outcome == "ok" && j.uuid.starts_with("MIG-")));
    for j in &mig {
        // The model's own tolerance: alpha is rounded to three digits.
        assert!(near(j.end - j.start, 410.0, 0.001), "{}", j.end - j.start);
    }
    assert_ne!(mig[0].uuid, mig[1].uuid);
    let third = &mig[2];
    let first_free = mig[..2]
        .iter()
        .min_by(|a, b| a.end.total_cmp(&b.end))
        .unwrap();
    assert!(third.start >= first_free.end - 1e-6);
    assert_eq!(third.uuid, first_free.uuid);

    // The variants table: effective time per unit is the makespan over units completed.
    let variants = LazyFrame::scan_parquet(dir.join("variants.parquet"), Default::default())
        .unwrap()
        .collect()
        .unwrap();
    let per_unit = variants
        .column("time_per_unit_s")
        .unwrap()
        .f64()
        .unwrap()
        .clone();
    let makespan = variants
        .column("makespan_s")
        .unwrap()
        .f64()
        .unwrap()
        .clone();
    let units = variants.column("units").unwrap().u32().unwrap().clone();
    for i in 0..variants.height() {
        let expected = makespan.get(i).unwrap() / f64::from(units.get(i).unwrap());
        assert!((per_unit.get(i).unwrap() - expected).abs() < 1e-9);
    }
    assert_eq!(
        variants.column("backend").unwrap().str().unwrap().get(0),
        Some("sim")
    );

    // Per-variant peaks of the whole GPU and of each MIG instance: one video at a time per
    // 3g.40gb, so each instance peaks at one video's 33 GiB of its 39.5.
    let instances = LazyFrame::scan_parquet(dir.join("instances.parquet"), Default::default())
        .unwrap()
        .filter(col("variant").eq(lit("mig-2x3g")))
        .sort(["instance"], Default::default())
        .collect()
        .unwrap();
    let names: Vec<Option<&str>> = instances
        .column("instance")
        .unwrap()
        .str()
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(names, [Some("3g.40gb@0"), Some("3g.40gb@4"), Some("GPU")]);
    let peaks: Vec<Option<f64>> = instances
        .column("vram_peak_gib")
        .unwrap()
        .f64()
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(&peaks[..2], &[Some(33.0), Some(33.0)]);
    assert_eq!(
        instances
            .column("capacity_gib")
            .unwrap()
            .f64()
            .unwrap()
            .get(0),
        Some(39.5)
    );

    // The CSV says the same as the Parquet.
    let csv = std::fs::read_to_string(dir.join("jobs.csv")).unwrap();
    assert_eq!(csv.lines().count(), 13);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        (
            manifest["backend"].as_str(),
            manifest["simulated"].as_bool()
        ),
        (Some("sim"), Some(true))
    );
    assert_eq!(manifest["status"], "complete");
    assert_eq!(manifest["scenario_sha256"].as_str().unwrap().len(), 64);
}

/// An inline workload for test scenarios: memory and time profile, plus extra lines
/// (`timeout_s = ...` at the top, `fail_at = ...` in its sim table).
#[allow(clippy::too_many_arguments)]
fn workload(
    name: &str,
    constant: f64,
    peak: f64,
    full_gpu_s: f64,
    peak_at: f64,
    peak_for: f64,
    top: &str,
    sim: &str,
) -> String {
    format!(
        r#"
[workloads.{name}]
name = "{name}"
title = "{name}"
kind = "batch"
unit = "video"
command = ["python", "{name}.py"]
{top}
[workloads.{name}.memory]
constant_gib = {constant:?}
peak_gib = {peak:?}
source = "test"
[workloads.{name}.timing]
reference_gpu = "h100-80gb"
full_gpu_s = {full_gpu_s:?}
source = "test"
[workloads.{name}.sim]
alpha = 0.7
peak_at = {peak_at:?}
peak_for = {peak_for:?}
{sim}
source = "test"
"#
    )
}

/// A scenario with a workload that crashes, one that hangs past its timeout, and a normal one.
fn failures() -> String {
    [
        r#"
[scenario]
name = "failures"
[gpu]
model = "h100-80gb"

"#,
        &workload("crasher", 5.0, 5.0, 100.0, 0.0, 0.0, "", "fail_at = 0.5"),
        &workload("slow", 5.0, 5.0, 5000.0, 0.0, 0.0, "timeout_s = 150.0", ""),
        r#"
[[variants]]
name = "mixed"
mode = "mps"
jobs = [{ workload = "crasher" }, { workload = "slow" }, { workload = "ti2v-5b" }]
"#,
    ]
    .concat()
}

#[test]
fn crashes_and_timeouts_are_recorded_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("failures.toml");
    std::fs::write(&file, failures()).unwrap();
    let out = dir.path().join("results");
    let (run, output) = run_sim_output(&file, &out, SAMPLE_EVERY_SECOND);
    assert!(
        output.status.success(),
        "a failing workload is a result: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows = job_rows(&table(&run, "jobs"));
    let by = |w: usize| rows.iter().find(|j| j.job as usize == w).unwrap();
    assert_eq!((by(0).outcome.as_str(), by(0).exit), ("failed", Some(3)));
    assert_eq!(by(1).outcome, "timeout");
    assert!(
        (by(1).end - by(1).start - 150.0).abs() < 1e-9,
        "{}",
        by(1).end - by(1).start
    );
    assert_eq!(by(2).outcome, "ok");
}

#[test]
fn infeasible_variants_are_skipped_with_the_reason() {
    let out = tempfile::tempdir().unwrap();
    let (dir, output) = run_sim_output(
        Path::new("scenarios/h100-2x-s2v.toml"),
        out.path(),
        SAMPLE_EVERY_SECOND,
    );
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("mig-4g-3g: infeasible: s2v-14b needs 58.00 GiB at its peak"),
        "{stdout}"
    );
    let rows = job_rows(&table(&dir, "jobs"));
    let mig: Vec<&Job> = rows.iter().filter(|j| j.variant == "mig-4g-3g").collect();
    assert_eq!(mig.len(), 2);
    assert!(mig.iter().all(|j| j.outcome == "infeasible"));
    // The other variants still ran: two S2V at once under MPS do not fit (2 × 55 GiB).
    assert!(rows
        .iter()
        .any(|j| j.variant == "mps-together" && j.outcome == "oom"));
    assert!(rows
        .iter()
        .any(|j| j.variant == "full-alone" && j.outcome == "ok"));
}

/// Long MIG+MPS jobs (two per 3g.40gb), so that an interrupt lands while MIG instances and
/// MPS daemons exist.
fn long_mig_mps() -> String {
    [
        r#"
[scenario]
name = "interrupt"
[gpu]
model = "h100-80gb"

"#,
        &workload("long", 10.0, 12.0, 5000.0, 0.5, 0.1, "", ""),
        r#"
[[variants]]
name = "quick"
mode = "full"
jobs = [{ workload = "ti2v-5b" }]

[[variants]]
name = "long"
mode = "mig+mps"
layout = ["3g.40gb", "3g.40gb"]
jobs = [{ workload = "long", count = 4 }]
"#,
    ]
    .concat()
}

#[test]
fn ctrl_c_tears_down_and_keeps_finished_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("interrupt.toml");
    std::fs::write(&file, long_mig_mps()).unwrap();
    let out = dir.path().join("results");
    let exe = assert_cmd::cargo::cargo_bin("migbench");
    let child = std::process::Command::new(exe)
        .args(["run", "--sim", "--quiet", "--pace", "100", "--out"])
        .arg(&out)
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // "quick" takes ~2.4 s real; interrupt well inside "long" (~8 s).
    std::thread::sleep(std::time::Duration::from_millis(4500));
    // SAFETY: sends SIGINT to the child we started, as Ctrl-C would.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let run = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let journal: Vec<serde_json::Value> = std::fs::read_to_string(run.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |kind: &str| -> Vec<&serde_json::Value> {
        journal.iter().filter(|r| r["record"] == kind).collect()
    };
    let applied = of("apply");
    let undone: Vec<u64> = of("undone")
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    // MIG on, 2 GIs, 2 CIs, 2 MPS daemons: all undone, newest first, none failed.
    assert_eq!(applied.len(), 7, "{applied:?}");
    assert_eq!(of("done").len(), 7);
    assert_eq!(undone, [7, 6, 5, 4, 3, 2, 1]);
    assert_eq!(applied[6]["change"]["change"], "start_mps");
    assert_eq!(applied[0]["change"]["change"], "set_mig_mode");
    assert!(of("undo_failed").is_empty() && of("failed").is_empty());
    assert_eq!(journal.last().unwrap()["record"], "closed");

    let rows = job_rows(&table(&run, "jobs"));
    assert!(
        rows.iter()
            .any(|j| j.variant == "quick" && j.outcome == "ok"),
        "the finished job is kept"
    );
    let long: Vec<&Job> = rows.iter().filter(|j| j.variant == "long").collect();
    assert_eq!(long.len(), 4);
    assert!(long.iter().all(|j| j.outcome == "interrupted"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["status"], "interrupted");
}

#[test]
fn without_a_driver_the_real_backend_says_to_use_sim() {
    if Path::new("/dev/nvidiactl").exists() {
        return; // A machine with a driver takes the other branch.
    }
    for args in [&["run", "scenarios/h100-3x-ti2v.toml"][..], &["discover"]] {
        migbench()
            .args(args)
            .assert()
            .code(2)
            .stderr(predicates::str::contains(
                "no NVIDIA driver found — use --sim for the simulated GPU",
            ));
    }
}

/// A flat 10 GiB job of 100 s on a whole H100, with alpha = 0.7.
fn modes() -> String {
    [
        r#"
[scenario]
name = "modes"
[gpu]
model = "h100-80gb"

"#,
        &workload("flat", 10.0, 10.0, 100.0, 0.0, 0.0, "", ""),
        r#"
[[variants]]
name = "timeslice"
mode = "timeslice"
jobs = [{ workload = "flat", count = 2 }]

[[variants]]
name = "mps"
mode = "mps"
jobs = [{ workload = "flat", count = 2 }]

[[variants]]
name = "mps-capped"
mode = "mps"
mps = { active_thread_percentage = 25 }
jobs = [{ workload = "flat", count = 2 }]

[[variants]]
name = "mig-mps"
mode = "mig+mps"
layout = ["3g.40gb", "3g.40gb"]
jobs = [{ workload = "flat", count = 4 }]
"#,
    ]
    .concat()
}

#[test]
fn compute_sharing_follows_each_mode() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("modes.toml");
    std::fs::write(&file, modes()).unwrap();
    let (run, output) = run_sim_output(&file, &dir.path().join("results"), SAMPLE_EVERY_SECOND);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows = job_rows(&table(&run, "jobs"));
    let durations = |v: &str| -> Vec<f64> {
        rows.iter()
            .filter(|j| j.variant == v && j.outcome == "ok")
            .map(|j| j.end - j.start)
            .collect()
    };
    let expect = |v: &str, n: usize, secs: f64| {
        let d = durations(v);
        assert_eq!(d.len(), n, "{v}: {d:?}");
        for x in d {
            assert!(near(x, secs, 1e-9), "{v}: {x} s, expected {secs} s");
        }
    };
    // Time-slicing: each gets half the time on all SMs.
    expect("timeslice", 2, 100.0 / 0.5);
    // MPS: each gets half the SMs, and half the SMs is worth 0.5^0.7 of the speed.
    expect("mps", 2, 100.0 / 0.5f64.powf(0.7));
    // Capped at 25% of the SMs each.
    expect("mps-capped", 2, 100.0 / 0.25f64.powf(0.7));
    // Two per 3g.40gb (60 of 132 SMs) under MPS.
    expect("mig-mps", 4, 100.0 / (60.0 / 132.0 * 0.5f64).powf(0.7));
    let mig = rows
        .iter()
        .filter(|j| j.variant == "mig-mps")
        .map(|j| j.uuid.clone())
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(mig.len(), 2, "jobs spread over both instances");
}

#[test]
fn a_bad_pace_or_sampling_interval_exits_2_naming_it() {
    for (args, says) in [
        (
            &["--pace", "0"][..],
            "--pace 0: the pace is simulated seconds per real second",
        ),
        (&["--pace", "-5"], "--pace -5"),
        (&["--pace", "NaN"], "--pace NaN"),
        (&["--pace", "inf"], "--pace inf"),
        (
            &["--sample-ms", "0"],
            "--sample-ms 0: the sampling interval is 1 to 3600000",
        ),
    ] {
        migbench()
            .args(["run", "--sim", "--quiet"])
            .args(args)
            .arg("scenarios/h100-3x-ti2v.toml")
            .assert()
            .code(2)
            .stderr(predicates::str::contains(says));
    }
    // --pace is for the simulator's clock: a real GPU's is the wall clock.
    migbench()
        .args(["run", "--pace", "10", "scenarios/h100-3x-ti2v.toml"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--sim"));
}

/// The most MPS clients a device takes (48 on Volta and later), and the most MIG instances an
/// H100 takes (seven 1g.10gb), all at once: every job ends ok and the GPU is left as found.
#[test]
fn forty_eight_mps_clients_and_seven_mig_instances_run_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("many.toml");
    let text = [
        r#"
[scenario]
name = "many"
[gpu]
model = "h100-80gb"

"#,
        &workload("small", 1.0, 1.5, 60.0, 0.5, 0.1, "", ""),
        r#"
[[variants]]
name = "mps-48"
mode = "mps"
jobs = [{ workload = "small", count = 48 }]

[[variants]]
name = "mig-7x1g"
mode = "mig"
layout = ["1g.10gb", "1g.10gb", "1g.10gb", "1g.10gb", "1g.10gb", "1g.10gb", "1g.10gb"]
jobs = [{ workload = "small", count = 7 }]
"#,
    ]
    .concat();
    std::fs::write(&file, text).unwrap();
    let (run, output) = run_sim_output(&file, &dir.path().join("results"), SAMPLE_EVERY_SECOND);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows = job_rows(&table(&run, "jobs"));
    let ok = |v: &str| {
        rows.iter()
            .filter(|j| j.variant == v && j.outcome == "ok")
            .count()
    };
    assert_eq!(ok("mps-48"), 48);
    assert_eq!(ok("mig-7x1g"), 7);
    // All 48 at once: each has 1/48 of the SMs (alpha 0.7), so all end together.
    let mps: Vec<&Job> = rows.iter().filter(|j| j.variant == "mps-48").collect();
    let expected = 60.0 / (1.0f64 / 48.0).powf(0.7);
    assert!(mps.iter().all(|j| near(j.end - j.start, expected, 1e-9)));
    // Seven instances, seven UUIDs, one job each.
    let uuids: std::collections::BTreeSet<&str> = rows
        .iter()
        .filter(|j| j.variant == "mig-7x1g")
        .map(|j| j.uuid.as_str())
        .collect();
    assert_eq!(uuids.len(), 7);
    let journal = std::fs::read_to_string(run.join("journal.jsonl")).unwrap();
    assert!(journal.lines().last().unwrap().contains("\"closed\""));
}

/// Slots are numbered by start slice even where pinned starts are written out of order
/// (docs/scenario.md, "Jobs, groups and instances"): slot 0 of `3g.40gb@4, 4g.40gb@0` is the
/// 4g.40gb.
#[test]
fn slots_follow_the_slices_not_the_order_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("slots.toml");
    std::fs::write(
        &file,
        r#"
[scenario]
name = "slots"
[gpu]
model = "h100-80gb"
[[variants]]
name = "pinned-out-of-order"
mode = "mig"
layout = ["3g.40gb@4", "4g.40gb@0"]
jobs = [{ workload = "ti2v-5b", instances = [0] }, { workload = "ti2v-5b", instances = [1] }]
"#,
    )
    .unwrap();
    let (run, output) = run_sim_output(&file, &dir.path().join("results"), SAMPLE_EVERY_SECOND);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let jobs = table(&run, "jobs");
    let profiles = common::strs(&jobs, "instance_profile");
    let job = jobs.column("job").unwrap().u32().unwrap().clone();
    let profile_of = |n: u32| {
        (0..jobs.height())
            .find(|&i| job.get(i) == Some(n))
            .and_then(|i| profiles.get(i))
            .unwrap()
            .to_string()
    };
    assert_eq!(profile_of(0), "4g.40gb");
    assert_eq!(profile_of(1), "3g.40gb");
}
