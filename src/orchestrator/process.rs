//! A job's process: started as the leader of its own process group, watched until it ends
//! without being reaped (so the run acts at the instant it ended), and killed with its group.

use std::path::PathBuf;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;

use crate::backend::{Backend, Device};
use crate::clock::Poker;

/// How long a job may take to exit after SIGTERM before it gets SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(3);

/// A job whose process is running.
pub(super) struct Running {
    pub(super) job: usize,
    /// Its ID on the backend.
    pub(super) id: u64,
    /// Set once the orchestrator has reaped it: its exit watcher then has nothing to say.
    pub(super) reaped: Arc<AtomicBool>,
    pub(super) backend: Arc<dyn Backend>,
    pub(super) child: Child,
    pub(super) pid: u32,
    /// The job's container, when it runs in one: stopped and removed when the job ends.
    pub(super) container: Option<crate::container::Container>,
    pub(super) device: Device,
    pub(super) slot: usize,
    /// Seconds after the run started.
    pub(super) start: f64,
    /// The same instant as the clock read it.
    pub(super) started_at: f64,
    pub(super) log: PathBuf,
    pub(super) bar: ProgressBar,
    pub(super) timed_out: bool,
    /// Why migbench stops a server that never got ready.
    pub(super) not_ready: Option<String>,
}

/// Watches process `pid` (job `id`) end without reaping it: the orchestrator is poked, then the
/// backend told, so that the run acts on the end at the instant it happened.
pub(super) fn watch_exit(
    pid: u32,
    id: u64,
    backend: Arc<dyn Backend>,
    orchestrator: Poker,
    reaped: Arc<AtomicBool>,
) {
    std::thread::spawn(move || {
        // SAFETY: waitid with WNOWAIT only waits; the child stays for `Child::try_wait` to reap.
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            );
        }
        if !reaped.load(Ordering::Relaxed) {
            orchestrator.poke();
            backend.process_exited(id);
        }
    });
}

/// SIGTERM to the job's process group, SIGKILL after a grace period; returns its exit status.
pub(super) fn kill_group(child: &mut Child) -> Option<std::process::ExitStatus> {
    terminate_groups(&[child.id()], || matches!(child.try_wait(), Ok(Some(_))));
    // The status try_wait saw, or the one after SIGKILL.
    child.wait().ok()
}

/// Sends SIGTERM to each process group (each job leads its own), and SIGKILL to them all unless
/// `gone` holds within [`KILL_GRACE`].
pub(super) fn terminate_groups(groups: &[u32], mut gone: impl FnMut() -> bool) {
    let signal = |signal| {
        for &g in groups {
            // SAFETY: kill(2) with a negative PID signals a process group a run created for a job.
            unsafe { libc::kill(-(g as libc::pid_t), signal) };
        }
    };
    signal(libc::SIGTERM);
    let deadline = Instant::now() + KILL_GRACE;
    while Instant::now() < deadline {
        if gone() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(libc::SIGKILL);
}

impl Running {
    /// The job has ended and is reaped: its exit watcher has nothing more to say, and the
    /// backend forgets it before anything else happens, so that a teardown right after never
    /// finds it still running.
    pub(super) fn forget(&self) {
        self.reaped.store(true, Ordering::Relaxed);
        self.backend.job_ended(self.id);
    }
}

impl Drop for Running {
    /// A job whose record was never made — the orchestrator is unwinding from a panic — is
    /// killed with its process group, so that nothing uses the GPU when it is put back.
    fn drop(&mut self) {
        if !self.reaped.load(Ordering::Relaxed) {
            if let Some(c) = &self.container {
                c.stop();
            }
            kill_group(&mut self.child);
            if let Some(c) = &self.container {
                let _ = c.remove();
            }
            self.forget();
        }
    }
}
