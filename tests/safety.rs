//! Leaving the GPU as found: dry-run command lines, the GPU lock, the busy-GPU check, and the
//! journal replayed by `migbench restore` after a run is killed at each step — on the simulated
//! GPU, whose configuration outlives the run in a state file as a real GPU's does.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use migbench::backend::sim::SimBackend;
use migbench::backend::{Backend, Change};
use migbench::journal::{self, GpuIdentity, Journal, JournalFile};

use common::{migbench_in, stdout_of};

/// The command lines of a dry run, without the `#` commentary.
fn dry_run_lines(scenario: &Path) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    stdout_of(
        migbench_in(dir.path())
            .args(["run", "--dry-run"])
            .arg(scenario),
    )
    .lines()
    .filter(|l| !l.starts_with('#'))
    .map(str::to_string)
    .collect()
}

/// The pipe directory of daemon `d` of variant `v`: short, under /tmp, one per variant and
/// device (NVIDIA's daemon makes UNIX sockets there, whose paths are short).
fn pipe_dir(v: &str, d: usize) -> String {
    let dir =
        migbench::backend::nvml::mps::pipe_dir(&Path::new("$RUN_DIR/mps").join(v).join("r1"), d);
    let text = dir.display().to_string();
    assert!(
        text.starts_with("/tmp/mb-") && text.ends_with(&format!("/d{d}")) && text.len() < 30,
        "{text}"
    );
    text
}

