//! The real-GPU backend: NVML (through nvml-wrapper) for discovery and sampling, nvidia-smi for
//! MIG changes and nvidia-cuda-mps-control for MPS.
//!
//! Why nvidia-smi for MIG and not NVML: nvml-wrapper has no safe wrappers for creating or
//! destroying GPU and compute instances (docs/mig.md), so NVML would mean unsafe raw calls with
//! hand-managed handles; nvidia-smi takes the placement directly (`-cgi 9:4`), reports the IDs it
//! gave, and is the language users already read. Above all, the lines it runs come from
//! [`commands`], the same code `migbench run --dry-run` prints from, so a dry run shows exactly
//! what a real run will do. Sampling stays on NVML, where a call costs microseconds.
//!
//! Here the [`Backend`] implementation; beside it [`library`] (loading NVML), [`discover`]
//! (what GPUs the machine has), [`placement`] (where jobs can run, listed once per change),
//! [`mig_mode`], [`mps_control`] (the daemons migbench starts) and [`mps`] (finding MPS
//! processes), [`commands`] (the nvidia-smi lines), [`exec`] (running them) and [`smi_parse`].

pub mod catalog_check;
pub mod commands;
mod discover;
mod exec;
mod gpm;
mod library;
mod mig_mode;
pub mod mps;
mod mps_control;
mod placement;
pub mod smi_parse;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::Nvml;

use super::{
    Backend, BackendKind, Change, Device, ForeignProcess, GpuInfo, GpuState, JobLaunch, JobRequest,
    SampleRow, Scope,
};
use crate::catalog::{Catalog, GpuModel};
use crate::clock::{lock, Clock};
use crate::error::{Error, Result};
use crate::layout::placed_name;
use commands::{command_lines, MigIds};
pub use discover::{discover, FoundGpu, FoundMigDevice};
use library::{cuda_version, nvml, nvml_error, GIB};
use placement::Placed;

/// A real NVIDIA GPU.
pub struct NvmlBackend {
    nvml: &'static Nvml,
    model: &'static GpuModel,
    index: u32,
    uuid: String,
    name: String,
    driver: Option<String>,
    cuda: Option<String>,
    clock: Clock,
    /// Pipe directory of each MPS daemon migbench started, by the device it serves.
    mps: Mutex<BTreeMap<String, PathBuf>>,
    /// Where jobs can run, found once per configuration (finding it runs nvidia-smi, far too
    /// slow for every sample); every change forgets it.
    placed: Mutex<Option<Vec<Placed>>>,
    /// The instance IDs, listed once per configuration: undoing a change first asks whether it
    /// is in effect and then makes its inverse, and both need the listing.
    listed: Mutex<Option<MigIds>>,
    /// Each GPU instance's last GPM sample, for its SM activity between samples.
    activity: gpm::Activity,
}

/// The catalog model of `device`, named `name` by NVML: by its PCI device ID first
/// ([`Catalog::identify`]).
pub(crate) fn identify(
    device: &nvml_wrapper::Device,
    name: &str,
) -> std::result::Result<&'static GpuModel, crate::catalog::CatalogError> {
    let pci_device_id = device.pci_info().ok().map(|p| p.pci_device_id);
    Catalog::builtin().identify(pci_device_id, name)
}

impl NvmlBackend {
    /// Opens GPU `index` (or the one with `uuid`), which must be a `model`.
    pub fn open(model: &'static GpuModel, index: u32, uuid: Option<&str>) -> Result<NvmlBackend> {
        let nvml = nvml()?;
        let device = match uuid {
            Some(u) => nvml.device_by_uuid(u),
            None => nvml.device_by_index(index),
        }
        .map_err(|e| {
            let count = nvml.device_count().unwrap_or(0);
            Error::Input(format!(
                "no GPU {}: NVML says {e}; this machine has {count} GPU(s)",
                uuid.map_or_else(|| index.to_string(), str::to_string)
            ))
        })?;
        let name = device.name().map_err(nvml_error("the GPU name"))?;
        // An unknown GPU is an error that names the known ones.
        let found = identify(&device, &name)?;
        if found.key != model.key {
            return Err(Error::Input(format!(
                "GPU {index} is a {name} ({}), but the scenario is for a {}",
                found.key, model.key
            )));
        }
        let cuda = cuda_version(nvml);
        let driver = nvml.sys_driver_version().ok();
        if let Some(version) = &driver {
            library::check_driver(version)?;
        }
        Ok(NvmlBackend {
            nvml,
            model,
            index: device.index().unwrap_or(index),
            uuid: device.uuid().map_err(nvml_error("the GPU UUID"))?,
            name,
            driver,
            cuda,
            clock: Clock::wall(),
            mps: Mutex::new(BTreeMap::new()),
            placed: Mutex::new(None),
            listed: Mutex::new(None),
            activity: gpm::Activity::default(),
        })
    }

