//! Setting the GPU up for a variant and putting it back: the changes each mode needs, applied
//! one at a time through the [`Journal`], which remembers them, and undone in reverse order.

use std::path::Path;

use crate::backend::nvml::mps;
use crate::backend::{Backend, Change};
use crate::error::{Error, Result};
use crate::journal::Journal;
use crate::layout::Layout;
use crate::mode::SharingMode;
use crate::scenario::{MpsSettings, Variant};

/// Journals `change` and applies it; the journal remembers it for teardown. A journal that
/// could not record the change's outcome (a full disk) stops the setup there.
fn apply(backend: &dyn Backend, journal: &mut Journal, change: Change) -> Result<()> {
    journal.apply(backend, change)?;
    match journal.broken() {
        None => Ok(()),
        Some(why) => Err(Error::Harness(why.to_string())),
    }
}

/// Sets the GPU up for `variant`: MIG mode and instances, then MPS daemons.
pub fn set_up(
    backend: &dyn Backend,
    journal: &mut Journal,
    variant: &Variant,
    layout: Option<&Layout>,
    mps_root: &Path,
) -> Result<()> {
    let mode = *variant.mode.get_ref();
    if let Some(layout) = layout {
        if !backend.info().mig_enabled {
            apply(backend, journal, Change::SetMigMode { enabled: true })?;
        }
        // Largest first: the order the driver accepts (UG).
        for gi in layout.creation_order() {
            apply(
                backend,
                journal,
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
    // Where jobs will run, read back now: a GPU whose devices cannot be listed (NVML's view of
    // MIG stale, a listing that fails) fails the setup, which is undone, and the run goes on.
    let devices = backend.devices()?;
    if matches!(mode, SharingMode::Mps | SharingMode::MigMps) {
        let settings: MpsSettings = variant
            .mps
            .as_ref()
            .map(|m| m.get_ref().clone())
            .unwrap_or_default();
        // One daemon per device: the GPU, or each MIG device under mig+mps.
        for (n, device) in devices.iter().enumerate() {
            apply(
                backend,
                journal,
                Change::StartMps {
                    device: device.uuid.clone(),
                    pipe_dir: mps::pipe_dir(mps_root, n),
                    log_dir: mps_root.join(format!("d{n}")).join("log"),
                    active_thread_percentage: settings.active_thread_percentage,
                    pinned_memory_limit_gib: settings.pinned_memory_limit_gib,
                },
            )?;
        }
    }
    Ok(())
}

/// Undoes every change made and not undone yet, newest first (see [`Journal::undo_all`]).
pub fn tear_down(backend: &dyn Backend, journal: &mut Journal) -> Result<()> {
    journal.undo_all(backend)
}