fn write_scenario(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn dry_run_prints_the_h100_experiment_as_nvidia_smi_and_mps_lines() {
    let lines = dry_run_lines(Path::new("scenarios/h100-3x-ti2v.toml"));
    let mps = |v: &str| {
        let pipe = pipe_dir(v, 0);
        (
            format!(
                "CUDA_VISIBLE_DEVICES='<UUID of GPU 0>' \
                 CUDA_MPS_PIPE_DIRECTORY={pipe} \
                 CUDA_MPS_LOG_DIRECTORY=$RUN_DIR/mps/{v}/r1/d0/log nvidia-cuda-mps-control -d"
            ),
            format!(
                "echo quit | CUDA_MPS_PIPE_DIRECTORY={pipe} \
                 CUDA_MPS_LOG_DIRECTORY=$RUN_DIR/mps/{v}/r1/d0/log nvidia-cuda-mps-control"
            ),
        )
    };
    let (together_start, together_quit) = mps("mps-together");
    let (staggered_start, staggered_quit) = mps("mps-staggered");
    assert_eq!(
        lines,
        [
            together_start.as_str(),
            &together_quit,
            &staggered_start,
            &staggered_quit,
            "nvidia-smi -i 0 -mig 1",
            "nvidia-smi mig -i 0 -cgi 9:0",
            "nvidia-smi mig -i 0 -gi 1 -cci 2",
            "nvidia-smi mig -i 0 -cgi 9:4",
            "nvidia-smi mig -i 0 -gi 2 -cci 2",
            "nvidia-smi mig -i 0 -gi 2 -ci 0 -dci",
            "nvidia-smi mig -i 0 -gi 2 -dgi",
            "nvidia-smi mig -i 0 -gi 1 -ci 0 -dci",
            "nvidia-smi mig -i 0 -gi 1 -dgi",
            "nvidia-smi -i 0 -mig 0",
        ]
    );
}

#[test]
fn dry_run_covers_every_mode_with_mps_limits_split_instances_and_skips() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(
        dir.path(),
        r#"
[scenario]
name = "modes"
[gpu]
model = "b200-180gb"
index = 1

[workloads.small]
name = "small"
title = "small"
kind = "batch"
unit = "job"
command = ["python", "small.py"]
memory = { constant_gib = 8.0, peak_gib = 9.0, source = "test" }
sim = { alpha = 0.7, peak_at = 0.5, peak_for = 0.1, source = "test" }

[[variants]]
name = "ts"
mode = "timeslice"
jobs = [{ workload = "ti2v-5b", count = 2 }]

[[variants]]
name = "mps"
mode = "mps"
mps = { active_thread_percentage = 50, pinned_memory_limit_gib = 40 }
jobs = [{ workload = "ti2v-5b", count = 2 }]

[[variants]]
name = "split"
mode = "mig+mps"
layout = [{ profile = "2g.45gb", compute = ["1c.2g.45gb", "1c.2g.45gb"] }, "1g.23gb"]
jobs = [{ workload = "small", count = 2 }]

[[variants]]
name = "too-big"
mode = "mig"
layout = ["1g.23gb"]
jobs = [{ workload = "s2v-14b" }]
"#,
    );
    let out = stdout_of(
        migbench_in(dir.path())
            .args(["run", "--dry-run"])
            .arg(&scenario),
    );
    assert!(
        out.contains("# variant too-big: infeasible, skipped:"),
        "{out}"
    );
    let lines: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
    let pipe = |v: &str, d: u32| {
        format!(
            "CUDA_MPS_PIPE_DIRECTORY={} \
             CUDA_MPS_LOG_DIRECTORY=$RUN_DIR/mps/{v}/r1/d{d}/log",
            pipe_dir(v, d as usize)
        )
    };
    let m = pipe("mps", 0);
    let (s0, s1, s2) = (pipe("split", 0), pipe("split", 1), pipe("split", 2));
    let mig = |gi: u32, ci: u32| format!("CUDA_VISIBLE_DEVICES='<MIG UUID of GI {gi} CI {ci}>'");
    let expected = vec![
        // timeslice: nothing to set up.
        format!("CUDA_VISIBLE_DEVICES='<UUID of GPU 1>' {m} nvidia-cuda-mps-control -d"),
        format!("echo 'set_default_active_thread_percentage 50' | {m} nvidia-cuda-mps-control"),
        format!(
            "echo 'set_default_device_pinned_mem_limit 0 40960M' | {m} nvidia-cuda-mps-control"
        ),
        format!("echo quit | {m} nvidia-cuda-mps-control"),
        "nvidia-smi -i 1 -mig 1".into(),
        // Largest first; the 2g.45gb at slice 0 is GI 3, split into two 1-slice CIs.
        "nvidia-smi mig -i 1 -cgi 14:0".into(),
        "nvidia-smi mig -i 1 -gi 3 -cci 0".into(),
        "nvidia-smi mig -i 1 -gi 3 -cci 0".into(),
        "nvidia-smi mig -i 1 -cgi 19:2".into(),
        "nvidia-smi mig -i 1 -gi 9 -cci 0".into(),
        // One MPS daemon per MIG device, in slice order.
        format!("{} {s0} nvidia-cuda-mps-control -d", mig(3, 0)),
        format!("{} {s1} nvidia-cuda-mps-control -d", mig(3, 1)),
        format!("{} {s2} nvidia-cuda-mps-control -d", mig(9, 0)),
        format!("echo quit | {s2} nvidia-cuda-mps-control"),
        format!("echo quit | {s1} nvidia-cuda-mps-control"),
        format!("echo quit | {s0} nvidia-cuda-mps-control"),
        "nvidia-smi mig -i 1 -gi 9 -ci 0 -dci".into(),
        "nvidia-smi mig -i 1 -gi 9 -dgi".into(),
        "nvidia-smi mig -i 1 -gi 3 -ci 1 -dci".into(),
        "nvidia-smi mig -i 1 -gi 3 -ci 0 -dci".into(),
        "nvidia-smi mig -i 1 -gi 3 -dgi".into(),
        "nvidia-smi -i 1 -mig 0".into(),
    ];
    assert_eq!(lines, expected);
}

/// A mig+mps scenario with long jobs: 7 changes (MIG on, 2 GIs, 2 CIs, 2 MPS daemons).
const LONG_MIG_MPS: &str = r#"
[scenario]
name = "killed"
[gpu]
model = "h100-80gb"

[workloads.long]
name = "long"
title = "long"
kind = "batch"
unit = "video"
command = ["python", "long.py"]
memory = { constant_gib = 5.0, peak_gib = 5.0, source = "test" }
timing = { reference_gpu = "h100-80gb", full_gpu_s = 50000.0, source = "test" }
sim = { alpha = 0.7, peak_at = 0.5, peak_for = 0.1, source = "test" }

