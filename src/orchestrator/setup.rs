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

/// Checks, before a variant's jobs start, that every device its CDI container jobs may be given
/// (`--device nvidia.com/gpu=UUID`) is named by a CDI spec the engine reads: a spec written
/// before migbench made the MIG layout names none of its devices. Where one is missing, the
/// spec is regenerated with NVIDIA's tool if the user allowed it (`refresh`, journaled so that
/// it is regenerated again once the GPU is as found), else the variant fails before any job
/// starts, saying which devices are missing and the command that names them.
pub fn cdi_ready(
    backend: &dyn Backend,
    journal: &mut Journal,
    scenario: &crate::scenario::Scenario,
    planned: &[super::planned::PlannedJob],
    refresh: Option<&Path>,
) -> Result<()> {
    use crate::container::GpuRequest;
    let cdi = |job: &&super::planned::PlannedJob| {
        let w = &job.workload;
        w.image.is_some()
            && w.gpu_request
                .unwrap_or_else(|| scenario.engine_for(w).default_gpu_request())
                == GpuRequest::Cdi
    };
    if !backend.runs_containers() || !planned.iter().any(|j| cdi(&j)) {
        return Ok(());
    }
    let devices = backend.devices()?;
    let mut wanted: Vec<String> = Vec::new();
    for job in planned.iter().filter(cdi) {
        for slot in super::planned::allowed_slots(job, devices.len()) {
            if let Some(d) = devices.get(slot).filter(|d| !wanted.contains(&d.uuid)) {
                wanted.push(d.uuid.clone());
            }
        }
    }
    let mut missing = crate::cdi::unnamed(&wanted);
    if missing.is_empty() {
        return Ok(());
    }
    if let Some(spec) = refresh {
        journal.made(crate::journal::Made::CdiSpec {
            path: spec.to_path_buf(),
            existed: spec.exists(),
        })?;
        crate::cdi::generate(spec).map_err(Error::Harness)?;
        missing = crate::cdi::unnamed(&wanted);
        if missing.is_empty() {
            return Ok(());
        }
    }
    let names: Vec<String> = missing.iter().map(|u| crate::cdi::device_name(u)).collect();
    let spec = refresh.unwrap_or(Path::new(crate::cdi::REFRESH_SPEC));
    let fix = if refresh.is_some() {
        format!(
            "`{}` ran and still does not name them; see what it names with `nvidia-ctk cdi list`",
            crate::cdi::generate_argv(spec).join(" ")
        )
    } else {
        format!(
            "run with --cdi-refresh, and migbench runs `{}` after the layout is made (and again \
             once the GPU is put back)",
            crate::cdi::generate_argv(spec).join(" ")
        )
    };
    Err(Error::Harness(format!(
        "no CDI spec in {} names {}, which the variant's containers are given: a spec written \
         before migbench made the MIG layout names only the devices of then; {fix}",
        crate::cdi::SPEC_DIRS.join(" or "),
        names.join(", ")
    )))
}
