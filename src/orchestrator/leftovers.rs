//! Jobs a crashed run left running. They still hold the GPU, and a MIG compute instance cannot
//! be destroyed while a process uses it, so `migbench restore` stops them before it undoes the
//! run's changes. The run's `events.jsonl` names them: a `job_start` with no `job_end`.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::procfs;

/// How long leftover jobs get to be gone after SIGKILL.
const SIGKILL_WAIT: Duration = Duration::from_secs(3);

/// A job of the run that is still running.
#[derive(Debug, Clone, PartialEq)]
pub struct Leftover {
    pub pid: u32,
    pub program: String,
}

/// The run's jobs that are still running. A PID counts only while it still leads its own process
/// group and runs the program the run started, so a PID reused since is never touched.
pub fn find(run_dir: &Path) -> Vec<Leftover> {
    let events = crate::input::read_to_string(&run_dir.join("events.jsonl"), crate::input::RECORDS)
        .unwrap_or_default();
    let mut started: Vec<Leftover> = Vec::new();
    for event in events
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
    {
        let Some(pid) = event["pid"].as_u64().map(|p| p as u32) else {
            continue;
        };
        match event["event"].as_str() {
            Some("job_start") => started.push(Leftover {
                pid,
                program: event["argv"][0].as_str().unwrap_or_default().to_string(),
            }),
            Some("job_end") => started.retain(|j| j.pid != pid),
            _ => {}
        }
    }
    started.retain(|j| {
        procfs::is_running(j.pid)
            && procfs::process_group(j.pid) == Some(j.pid)
            && procfs::cmdline(j.pid)
                .and_then(|a| a.into_iter().next())
                .as_deref()
                == Some(j.program.as_str())
    });
    started
}

/// The engines and run labels of the containers the run created, each pair once: from the
/// journal's `made` records, and the `container_create` events of runs from before the journal
/// recorded containers (both written before each container was created).
pub fn container_runs(run_dir: &Path) -> Vec<(crate::container::Engine, String)> {
    let mut runs: Vec<(crate::container::Engine, String)> = Vec::new();
    let journal = run_dir.join("journal.jsonl");
    let made = crate::journal::JournalFile::read(&journal)
        .map(|j| j.records)
        .unwrap_or_default();
    let from_journal = made.into_iter().filter_map(|r| match r {
        crate::journal::Record::Made {
            made: crate::journal::Made::Container { engine, run, .. },
            ..
        } => Some((engine, run)),
        _ => None,
    });
    let events = crate::input::read_to_string(&run_dir.join("events.jsonl"), crate::input::RECORDS)
        .unwrap_or_default();
    let from_events = events
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "container_create")
        .filter_map(|e| {
            let engine = serde_json::from_value(e["engine"].clone()).ok()?;
            Some((engine, e["run"].as_str()?.to_string()))
        });
    for pair in from_journal.chain(from_events) {
        if !runs.contains(&pair) {
            runs.push(pair);
        }
    }
    runs
}

/// Stops and removes the containers of the run that their engines still have; returns their
/// names, or the engine's own words when it could not list or remove them.
pub fn remove_containers(run_dir: &Path) -> Result<Vec<String>, String> {
    let mut removed = Vec::new();
    for (engine, run) in container_runs(run_dir) {
        for name in crate::container::of_run(engine, &run)? {
            let c = crate::container::Container {
                engine,
                name: name.clone(),
                cidfile: None,
            };
            c.stop();
            c.remove()?;
            removed.push(name);
        }
    }
    Ok(removed)
}

/// Stops each leftover job's whole process group: SIGTERM, then SIGKILL after the grace period
/// jobs get. Returns the groups still running after that (none, unless a process ignores SIGKILL
/// while stuck in the driver).
pub fn stop(leftovers: &[Leftover]) -> Vec<u32> {
    let groups: Vec<u32> = leftovers.iter().map(|j| j.pid).collect();
    let running = || -> Vec<u32> {
        groups
            .iter()
            .copied()
            .filter(|&g| !procfs::group_members(g).is_empty())
            .collect()
    };
    super::process::terminate_groups(&groups, || running().is_empty());
    // SIGKILL takes effect at once, but the kernel may need a moment to tear a process down.
    let deadline = Instant::now() + SIGKILL_WAIT;
    while Instant::now() < deadline && !running().is_empty() {
        std::thread::sleep(Duration::from_millis(20));
    }
    running()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    fn event(kind: &str, pid: u32, program: &str) -> String {
        serde_json::json!({ "event": kind, "pid": pid, "argv": [program] }).to_string()
    }

    #[test]
    fn only_started_unended_jobs_that_are_still_the_same_program_are_found_and_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let spawn = |program: &str, args: &[&str]| {
            std::process::Command::new(program)
                .args(args)
                .process_group(0)
                .spawn()
                .unwrap()
        };
        // A job still running (with a child in its group), one that ended, and a PID whose
        // program is not the one recorded (as after PID reuse).
        let mut running = spawn("sh", &["-c", "sleep 30 & wait"]);
        let mut ended = spawn("sleep", &["30"]);
        let mut other = spawn("sleep", &["30"]);
        let lines = [
            event("job_start", running.id(), "sh"),
            event("job_start", ended.id(), "sleep"),
            event("job_end", ended.id(), "sleep"),
            event("job_start", other.id(), "python3"),
        ];
        std::fs::write(dir.path().join("events.jsonl"), lines.join("\n")).unwrap();
        let found = find(dir.path());
        assert_eq!(
            found,
            vec![Leftover {
                pid: running.id(),
                program: "sh".into()
            }]
        );
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(procfs::group_members(running.id()).len(), 2);
        assert_eq!(stop(&found), Vec::<u32>::new());
        running.wait().unwrap();
        assert!(procfs::group_members(running.id()).is_empty());
        for c in [&mut ended, &mut other] {
            assert!(c.try_wait().unwrap().is_none(), "left alone");
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }
}