[[variants]]
name = "long"
mode = "mig+mps"
layout = ["3g.40gb", "3g.40gb"]
jobs = [{ workload = "long", count = 2 }]
"#;

/// Starts a simulated run on the GPU saved in `state`.
fn spawn_run(state_dir: &Path, state: &Path, scenario: &Path, out: &Path) -> Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("migbench"))
        .env("MIGBENCH_STATE_DIR", state_dir)
        .args(["run", "--sim", "--quiet", "--pace", "100", "--sim-state"])
        .arg(state)
        .arg("--out")
        .arg(out)
        .arg(scenario)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Runs a scenario to its end on the simulated GPU saved in `state`.
fn run_saved(state_dir: &Path, state: &Path, out: &Path, scenario: &Path) -> std::process::Output {
    migbench_in(state_dir)
        .args(["run", "--sim", "--quiet", "--sim-state"])
        .arg(state)
        .arg("--out")
        .arg(out)
        .arg(scenario)
        .output()
        .unwrap()
}

/// The journal records of the one run below `out`.
fn journal(out: &Path) -> Vec<serde_json::Value> {
    let Some(Ok(run)) = std::fs::read_dir(out).ok().and_then(|mut d| d.next()) else {
        return Vec::new();
    };
    std::fs::read_to_string(run.path().join("journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn count(records: &[serde_json::Value], kind: &str) -> usize {
    records.iter().filter(|r| r["record"] == kind).count()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn saved(state: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(state).unwrap()).unwrap()
}

fn is_as_found(state: &Path) -> bool {
    let s = saved(state);
    s["mig_enabled"] == false
        && s["instances"].as_array().is_none_or(|a| a.is_empty())
        && s["mps"].as_array().is_none_or(|a| a.is_empty())
}

/// A simulated H100 saved in `DIR/gpu.json` and a journal at `DIR/journal.jsonl` that found it
/// as it is: for tests that make changes through the library at chosen steps.
fn journaled_gpu(dir: &Path) -> (SimBackend, Journal, PathBuf, PathBuf) {
    let state = dir.join("gpu.json");
    let journal_path = dir.join("journal.jsonl");
    let gpu = SimBackend::start_saved(h100(), None, PathBuf::from("/bin/false"), &state).unwrap();
    let identity = GpuIdentity {
        backend: gpu.kind(),
        model: "h100-80gb".into(),
        uuid: gpu.info().uuid,
        index: 0,
        sim_state: Some(state.clone()),
    };
    let journal = Journal::create(&journal_path, identity, gpu.state().unwrap()).unwrap();
    (gpu, journal, state, journal_path)
}

fn h100() -> &'static migbench::catalog::GpuModel {
    migbench::catalog::Catalog::builtin()
        .gpu("h100-80gb")
        .unwrap()
}

#[test]
fn restore_puts_the_gpu_back_after_a_kill_at_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), LONG_MIG_MPS);
    let state_dir = dir.path().join("state");
    let state = dir.path().join("gpu.json");
    // Kill after each of the 7 setup changes; after the 7th the jobs are running.
    for k in 1..=7 {
        let phase = "done";
        let out = dir.path().join(format!("out-{k}"));
        let mut child = spawn_run(&state_dir, &state, &scenario, &out);
        wait_for("the journal", || count(&journal(&out), phase) >= k);
        child.kill().unwrap();
        child.wait().unwrap();
        let records = journal(&out);
        assert_ne!(records.last().unwrap()["record"], "closed");

        // The killed run left the GPU changed, and no new run may start on it.
        assert!(!is_as_found(&state), "step {k}: {}", saved(&state));
        let refused = run_saved(&state_dir, &state, &dir.path().join("refused"), &scenario);
        assert_eq!(refused.status.code(), Some(2));
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(said.contains("run `migbench restore` first"), "{said}");

        let restored = stdout_of(migbench_in(&state_dir).arg("restore"));
        assert!(
            restored.contains("the GPU is as the run found it"),
            "{restored}"
        );
        assert!(is_as_found(&state), "step {k}: {}", saved(&state));
        let records = journal(&out);
        assert_eq!(records.last().unwrap()["record"], "closed");
        // Every change made was undone exactly once (some only marked: a kill can land between
        // an undo and its record).
        let applied = count(&records, "apply") - count(&records, "failed");
        assert_eq!(count(&records, "undone"), applied, "step {k}");

        // Twice is safe: nothing is left to do.
        let again = stdout_of(migbench_in(&state_dir).arg("restore"));
        assert!(again.contains("nothing to restore"), "{again}");
        let again = stdout_of(
            migbench_in(&state_dir)
                .arg("restore")
                .arg(out.read_dir().unwrap().next().unwrap().unwrap().path()),
        );
        assert!(again.contains("already put back"), "{again}");
    }
}