    fn device(&self) -> Result<nvml_wrapper::Device<'static>> {
        self.nvml
            .device_by_uuid(self.uuid.as_str())
            .map_err(nvml_error("the GPU"))
    }

    /// Makes one change: MIG mode and instances through nvidia-smi, MPS through its control tool.
    fn apply_now(&self, change: &Change) -> Result<()> {
        match change {
            Change::SetMigMode { enabled } => self.set_mig_mode(change, *enabled),
            Change::StartMps {
                device,
                pipe_dir,
                log_dir,
                ..
            } => self.start_mps(change, device, pipe_dir, log_dir),
            Change::StopMps {
                device, pipe_dir, ..
            } => self.stop_mps(change, device, pipe_dir),
            Change::DestroyComputeInstance { .. } | Change::DestroyGpuInstance { .. } => {
                let ids = self.listed_instances()?;
                for line in command_lines(change, self.index, &ids)? {
                    exec::run_while_in_use(&line)?;
                }
                Ok(())
            }
            _ => {
                // Instances are named by the IDs the driver gave them, read back each time.
                let ids = self.listed_instances()?;
                for line in command_lines(change, self.index, &ids)? {
                    exec::run(&line)?;
                }
                Ok(())
            }
        }
    }
}

impl Backend for NvmlBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Nvml
    }

    fn info(&self) -> GpuInfo {
        GpuInfo {
            model: self.model.key.clone(),
            name: self.name.clone(),
            uuid: self.uuid.clone(),
            driver: self.driver.clone(),
            cuda: self.cuda.clone(),
            mig_enabled: self.mig_mode().map(|m| m.0).unwrap_or(false),
        }
    }

    fn clock(&self) -> Clock {
        self.clock.clone()
    }

    fn state(&self) -> Result<GpuState> {
        let (mig_enabled, _) = self.mig_mode()?;
        let mut instances = Vec::new();
        if mig_enabled {
            instances = self
                .listed_gpu_instances()?
                .iter()
                .map(|g| placed_name(&g.name, g.start))
                .collect();
        }
        Ok(GpuState {
            mig_enabled,
            instances,
            mps: mps::daemon_names(&self.device_names()),
        })
    }

    fn in_effect(&self, change: &Change) -> Result<bool> {
        Ok(match change {
            Change::SetMigMode { enabled } => self.mig_mode()?.0 == *enabled,
            Change::CreateGpuInstance { start, .. } => self.listed_instances()?.gi(*start).is_ok(),
            Change::DestroyGpuInstance { start, .. } => {
                self.listed_instances()?.gi(*start).is_err()
            }
            Change::CreateComputeInstance {
                gi_start, index, ..
            } => self.listed_instances()?.ci(*gi_start, *index).is_ok(),
            Change::DestroyComputeInstance {
                gi_start, index, ..
            } => self.listed_instances()?.ci(*gi_start, *index).is_err(),
            Change::StartMps { pipe_dir, .. } => !mps::using(pipe_dir).is_empty(),
            Change::StopMps { pipe_dir, .. } => mps::using(pipe_dir).is_empty(),
        })
    }

    fn mode_refusal(&self, mode: crate::mode::SharingMode) -> Option<String> {
        use crate::mode::SharingMode;
        use nvml_wrapper::enum_wrappers::device::ComputeMode;
        let compute = self.device().ok()?.compute_mode().ok()?;
        match (compute, mode) {
            (ComputeMode::Prohibited, _) => Some(format!(
                "GPU {}'s compute mode is PROHIBITED: no job can run on it (nvidia-smi -c)",
                self.index
            )),
            (ComputeMode::ExclusiveProcess, SharingMode::Timeslice) => Some(format!(
                "GPU {}'s compute mode is EXCLUSIVE_PROCESS, which lets one process at a time \
                 use a device: time-slicing cannot run (nvidia-smi -c DEFAULT allows it)",
                self.index
            )),
            _ => None,
        }
    }

    fn foreign_processes(&self) -> Result<Vec<ForeignProcess>> {
        let placed = self.placed()?;
        Ok(self
            .processes(&placed)?
            .into_iter()
            .map(|(p, ..)| ForeignProcess {
                pid: p.pid,
                name: crate::procfs::name(p.pid),
                used_gib: match p.used_gpu_memory {
                    UsedGpuMemory::Used(b) => b as f64 / GIB,
                    UsedGpuMemory::Unavailable => 0.0,
                },
            })
            .collect())
    }

    fn apply(&self, change: &Change) -> Result<()> {
        let result = self.apply_now(change);
        // Forgotten after the change, not before: a sample taken while nvidia-smi was at work
        // would otherwise keep a half-made layout (a GI without all its compute instances).
        // Until the next change they hold: migbench holds the GPU's lock.
        *lock(&self.placed) = None;
        *lock(&self.listed) = None;
        self.activity.forget();
        result
    }

    fn devices(&self) -> Result<Vec<Device>> {
        let placed = self.placed()?;
        if placed.is_empty() {
            return Err(Error::Harness(format!(
                "GPU {} has MIG mode on but NVML lists no MIG device to run jobs on",
                self.index
            )));
        }
        Ok(placed
            .into_iter()
            .map(|p| Device {
                mps_pipe_dir: self.mps_dir(&p.device.uuid),
                ..p.device
            })
            .collect())
    }

    fn launch(&self, job: &JobRequest) -> Result<JobLaunch> {
        let w = job.workload;
        if w.command.is_empty() {
            return Err(Error::Input(format!(
                "workload {} has no command to run on a real GPU",
                w.name
            )));
        }
        Ok(JobLaunch {
            argv: w.command.clone(),
            env: job.device.job_env(),
            cwd: w.workdir.as_ref().map(PathBuf::from),
        })
    }

    fn sample(&self) -> Result<Vec<SampleRow>> {
        let device = self.device()?;
        let memory = device.memory_info().map_err(nvml_error("GPU memory"))?;
        let mut rows = vec![SampleRow {
            scope: Scope::Gpu,
            id: self.uuid.clone(),
            label: "GPU".into(),
            used_gib: memory.used as f64 / GIB,
            capacity_gib: Some(memory.total as f64 / GIB),
            // Not supported with MIG on (docs/mig.md): then None.
            utilization_pct: device.utilization_rates().ok().map(|u| f64::from(u.gpu)),
            // Milliwatts; absent where the board does not report it.
            power_w: device.power_usage().ok().map(|mw| f64::from(mw) / 1000.0),
            group: None,
            mps_client: None,
        }];
        let placed = self.placed()?;
        // One row per memory pool: the compute instances of a GPU instance share its memory.
        let mut pools: Vec<&str> = Vec::new();
        for p in placed.iter().filter(|p| p.mig) {
            if pools.contains(&p.device.pool.as_str()) {
                continue;
            }
            pools.push(&p.device.pool);
            let mig = self
                .nvml
                .device_by_uuid(p.device.uuid.as_str())
                .map_err(nvml_error("a MIG device"))?;
            let mem = mig.memory_info().map_err(nvml_error("MIG memory"))?;
            // GPM is asked of the GPU's handle with the GPU instance's ID.
            let utilization_pct =
                library::raw_id(&self.nvml.lib().nvmlDeviceGetGpuInstanceId, &mig)
                    .and_then(|gi| self.activity.sm_util(self.nvml, &device, gi));
            rows.push(SampleRow {
                scope: Scope::Instance,
                id: p.device.uuid.clone(),
                label: p.device.pool.clone(),
                used_gib: mem.used as f64 / GIB,
                capacity_gib: Some(mem.total as f64 / GIB),
                utilization_pct,
                power_w: None,
                group: None,
                mps_client: None,
            });
        }
        for (proc, device, mps) in self.processes(&placed)? {
            if let UsedGpuMemory::Used(bytes) = proc.used_gpu_memory {
                rows.push(SampleRow {
                    mps_client: Some(mps),
                    ..SampleRow::process(proc.pid, device, bytes as f64 / GIB)
                });
            }
        }
        Ok(rows)
    }

    fn energy_j(&self) -> Option<f64> {
        // Millijoules since the driver loaded; NOT_SUPPORTED before Volta and on some boards.
        let mj = self.device().ok()?.total_energy_consumption().ok()?;
        Some(mj as f64 / 1000.0)
    }
}
