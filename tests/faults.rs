//! Faults on purpose (`MIGBENCH_FAULT`, see src/fault.rs): a panic after setup, write errors as
//! on a full disk at each kind of file, and a kill right after every journal record. Whatever
//! happens, the GPU ends as found (at once, or after `migbench restore` from any directory),
//! the journal is closed, the manifest has a final status, and nothing recorded is lost.

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// Two MIG instances with an MPS daemon each, two jobs on each; a quick variant before.
const MIG_MPS: &str = r#"
[scenario]
name = "faults"
[gpu]
model = "h100-80gb"

[workloads.job]
name = "job"
title = "job"
kind = "batch"
unit = "video"
command = ["python", "job.py"]
memory = { constant_gib = 5.0, peak_gib = 6.0, source = "test" }
timing = { reference_gpu = "h100-80gb", full_gpu_s = 100.0, source = "test" }
sim = { alpha = 0.7, peak_at = 0.5, peak_for = 0.1, source = "test" }

[[variants]]
name = "first"
mode = "full"
jobs = [{ workload = "job" }]

[[variants]]
name = "mig-mps"
mode = "mig+mps"
layout = ["3g.40gb", "3g.40gb"]
jobs = [{ workload = "job", count = 4, stagger_s = 10 }]
"#;

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("scenario.toml"), MIG_MPS).unwrap();
        Setup { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn migbench(&self) -> Command {
        common::migbench_in(&self.path("state"))
    }

    /// Runs the scenario on the GPU saved in `gpu.json`, with `fault` (if any).
    fn run(&self, out: &str, fault: Option<&str>) -> std::process::Output {
        self.run_with(out, fault, &[])
    }

    /// [`Setup::run`] with more options.
    fn run_with(&self, out: &str, fault: Option<&str>, options: &[&str]) -> std::process::Output {
        let mut cmd = self.migbench();
        cmd.args(["run", "--sim", "--quiet"])
            .args(options)
            .arg("--sim-state")
            .arg(self.path("gpu.json"))
            .arg("--out")
            .arg(self.path(out))
            .arg(self.path("scenario.toml"));
        if let Some(f) = fault {
            cmd.env("MIGBENCH_FAULT", f);
        }
        cmd.output().unwrap()
    }

    fn run_dir(&self, out: &str) -> PathBuf {
        common::run_dir(&self.path(out))
    }

    fn gpu_as_found(&self) -> bool {
        // A run killed before it saved the simulated GPU never changed it (on a loaded machine a
        // kill 20 ms after the start can land there).
        let Ok(text) = std::fs::read_to_string(self.path("gpu.json")) else {
            return true;
        };
        let s: serde_json::Value = serde_json::from_str(&text).unwrap();
        s["mig_enabled"] == false
            && s["instances"].as_array().is_none_or(|a| a.is_empty())
            && s["mps"].as_array().is_none_or(|a| a.is_empty())
    }
}

fn records(run: &Path, file: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join(file))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn manifest_status(run: &Path) -> String {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("manifest.json")).unwrap()).unwrap();
    m["status"].as_str().unwrap().to_string()
}

/// A run that failed in the middle: exit 1, what failed said, the GPU as found, the journal
/// closed, a final status, and a next run free to start.
fn assert_failed_cleanly(s: &Setup, out: &str, output: &std::process::Output, says: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(says), "{stderr}");
    assert!(s.gpu_as_found());
    let run = s.run_dir(out);
    assert_eq!(
        records(&run, "journal.jsonl").last().unwrap()["record"],
        "closed"
    );
    assert_eq!(manifest_status(&run), "failed");
    let next = s.run(&format!("{out}-next"), None);
    assert!(
        next.status.success(),
        "{}",
        String::from_utf8_lossy(&next.stderr)
    );
}

#[test]
fn a_panic_after_setup_stops_the_jobs_and_puts_the_gpu_back() {
    let s = Setup::new();
    let output = s.run("out", Some("panic:after-setup"));
    assert_failed_cleanly(&s, "out", &output, "injected panic (after-setup");
    // MIG and MPS were set up before the panic, and undone after it.
    let journal = records(&s.run_dir("out"), "journal.jsonl");
    let applied = journal.iter().filter(|r| r["record"] == "apply").count();
    let undone = journal.iter().filter(|r| r["record"] == "undone").count();
    assert!(applied >= 7 && undone == applied, "{applied} {undone}");
}

