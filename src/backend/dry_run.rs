//! `migbench run --dry-run`: the setup and teardown of every variant, as the command lines the
//! NVML backend would run, with nothing changed.
//!
//! It needs no GPU: it assumes the scenario's GPU in its default state (MIG off, no instances, no
//! MPS) and checks every change against the simulator's MIG rules, so a layout the driver would
//! refuse fails here too. Instance IDs and MIG UUIDs are only known once a driver has created the
//! instances, so the lines show predicted IDs and placeholders for the UUIDs.

use std::sync::Mutex;

use super::nvml::commands::{command_lines, MigIds};
use super::sim::gpu::SimGpu;
use super::{
    Backend, BackendKind, Change, Device, GpuInfo, GpuState, JobLaunch, JobRequest, SampleRow,
};
use crate::catalog::GpuModel;
use crate::clock::{lock, Clock};
use crate::error::{Error, Result};

/// A backend that prints instead of changing anything.
pub struct DryRunBackend {
    gpu: Mutex<SimGpu>,
    index: u32,
    gpu_uuid: String,
    ids: Mutex<MigIds>,
    lines: Mutex<Vec<String>>,
    /// Nothing runs, so nothing waits on it.
    clock: Clock,
}

impl DryRunBackend {
    /// GPU `index` of `model`, named by `uuid` when the scenario gives one.
    pub fn new(model: &'static GpuModel, index: u32, uuid: Option<String>) -> DryRunBackend {
        DryRunBackend {
            gpu: Mutex::new(SimGpu::new(model)),
            index,
            gpu_uuid: uuid.unwrap_or_else(|| format!("<UUID of GPU {index}>")),
            ids: Mutex::new(MigIds::default()),
            lines: Mutex::new(Vec::new()),
            clock: Clock::wall(),
        }
    }

    /// Adds a line of commentary (a `#` comment) to the output.
    pub fn comment(&self, text: &str) {
        self.lines().push(format!("# {text}"));
    }

    /// Adds a command line to the output.
    pub fn line(&self, text: &str) {
        self.lines().push(text.to_string());
    }

    /// Everything printed so far.
    pub fn take_lines(&self) -> Vec<String> {
        std::mem::take(&mut *self.lines())
    }

    fn lines(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        lock(&self.lines)
    }

    fn gpu(&self) -> std::sync::MutexGuard<'_, SimGpu> {
        lock(&self.gpu)
    }

    /// The name a MIG device has in the printed lines.
    fn mig_placeholder(gi: u32, ci: u32) -> String {
        format!("<MIG UUID of GI {gi} CI {ci}>")
    }
}

impl Backend for DryRunBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Nvml
    }

    fn info(&self) -> GpuInfo {
        let gpu = self.gpu();
        GpuInfo {
            model: gpu.model.key.clone(),
            name: gpu.model.name.clone(),
            uuid: self.gpu_uuid.clone(),
            driver: None,
            cuda: None,
            mig_enabled: gpu.mig_enabled,
        }
    }

    fn clock(&self) -> Clock {
        self.clock.clone()
    }

    fn state(&self) -> Result<GpuState> {
        Ok(self.gpu().state())
    }

    fn in_effect(&self, change: &Change) -> Result<bool> {
        Ok(self.gpu().in_effect(change))
    }

    fn apply(&self, change: &Change) -> Result<()> {
        let mut ids = lock(&self.ids);
        // IDs a create would get are known before its line is printed; those a destroy uses are
        // forgotten after.
        match change {
            Change::CreateGpuInstance {
                profile_id, start, ..
            } => {
                let profile = self.gpu().model.profile(&profile_id.to_string())?;
                ids.set_gi(*start, MigIds::predicted_gi(*start, profile.memory_slices));
            }
            Change::CreateComputeInstance {
                gi_start, index, ..
            } => ids.set_ci(*gi_start, *index, *index as u32),
            _ => {}
        }
        let lines = command_lines(change, self.index, &ids)?;
        self.gpu().apply(change)?;
        match change {
            Change::DestroyGpuInstance { start, .. } => ids.forget_gi(*start),
            Change::DestroyComputeInstance {
                gi_start, index, ..
            } => ids.forget_ci(*gi_start, *index),
            _ => {}
        }
        self.lines().extend(lines.iter().map(|l| l.to_string()));
        Ok(())
    }

    fn devices(&self) -> Result<Vec<Device>> {
        let gpu = self.gpu();
        let ids = lock(&self.ids);
        let mut devices = gpu.devices();
        for d in &mut devices {
            d.uuid = match gpu.gis.iter().find_map(|gi| {
                gi.cis
                    .iter()
                    .find(|c| c.uuid == d.uuid)
                    .map(|c| (gi.start, c.index))
            }) {
                Some((start, index)) => Self::mig_placeholder(
                    ids.gi(start).unwrap_or_default(),
                    ids.ci(start, index).unwrap_or_default(),
                ),
                None => self.gpu_uuid.clone(),
            };
            // The MPS daemons were started on the names printed.
            d.mps_pipe_dir = gpu
                .mps
                .iter()
                .find(|m| m.device == d.uuid)
                .map(|m| m.pipe_dir.clone());
        }
        Ok(devices)
    }

    fn launch(&self, _job: &JobRequest) -> Result<JobLaunch> {
        Err(Error::Harness("a dry run starts no jobs".into()))
    }

    fn sample(&self) -> Result<Vec<SampleRow>> {
        Ok(Vec::new())
    }
}
