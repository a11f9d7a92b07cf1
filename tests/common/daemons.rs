//! What the tests that start real daemons (Prometheus, Slurm) share: a free port, and a child
//! process that is stopped however the test ends.

#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A port nobody listens on now (the OS picks it; a daemon started next binds it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child in a process group of its own: SIGTERM to the group when dropped (a passing test, a
/// failed assertion, a panic), SIGKILL if it has not gone within 10 s.
pub struct Daemon {
    pub name: &'static str,
    pub child: Child,
}

impl Daemon {
    pub fn spawn(name: &'static str, mut command: Command) -> Daemon {
        command.process_group(0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Daemon { name, child }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let group = -(self.child.id() as i32);
        // SAFETY: kill(2) on the process group this test started.
        unsafe { libc::kill(group, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above; whatever of the group is left.
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// The tools of `tools` that are not on the PATH.
pub fn missing(tools: &[&'static str]) -> Vec<&'static str> {
    let on_path = |tool: &str| {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
    };
    tools.iter().copied().filter(|t| !on_path(t)).collect()
}

/// Whether a test can run: true when `why_not` is empty; else it fails when `require` (the
/// environment variable CI sets) is set, and otherwise says it is skipped.
pub fn can_run(require: &str, why_not: &str, install: &str) -> bool {
    if why_not.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os(require).is_none(),
        "{why_not}: required because {require} is set ({install})"
    );
    eprintln!("skipped: {why_not}");
    false
}
