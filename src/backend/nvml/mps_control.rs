//! Starting and stopping the MPS control daemons migbench runs, one per device, each with its
//! own pipe and log directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::commands::{command_lines, MigIds};
use super::{exec, mps, NvmlBackend};
use crate::backend::Change;
use crate::clock::lock;
use crate::error::{Error, Result};

/// How long an MPS daemon gets to come up, and to be gone after `quit`.
const MPS_WAIT: Duration = Duration::from_secs(10);

/// Polls `done` until it holds or [`MPS_WAIT`] passes.
fn wait_until(done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + MPS_WAIT;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

impl NvmlBackend {
    pub(super) fn mps_dir(&self, device: &str) -> Option<PathBuf> {
        lock(&self.mps).get(device).cloned()
    }

    pub(super) fn start_mps(
        &self,
        change: &Change,
        device: &str,
        pipe_dir: &Path,
        log_dir: &Path,
    ) -> Result<()> {
        if let Some(problem) = mps::socket_path_problem(pipe_dir) {
            return Err(Error::Harness(format!(
                "cannot start an MPS control daemon for {device} with its pipes in {}: {problem}",
                pipe_dir.display()
            )));
        }
        for dir in [pipe_dir, log_dir] {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Harness(format!("cannot create {}: {e}", dir.display())))?;
        }
        // Only this run's jobs may connect to its daemon.
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(pipe_dir, std::fs::Permissions::from_mode(0o700));
        let lines = command_lines(change, self.index, &MigIds::default())?;
        let (daemon, settings) = lines
            .split_first()
            .expect("starting MPS is at least one line");
        if let Err(e) = exec::run(daemon) {
            mps::remove_pipe_dir(pipe_dir);
            return Err(Error::Harness(format!(
                "{e}; the daemon's log: {}",
                log_tail(log_dir)
            )));
        }
        // The daemon forks and returns at once; its control pipe appears when it is ready.
        let ready = wait_until(|| pipe_dir.join("control").exists());
        if !ready {
            // The daemon may be running without its pipe (a driver that names it otherwise):
            // without a control pipe it cannot be told to quit, so it is stopped, as nothing
            // journals it as started.
            let pids: Vec<u32> = mps::using(pipe_dir).iter().map(|p| p.pid).collect();
            for &pid in &pids {
                // SAFETY: kill(2) on an MPS daemon this call started, found by its pipe directory.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
            }
            mps::remove_pipe_dir(pipe_dir);
            return Err(Error::Harness(format!(
                "the MPS control daemon for {device} did not come up within {} s; its log: {}",
                MPS_WAIT.as_secs(),
                log_tail(log_dir)
            )));
        }
        lock(&self.mps).insert(device.to_string(), pipe_dir.to_path_buf());
        for line in settings {
            if let Err(e) = exec::run(line) {
                // Leave nothing half set up: quit the daemon again.
                let _ = self.stop_mps(&change.inverse(), device, pipe_dir);
                return Err(e);
            }
        }
        Ok(())
    }

    pub(super) fn stop_mps(&self, change: &Change, device: &str, pipe_dir: &Path) -> Result<()> {
        for line in command_lines(change, self.index, &MigIds::default())? {
            exec::run(&line)?;
        }
        if !wait_until(|| mps::using(pipe_dir).is_empty()) {
            let left: Vec<String> = mps::using(pipe_dir)
                .iter()
                .map(|p| format!("{} (pid {})", p.program, p.pid))
                .collect();
            return Err(Error::Harness(format!(
                "after `quit`, MPS processes for {device} are still running: {}",
                left.join(", ")
            )));
        }
        mps::remove_pipe_dir(pipe_dir);
        lock(&self.mps).remove(device);
        Ok(())
    }
}

/// The last lines of a daemon's `control.log`, to say why it failed, or that it logged nothing.
fn log_tail(log_dir: &Path) -> String {
    let log = log_dir.join("control.log");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return format!("nothing in {}", log.display());
    }
    let tail = lines[lines.len().saturating_sub(3)..].join(" | ");
    format!("{} ({})", tail, log.display())
}
