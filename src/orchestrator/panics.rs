//! A panic in any of migbench's threads stops the run the way an error does: jobs stopped, GPU
//! put back, journal closed, exit status 1.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::Error;

/// Set by the panic hook of [`watch_panics`]: some thread of migbench panicked.
static PANICKED: AtomicBool = AtomicBool::new(false);

/// Makes a panic in any thread stop the run: the jobs are stopped, the GPU put back, the journal
/// closed, and the run fails (exit status 1). The panic's message is still printed.
pub fn watch_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICKED.store(true, Ordering::SeqCst);
            previous(info);
        }));
    });
}

/// Whether a thread has panicked since [`watch_panics`].
pub(crate) fn panicked() -> bool {
    PANICKED.load(Ordering::SeqCst)
}

/// The error a caught panic becomes.
pub(super) fn panicked_error(panic: &Box<dyn std::any::Any + Send>) -> Error {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    Error::Harness(format!(
        "migbench panicked ({message}); the jobs were stopped and the GPU put back"
    ))
}
