//! Setting the GPU up for a variant and putting it back: the changes each mode needs, applied
//! one at a time and journaled, undone in reverse order.

use std::path::Path;

use crate::backend::{Backend, Change};
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::mode::SharingMode;
use crate::results::RunDir;
use crate::scenario::{MpsSettings, Variant};

/// The changes applied so far for one variant, newest last.
#[derive(Default)]
pub struct Applied {
    changes: Vec<Change>,
}

/// Applies `change`, journals it, and remembers it for teardown.
fn apply(
    backend: &dyn Backend,
    run: &mut RunDir,
    t0: f64,
    applied: &mut Applied,
    change: Change,
) -> Result<()> {
    backend.apply(&change)?;
    run.event(
        backend.now() - t0,
        "change",
        serde_json::to_value(&change).unwrap_or_default(),
    )?;
    applied.changes.push(change);
    Ok(())
}

/// Sets the GPU up for `variant`: MIG mode and instances, then MPS daemons.
pub fn set_up(
    backend: &dyn Backend,
    run: &mut RunDir,
    t0: f64,
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
                run,
                t0,
                applied,
                Change::SetMigMode { enabled: true },
            )?;
        }
        // Largest first: the order the driver accepts (UG).
        for gi in layout.creation_order() {
            apply(
                backend,
                run,
                t0,
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
                    run,
                    t0,
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
                run,
                t0,
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
    run: &mut RunDir,
    t0: f64,
    applied: &mut Applied,
) -> Result<()> {
    let mut first_error = None;
    while let Some(change) = applied.changes.pop() {
        let undo = change.inverse();
        let result = backend.apply(&undo);
        let mut fields = serde_json::to_value(&undo).unwrap_or_default();
        if let (Err(e), Some(obj)) = (&result, fields.as_object_mut()) {
            obj.insert("error".into(), e.to_string().into());
        }
        run.event(backend.now() - t0, "undo", fields)?;
        if let Err(e) = result {
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