#[test]
fn two_runs_never_share_a_gpu() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), LONG_MIG_MPS);
    let state_dir = dir.path().join("state");
    let state = dir.path().join("gpu.json");
    let first_out = dir.path().join("first");
    let mut first = spawn_run(&state_dir, &state, &scenario, &first_out);
    wait_for("the first run", || {
        count(&journal(&first_out), "found") == 1
    });

    let second = run_saved(&state_dir, &state, &dir.path().join("second"), &scenario);
    let said = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{said}");
    assert!(said.contains("in use by another migbench run"), "{said}");
    assert!(said.contains(&format!("pid {}", first.id())), "{said}");
    assert!(
        !dir.path().join("second").exists()
            || std::fs::read_dir(dir.path().join("second"))
                .unwrap()
                .next()
                .is_none(),
        "a refused run leaves no run directory"
    );
    // SAFETY: signals the child we started; it tears down and exits 130.
    unsafe { libc::kill(first.id() as i32, libc::SIGINT) };
    assert_eq!(first.wait().unwrap().code(), Some(130));
    assert!(is_as_found(&state));
}

#[test]
fn a_busy_gpu_is_refused_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(
        dir.path(),
        r#"
[scenario]
name = "busy"
[gpu]
model = "h100-80gb"

[[variants]]
name = "one"
mode = "full"
jobs = [{ workload = "ti2v-5b" }]
"#,
    );
    let state = dir.path().join("gpu.json");
    std::fs::write(
        &state,
        r#"{"model": "h100-80gb", "uuid": "GPU-busy",
            "foreign": [{"pid": 4242, "name": "python3", "used_gib": 12.5}]}"#,
    )
    .unwrap();
    let run = |force: bool| {
        let mut cmd = migbench_in(&dir.path().join("state"));
        cmd.args(["run", "--sim", "--quiet", "--sim-state"])
            .arg(&state)
            .arg("--out")
            .arg(dir.path().join("out"))
            .arg(&scenario);
        if force {
            cmd.arg("--force");
        }
        cmd.output().unwrap()
    };
    let refused = run(false);
    assert_eq!(refused.status.code(), Some(2));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("GPU GPU-busy is busy: pid 4242 (python3, 12.5 GiB)")
            && said.contains("--force"),
        "{said}"
    );
    let forced = migbench_in(&dir.path().join("state"))
        .args(["run", "--sim", "--quiet", "--force", "--sim-state"])
        .arg(&state)
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg(&scenario)
        .output()
        .unwrap();
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
}

#[test]
fn a_state_file_for_another_gpu_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("gpu.json");
    std::fs::write(&state, r#"{"model": "a100-80gb", "uuid": "GPU-x"}"#).unwrap();
    let out = migbench_in(dir.path())
        .args(["run", "--sim", "--sim-state"])
        .arg(&state)
        .arg("scenarios/h100-3x-ti2v.toml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("holds a simulated a100-80gb, not a h100-80gb"),
        "{said}"
    );
}

