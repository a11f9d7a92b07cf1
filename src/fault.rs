//! Faults on purpose, for the tests that prove migbench leaves a GPU as found whatever happens:
//! `MIGBENCH_FAULT` names one, and migbench behaves as if it happened there. Unset (always, in
//! normal use), nothing here does anything.
//!
//! - `write:WHAT:N` — the Nth write (from 1) of `WHAT` fails as on a full disk (`ENOSPC`);
//!   `WHAT` is `journal`, `events`, `tables`, `samples` (a part of the streamed table) or
//!   `manifest`;
//! - `panic:after-setup` — the orchestrator panics once a variant's GPU setup has changed the
//!   GPU; `panic:job-started` — once a job (its container, if it has one) has started;
//! - `abort:WHAT:N` — the process dies at once (as with `kill -9`) after it wrote journal
//!   record N (`WHAT` = `journal`) or the Nth part of the samples (`samples`).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// The fault asked for, parsed once.
fn asked() -> Option<&'static str> {
    static FAULT: OnceLock<Option<String>> = OnceLock::new();
    FAULT
        .get_or_init(|| std::env::var("MIGBENCH_FAULT").ok())
        .as_deref()
}

/// Counts the events of each kind, for `write:` and `abort:` faults.
fn count(what: &str) -> u64 {
    static COUNTS: OnceLock<Mutex<HashMap<String, u64>>> = OnceLock::new();
    let mut counts = crate::clock::lock(COUNTS.get_or_init(Mutex::default));
    let n = counts.entry(what.to_string()).or_default();
    *n += 1;
    *n
}

/// One more write of `what`: an error if it is the one to fail.
pub fn write(what: &str) -> std::io::Result<()> {
    let Some(fault) = asked() else {
        return Ok(());
    };
    let n = count(what);
    if fault == format!("write:{what}:{n}") {
        return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
    }
    Ok(())
}

/// The `n`th of `what` (a journal record, a part of the samples) is written: the process dies
/// here if asked.
pub fn written(what: &str, n: u64) {
    if asked().is_some_and(|f| f == format!("abort:{what}:{n}")) {
        // SAFETY: raises SIGKILL on this process, as `kill -9` would.
        unsafe { libc::raise(libc::SIGKILL) };
    }
}

/// Panics at `point` if asked.
pub fn panic_at(point: &str) {
    if asked().is_some_and(|f| f == format!("panic:{point}")) {
        panic!("injected panic ({point}, MIGBENCH_FAULT)");
    }
}