#[test]
fn a_full_disk_mid_variant_stops_the_jobs_undoes_the_setup_and_keeps_what_finished() {
    let s = Setup::new();
    // Events: run start, first's start, its job's start and end, first's end, mig-mps's start,
    // then its first job's start fails.
    let output = s.run("out", Some("write:events:7"));
    assert_failed_cleanly(&s, "out", &output, "No space left on device");
    // The first variant's job finished and is in the tables; the second variant failed.
    let run = s.run_dir("out");
    let jobs = std::fs::read_to_string(run.join("jobs.csv")).unwrap();
    assert!(
        jobs.lines()
            .any(|l| l.starts_with("first,") && l.contains(",ok,")),
        "{jobs}"
    );
    let variants = std::fs::read_to_string(run.join("variants.csv")).unwrap();
    assert!(variants
        .lines()
        .any(|l| l.starts_with("mig-mps,") && l.contains(",failed,")));
}

#[test]
fn a_write_error_at_a_variants_end_still_closes_the_run() {
    let s = Setup::new();
    let output = s.run("out", Some("write:tables:1"));
    assert_failed_cleanly(&s, "out", &output, "cannot write the tables");
}

/// The run's first writes after the journal has the GPU's state (the manifest, its first event)
/// fail: nothing on the GPU changed, so the journal is closed and the GPU freed, and the next
/// run starts (the journal was left open, and the next run refused, before).
#[test]
fn a_failed_write_before_any_change_closes_the_journal_and_frees_the_gpu() {
    for (out, fault, says) in [
        ("manifest", "write:manifest:1", "manifest.json"),
        ("events", "write:events:1", "events.jsonl"),
    ] {
        let s = Setup::new();
        let output = s.run(out, Some(fault));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{fault}: {stderr}");
        assert!(stderr.contains(says), "{fault}: {stderr}");
        let journal = records(&s.run_dir(out), "journal.jsonl");
        assert_eq!(journal.first().unwrap()["record"], "found", "{fault}");
        assert_eq!(journal.last().unwrap()["record"], "closed", "{fault}");
        assert!(s.gpu_as_found());
        let next = s.run(&format!("{out}-next"), None);
        assert!(
            next.status.success(),
            "{fault}: {}",
            String::from_utf8_lossy(&next.stderr)
        );
    }
}

#[test]
fn a_full_disk_for_the_samples_fails_the_run_cleanly() {
    // The first part of the samples is written when the first variant ends.
    let s = Setup::new();
    let output = s.run("out", Some("write:samples:1"));
    assert_failed_cleanly(&s, "out", &output, "/samples: No space left on device");
}