/// A crash in the middle of a teardown, in both windows a crash can hit: after an `undo` record
/// but before the undo, and after an undo but before its `undone` record. Built through the
/// library, since a run's own teardown is too quick to be killed at a chosen step.
#[test]
fn restore_finishes_a_teardown_cut_short() {
    let dir = tempfile::tempdir().unwrap();
    let (state, journal_path) = {
        let (gpu, mut journal, state, journal_path) = journaled_gpu(dir.path());
        let changes = [
            Change::SetMigMode { enabled: true },
            Change::CreateGpuInstance {
                profile_id: 9,
                profile: "3g.40gb".into(),
                start: 0,
            },
            Change::CreateComputeInstance {
                gi_start: 0,
                index: 0,
                profile_id: 2,
                profile: "3g.40gb".into(),
            },
            Change::CreateGpuInstance {
                profile_id: 9,
                profile: "3g.40gb".into(),
                start: 4,
            },
            Change::CreateComputeInstance {
                gi_start: 4,
                index: 0,
                profile_id: 2,
                profile: "3g.40gb".into(),
            },
        ];
        let entries: Vec<_> = changes
            .into_iter()
            .map(|c| journal.apply(&gpu, c).unwrap())
            .collect();
        // Torn down: the newest CI. Undone but not recorded: the GI at slice 4.
        journal.undo(&gpu, &entries[4]).unwrap();
        gpu.apply(&entries[3].change.inverse()).unwrap();
        // Recorded as being undone, then the crash: the CI at slice 0 is still there.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&journal_path)
            .unwrap();
        use std::io::Write;
        writeln!(
            file,
            r#"{{"record":"undo","at":"2026-11-21T00:00:00Z","seq":3}}"#
        )
        .unwrap();
        assert_eq!(gpu.state().unwrap().instances, ["3g.40gb@0"]);
        (state, journal_path)
    };
    let state_dir = dir.path().join("state");
    let restored = stdout_of(migbench_in(&state_dir).arg("restore").arg(&journal_path));
    // Left to undo: seq 4 (found not in effect), 3, 2 and 1.
    assert!(restored.contains("undid 4 change(s)"), "{restored}");
    assert!(
        restored.contains("the GPU is as the run found it"),
        "{restored}"
    );
    assert!(is_as_found(&state), "{}", saved(&state));
    let text = std::fs::read_to_string(&journal_path).unwrap();
    assert!(text.contains(r#""seq":4,"note":"not in effect""#), "{text}");
    let again = stdout_of(migbench_in(&state_dir).arg("restore").arg(&journal_path));
    assert!(again.contains("already put back"), "{again}");
}

/// A run started in one directory with relative `--out` and `--sim-state`, killed with the GPU
/// changed, is restored from another directory: the journal and the lock record absolute paths.
/// (They recorded `out/...` and `gpu.json`, so a restore elsewhere made a fresh simulated GPU,
/// "undid 7 change(s)" on it and closed the journal while the real state stayed changed.)
#[test]
fn restore_from_another_directory_acts_on_the_runs_gpu() {
    let dir = tempfile::tempdir().unwrap();
    let here = dir.path().join("here");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&here).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    write_scenario(&here, LONG_MIG_MPS);
    let state_dir = dir.path().join("state");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("migbench"))
        .current_dir(&here)
        .env("MIGBENCH_STATE_DIR", &state_dir)
        .args([
            "run",
            "--sim",
            "--quiet",
            "--sim-state",
            "gpu.json",
            "--out",
            "out",
        ])
        .arg("scenario.toml")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = here.join("out");
    wait_for("the jobs", || count(&journal(&out), "done") >= 7);
    child.kill().unwrap();
    child.wait().unwrap();
    let state = here.join("gpu.json");
    assert!(!is_as_found(&state), "{}", saved(&state));
    let found = &journal(&out)[0];
    assert_eq!(
        found["gpu"]["sim_state"],
        state.canonicalize().unwrap().to_str().unwrap(),
        "{found}"
    );

    let restored = stdout_of(
        migbench_in(&state_dir)
            .current_dir(&elsewhere)
            .arg("restore"),
    );
    assert!(restored.contains("undid 7 change(s)"), "{restored}");
    assert!(
        restored.contains("the GPU is as the run found it"),
        "{restored}"
    );
    assert!(is_as_found(&state), "{}", saved(&state));
    assert!(!elsewhere.join("gpu.json").exists());
    assert_eq!(journal(&out).last().unwrap()["record"], "closed");
}

