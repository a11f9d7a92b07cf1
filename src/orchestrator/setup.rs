//! Setting the GPU up for a variant and putting it back: the changes each mode needs, applied
//! one at a time through the [`Journal`], undone in reverse order.

use std::path::Path;

use crate::backend::{Backend, Change};
use crate::error::{Error, Result};
use crate::journal::{Entry, Journal};
use crate::layout::Layout;
use crate::mode::SharingMode;
use crate::scenario::{MpsSettings, Variant};

/// The changes applied so far for one variant, newest last.
#[derive(Default)]
pub struct Applied {
    entries: Vec<Entry>,
}

/// Journals `change`, applies it, and remembers it for teardown.
fn apply(
    backend: &dyn Backend,
    journal: &mut Journal,
    applied: &mut Applied,
    change: Change,
) -> Result<()> {
    applied.entries.push(journal.apply(backend, change)?);
    Ok(())
}

/// Sets the GPU up for `variant`: MIG mode and instances, then MPS daemons.
pub fn set_up(
    backend: &dyn Backend,
    journal: &mut Journal,
    variant: &Variant,
    layout: Option<&Layout>,
    mps_root: &Path,
    applied: &mut Applied,
) -> Result<()> {
    let mode = *variant.mode.get_ref();
    if let Some(layout) = layout {
        if !backend.info().mig_enabled {
            apply(
                backend,
                journal,
                applied,
                Change::SetMigMode { enabled: true },
            )?;
        }
        // Largest first: the order the driver accepts (UG).
        for gi in layout.creation_order() {
            apply(
                backend,
                journal,
                applied,
                Change::CreateGpuInstance {
                    profile_id: gi.profile.id,
                    profile: gi.profile.name.clone(),
                    start: gi.start,
                },
            )?;
            for (index, ci) in gi.compute.iter().enumerate() {
                apply(
                    backend,
                    journal,
                    applied,
                    Change::CreateComputeInstance {
                        gi_start: gi.start,
                        index,
                        profile_id: ci.id,
                        profile: ci.name.clone(),
                    },
                )?;
            }
        }
    }
    if matches!(mode, SharingMode::Mps | SharingMode::MigMps) {
        let settings: MpsSettings = variant
            .mps
            .as_ref()
            .map(|m| m.get_ref().clone())
            .unwrap_or_default();
        // One daemon per device: the GPU, or each MIG device under mig+mps.
        for (n, device) in backend.devices().iter().enumerate() {
            let dir = mps_root.join(format!("d{n}"));
            apply(
                backend,
                journal,
                applied,
                Change::StartMps {
                    device: device.uuid.clone(),
                    pipe_dir: dir.join("pipe"),
                    log_dir: dir.join("log"),
                    active_thread_percentage: settings.active_thread_percentage,
                    pinned_memory_limit_gib: settings.pinned_memory_limit_gib,
                },
            )?;
        }
    }
    Ok(())
}

/// Undoes every applied change, newest first. Keeps going past a failure so that as much as
/// possible is put back, and reports the first failure.
pub fn tear_down(
    backend: &dyn Backend,
    journal: &mut Journal,
    applied: &mut Applied,
) -> Result<()> {
    let mut first_error = None;
    while let Some(entry) = applied.entries.pop() {
        if let Err(e) = journal.undo(backend, &entry) {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        None => Ok(()),
        Some(e) => Err(Error::Harness(format!(
            "could not put the GPU back as found: {e}"
        ))),
    }
}