/// The samples stream to disk as they are taken: a run killed in its second variant keeps them
/// up to the last part written, and `report` reads the run as it was left.
#[test]
fn a_killed_run_keeps_its_samples_up_to_the_last_part_and_is_reported() {
    let s = Setup::new();
    // A sample every simulated millisecond: the first variant's 100 s job gives about 200,000
    // rows (three parts of 65,536), so the fourth part ends in the second variant.
    let output = s.run_with("out", Some("abort:samples:4"), &["--sample-ms", "1"]);
    assert_eq!(output.status.code(), None, "killed by a signal");
    let run = s.run_dir("out");
    assert_eq!(manifest_status(&run), "running");
    let samples = common::table(&run, "samples");
    assert_eq!(samples.height(), 4 * migbench::results::stream::PART_ROWS);
    let variants = common::strs(&samples, "variant");
    assert!(variants.into_iter().any(|v| v == Some("first")));
    assert!(variants.into_iter().any(|v| v == Some("mig-mps")));
    // Killed after its fourth part was renamed into place: four complete parts, nothing else.
    let mut parts: Vec<String> = std::fs::read_dir(run.join("samples"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    parts.sort();
    assert_eq!(
        parts,
        (0..4)
            .map(|n| format!("part-0000{n}.parquet"))
            .collect::<Vec<_>>()
    );

    let report = s
        .migbench()
        .args(["report", "--out"])
        .arg(s.path("report"))
        .arg(&run)
        .output()
        .unwrap();
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    assert!(s.path("report/plots/vram-faults-first.svg").is_file());
    let restore = s.migbench().arg("restore").arg(&run).output().unwrap();
    assert!(restore.status.success());
    assert!(s.gpu_as_found());
}

#[test]
fn a_full_disk_for_the_journal_never_leaves_a_change_unjournaled() {
    // The journal's 4th record (the second `apply`) cannot be written: that change is not made,
    // the first is undone, and `restore` (from anywhere) closes what the run could not.
    let s = Setup::new();
    let output = s.run("out", Some("write:journal:4"));
    assert_eq!(output.status.code(), Some(1));
    assert!(s.gpu_as_found());
    let run = s.run_dir("out");
    let restored = s
        .migbench()
        .current_dir("/")
        .arg("restore")
        .arg(&run)
        .output()
        .unwrap();
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert!(s.gpu_as_found());
}

#[test]
fn a_kill_after_any_journal_record_is_restored_from_another_directory() {
    let s = Setup::new();
    let complete = s.run("complete", None);
    assert!(complete.status.success());
    let lines = records(&s.run_dir("complete"), "journal.jsonl").len() as u64;
    assert!(lines > 20, "{lines}");
    for n in 1..lines {
        let out = format!("killed-{n}");
        let output = s.run(&out, Some(&format!("abort:journal:{n}")));
        assert_eq!(output.status.code(), None, "record {n}: killed by a signal");
        let run = s.run_dir(&out);
        let restore = || {
            s.migbench()
                .current_dir(std::env::temp_dir())
                .arg("restore")
                .arg(&run)
                .output()
                .unwrap()
        };
        let first = restore();
        assert!(
            first.status.success(),
            "record {n}: {}",
            String::from_utf8_lossy(&first.stderr)
        );
        assert!(s.gpu_as_found(), "record {n}");
        let journal = records(&run, "journal.jsonl");
        assert_eq!(journal.last().unwrap()["record"], "closed", "record {n}");
        // Twice is safe: the second changes nothing.
        let second = restore();
        assert!(second.status.success());
        assert_eq!(records(&run, "journal.jsonl"), journal, "record {n}");
        // Every job the events say finished is still reported.
        let finished = records(&run, "events.jsonl")
            .iter()
            .filter(|e| e["event"] == "job_end")
            .count();
        let report = s
            .migbench()
            .args(["report", "--format", "json", "--out"])
            .arg(s.path(&format!("report-{n}")))
            .arg(&run)
            .output()
            .unwrap();
        if finished > 0 {
            let v: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
            let jobs: u64 = v["variants"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["jobs"].as_u64().unwrap())
                .sum();
            assert!(
                jobs as usize >= finished,
                "record {n}: {finished} finished, {jobs} reported"
            );
        }
    }
}

#[test]
fn a_kill_at_fifty_instants_is_restored_from_another_directory() {
    let s = Setup::new();
    // At 1,000 simulated seconds per real second the run takes about a third of a real second;
    // the kills land across it (a fixed sequence, so that a failure can be repeated).
    let mut seed: u64 = 0x5eed;
    for n in 0..50 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let after = std::time::Duration::from_micros(20_000 + (seed >> 33) % 400_000);
        let out = s.path(&format!("instant-{n}"));
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("migbench"))
            .env("MIGBENCH_STATE_DIR", s.path("state"))
            .args(["run", "--sim", "--quiet", "--pace", "1000", "--sim-state"])
            .arg(s.path("gpu.json"))
            .arg("--out")
            .arg(&out)
            .arg(s.path("scenario.toml"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(after);
        let _ = child.kill();
        child.wait().unwrap();
        // Killed before its run directory, after its end, or anywhere between: `restore` (of
        // every unclosed journal the locks name) leaves the GPU as found, and a second has
        // nothing left to do.
        for _ in 0..2 {
            let restored = s
                .migbench()
                .current_dir(std::env::temp_dir())
                .arg("restore")
                .output()
                .unwrap();
            assert!(
                restored.status.success(),
                "kill {n} after {after:?}: {}",
                String::from_utf8_lossy(&restored.stderr)
            );
            assert!(
                s.gpu_as_found(),
                "kill {n} after {after:?}: {}",
                String::from_utf8_lossy(&restored.stdout)
            );
        }
        if let Some(run) = std::fs::read_dir(&out).ok().and_then(|mut d| d.next()) {
            let journal = records(&run.unwrap().path(), "journal.jsonl");
            if let Some(last) = journal.last() {
                assert_eq!(last["record"], "closed", "kill {n} after {after:?}");
            }
        }
    }
}