/// A journal whose simulated GPU is not there (its state file gone), or is another GPU, is
/// refused with both named, and the journal stays open.
#[test]
fn restore_refuses_a_gpu_that_is_not_the_journals() {
    let dir = tempfile::tempdir().unwrap();
    let (state, journal_path, uuid) = {
        let (gpu, mut journal, state, journal_path) = journaled_gpu(dir.path());
        journal
            .apply(&gpu, Change::SetMigMode { enabled: true })
            .unwrap();
        (state, journal_path, gpu.info().uuid)
    };
    let text = std::fs::read_to_string(&journal_path).unwrap();
    let state_dir = dir.path().join("state");
    let restore = || {
        migbench_in(&state_dir)
            .arg("restore")
            .arg(&journal_path)
            .output()
            .unwrap()
    };

    // Another simulated GPU in the state file.
    let kept = std::fs::read(&state).unwrap();
    std::fs::remove_file(&state).unwrap();
    drop(SimBackend::start_saved(h100(), None, PathBuf::from("/bin/false"), &state).unwrap());
    let other = saved(&state)["uuid"].as_str().unwrap().to_string();
    assert_ne!(other, uuid);
    let out = restore();
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!("the journal is about GPU {uuid}"))
            && said.contains(&format!("is {other}; nothing was restored")),
        "{said}"
    );

    // No state file at all: opening it would make a fresh GPU.
    std::fs::remove_file(&state).unwrap();
    let out = restore();
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&uuid)
            && said.contains(&format!("{}, which does not exist", state.display())),
        "{said}"
    );
    assert!(!state.exists());
    assert_eq!(std::fs::read_to_string(&journal_path).unwrap(), text);

    // Its own GPU back: restored.
    std::fs::write(&state, kept).unwrap();
    let restored = stdout_of(migbench_in(&state_dir).arg("restore").arg(&journal_path));
    assert!(restored.contains("undid 1 change(s)"), "{restored}");
}

/// A kill while a record is written leaves it unterminated. Cut at every byte of the last
/// record, the journal still restores, the next record starts on a line of its own, and a second
/// restore finds nothing to do. (The record and its newline were written by separate calls, and
/// restore appended onto the torn bytes: the second restore then failed.)
#[test]
fn a_journal_cut_inside_its_last_record_still_restores() {
    let dir = tempfile::tempdir().unwrap();
    let exe = PathBuf::from("/bin/false");
    let (state, journal_path) = {
        let (gpu, mut journal, state, journal_path) = journaled_gpu(dir.path());
        for change in [
            Change::SetMigMode { enabled: true },
            Change::CreateGpuInstance {
                profile_id: 9,
                profile: "3g.40gb".into(),
                start: 0,
            },
        ] {
            journal.apply(&gpu, change).unwrap();
        }
        (state, journal_path)
    };
    let full = std::fs::read(&journal_path).unwrap();
    let changed = std::fs::read(&state).unwrap();
    // The last record is the `done` of the GPU instance: the change was made.
    let last = full[..full.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    assert!(String::from_utf8_lossy(&full[last..]).contains("\"done\""));
    for cut in last + 1..full.len() {
        std::fs::write(&journal_path, &full[..cut]).unwrap();
        std::fs::write(&state, &changed).unwrap();
        let read = JournalFile::read(&journal_path).unwrap();
        assert_eq!(read.torn, cut - last, "cut at {cut}");
        assert!(read.torn_warning().unwrap().contains("cut short"));
        let gpu = SimBackend::start_saved(h100(), None, exe.clone(), &state).unwrap();
        let restored = journal::restore(&read, &gpu).unwrap();
        assert!(restored.matches_found, "cut at {cut}: {:?}", restored.state);
        assert_eq!(restored.undone.len(), 2, "cut at {cut}");
        drop(gpu);
        let text = std::fs::read_to_string(&journal_path).unwrap();
        assert!(text.ends_with('\n'), "cut at {cut}");
        for line in text.lines() {
            serde_json::from_str::<serde_json::Value>(line)
                .unwrap_or_else(|e| panic!("cut at {cut}: {e}: {line}"));
        }
        let again = JournalFile::read(&journal_path).unwrap();
        assert!(again.is_closed() && again.torn == 0, "cut at {cut}");
    }
    // Through the binary: a warning on stderr, then restored; twice is safe.
    std::fs::write(&journal_path, &full[..full.len() - 5]).unwrap();
    std::fs::write(&state, &changed).unwrap();
    let state_dir = dir.path().join("state");
    let out = migbench_in(&state_dir)
        .arg("restore")
        .arg(&journal_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("a record a crash cut short (never acted on); ignored"),
        "{said}"
    );
    assert!(is_as_found(&state), "{}", saved(&state));
    let again = stdout_of(migbench_in(&state_dir).arg("restore").arg(&journal_path));
    assert!(again.contains("already put back"), "{again}");
}

/// A mig-parted file of the same name as one of a run's own files (a valid one, beside the
/// scenario). Its copy used to be written over the run's file: with `journal.jsonl`, a kill then
/// left a GPU in MIG mode that `restore` could not read back and the next run did not refuse.
#[test]
fn a_file_the_scenario_names_never_replaces_one_of_the_runs_own() {
    const LAB: &str = "version: v1\nmig-configs:\n  lab:\n    - devices: all\n      mig-enabled: true\n      mig-devices:\n        \"3g.40gb\": 2\n";
    let names = [
        "journal.jsonl",
        "events.jsonl",
        "scenario.toml",
        "manifest.json",
        "logs",
        "mps",
        "jobs.csv",
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut scenario = String::from("[scenario]\nname = \"names\"\n[gpu]\nmodel = \"h100-80gb\"\n");
    for (i, name) in names.iter().enumerate() {
        std::fs::write(dir.path().join(name), LAB).unwrap();
        scenario.push_str(&format!(
            "\n[[variants]]\nname = \"v{i}\"\nmode = \"mig\"\nlayout = {{ mig_parted = \"{name}\", config = \"lab\" }}\njobs = [{{ workload = \"ti2v-5b\" }}]\n"
        ));
    }
    let scenario_path = dir.path().join("s.toml");
    std::fs::write(&scenario_path, &scenario).unwrap();
    let (state_dir, state, out) = (
        dir.path().join("state"),
        dir.path().join("gpu.json"),
        dir.path().join("out"),
    );
    // The simulator's socket goes in the temp directory: this one, to see it left and removed.
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let sockets = || std::fs::read_dir(&tmp).unwrap().count();
    // Killed after MIG mode is on and the instances are made (journal record 6).
    let killed = migbench_in(&state_dir)
        .env("TMPDIR", &tmp)
        .env("MIGBENCH_FAULT", "abort:journal:6")
        .args(["run", "--sim", "--quiet", "--sim-state"])
        .arg(&state)
        .arg("--out")
        .arg(&out)
        .arg(&scenario_path)
        .output()
        .unwrap();
    assert_eq!(killed.status.code(), None, "killed: {killed:?}");
    assert!(!is_as_found(&state), "{}", saved(&state));
    assert_eq!(sockets(), 1, "a killed run cannot remove its socket");
    let run = common::run_dir(&out);
    for name in names {
        assert_eq!(
            std::fs::read_to_string(run.join("scenario-files").join(name)).unwrap(),
            LAB,
            "{name}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(run.join("scenario.toml")).unwrap(),
        scenario
    );
    assert!(run.join("logs").is_dir());
    for line in std::fs::read_to_string(run.join("events.jsonl"))
        .unwrap()
        .lines()
    {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
    let journal_path = run.join("journal.jsonl");
    let records = std::fs::read(&journal_path).unwrap();
    assert!(!JournalFile::read(&journal_path).unwrap().is_closed());

    let refused_run = || {
        run_saved(
            &state_dir,
            &state,
            &dir.path().join("refused"),
            &scenario_path,
        )
    };
    // A journal that cannot be read (as the copy made it) keeps the GPU refused, and so does
    // restore, until the journal is back.
    std::fs::write(&journal_path, LAB).unwrap();
    let refused = refused_run();
    assert_eq!(refused.status.code(), Some(2));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("a journal that cannot be read"), "{said}");
    assert!(!said.contains("mig-configs"), "no contents quoted: {said}");
    migbench_in(&state_dir).arg("restore").assert().code(2);
    let refused = refused_run();
    assert_eq!(
        refused.status.code(),
        Some(2),
        "still refused after a failed restore"
    );

    std::fs::write(&journal_path, records).unwrap();
    let restored = stdout_of(migbench_in(&state_dir).env("TMPDIR", &tmp).arg("restore"));
    assert!(
        restored.contains("the GPU is as the run found it"),
        "{restored}"
    );
    assert!(is_as_found(&state), "{}", saved(&state));
    assert!(
        restored.contains("the socket of a simulated GPU whose process is gone"),
        "{restored}"
    );
    assert_eq!(sockets(), 0, "restore removes the socket");
}

/// A deleted journal: a run makes its journal before its lock names it, so one that is not there
/// was deleted, never "the run changed nothing". The GPU is refused with a message that says to
/// run `migbench restore`, which stops what the run left running and releases the GPU, saying
/// that nothing could be undone and that the GPU is to be checked; the next run then starts.
#[test]
fn a_deleted_journal_is_refused_until_restore_releases_the_gpu() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.toml");
    std::fs::write(
        &scenario,
        "[scenario]\nname = \"gone\"\n[gpu]\nmodel = \"h100-80gb\"\n[[variants]]\nname = \"m\"\n\
         mode = \"mig\"\nlayout = [\"3g.40gb\", \"3g.40gb\"]\njobs = [{ workload = \"ti2v-5b\" }]\n",
    )
    .unwrap();
    let (state_dir, state) = (dir.path().join("state"), dir.path().join("gpu.json"));
    let out = dir.path().join("out");
    // Killed after MIG mode is on and the instances are made (journal record 6).
    let killed = migbench_in(&state_dir)
        .env("MIGBENCH_FAULT", "abort:journal:6")
        .args(["run", "--sim", "--quiet", "--sim-state"])
        .arg(&state)
        .arg("--out")
        .arg(&out)
        .arg(&scenario)
        .output()
        .unwrap();
    assert_eq!(killed.status.code(), None, "killed: {killed:?}");
    assert!(!is_as_found(&state), "{}", saved(&state));
    let journal_path = common::run_dir(&out).join("journal.jsonl");
    std::fs::remove_file(&journal_path).unwrap();

    let refused = run_saved(&state_dir, &state, &dir.path().join("refused"), &scenario);
    assert_eq!(refused.status.code(), Some(2));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("its journal was deleted"), "{said}");
    assert!(said.contains("run `migbench restore`"), "{said}");
    assert!(
        !said.contains("then remove"),
        "no lock to remove by hand: {said}"
    );

    let restored = stdout_of(migbench_in(&state_dir).arg("restore"));
    assert!(
        restored.contains(&format!(
            "{}: the journal was deleted",
            journal_path.display()
        )),
        "{restored}"
    );
    assert!(
        restored.contains("the GPU is released: check it"),
        "{restored}"
    );
    // Nothing could be undone: the GPU is as the killed run left it.
    assert!(!is_as_found(&state), "{}", saved(&state));
    let again = stdout_of(migbench_in(&state_dir).arg("restore"));
    assert!(again.contains("nothing to restore"), "{again}");
    // The lock no longer names the deleted journal: the next run is not refused for it.
    let next = run_saved(&state_dir, &state, &dir.path().join("next"), &scenario);
    let said = String::from_utf8_lossy(&next.stderr);
    assert!(!said.contains("journal"), "{said}");
}

/// A simulated MPS daemon makes no sockets: a simulated run writes no pipe directory under /tmp
/// (where real daemons keep theirs, `mps::pipe_dir`), only its logs in the run directory.
#[test]
fn a_simulated_mps_variant_writes_nothing_outside_the_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    let run = common::run_sim(
        "scenarios/h100-3x-ti2v.toml",
        dir.path(),
        common::SAMPLE_EVERY_SECOND,
    );
    let mps_root = run.join("mps/mps-together/r1");
    assert!(
        mps_root.join("d0/log").is_dir(),
        "the simulated daemon logs in the run"
    );
    let pipe = migbench::backend::nvml::mps::pipe_dir(&mps_root, 0);
    assert!(!pipe.exists(), "{} written outside the run", pipe.display());
    assert!(!pipe.parent().unwrap().exists(), "{}", pipe.display());
}
