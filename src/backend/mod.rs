//! Backends: the GPU migbench drives. [`sim`] simulates one; [`nvml`] drives a real NVIDIA GPU.
//!
//! The orchestrator talks to both through [`Backend`], in the declarative style of mig-parted:
//! it computes a list of [`Change`]s for a variant, asks the backend to apply them one at a time
//! (journaling each), and undoes them in reverse order with [`Change::inverse`].

pub mod dry_run;
pub mod nvml;
pub mod sim;

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::catalog::GpuModel;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::workload::Workload;

/// Which backend produced a result. Simulated numbers are never presented as measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Sim,
    Nvml,
    /// Measured by another tool and brought in by `migbench import`: no GPU migbench drove.
    Imported,
}

crate::named!(BackendKind: Sim, Nvml, Imported);

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Sim => "sim",
            BackendKind::Nvml => "nvml",
            BackendKind::Imported => "imported",
        }
    }
}

/// Which GPU a run's journal and lock are about, and how to reach it again after a crash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuIdentity {
    pub backend: BackendKind,
    /// Catalog key.
    pub model: String,
    pub uuid: String,
    pub index: u32,
    /// The simulated GPU's state file, when it outlives the process. Recorded absolute (see
    /// `journal::absolute`), so that a restore from another directory finds the same file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sim_state: Option<PathBuf>,
}

/// What a backend knows about its GPU.
#[derive(Debug, Clone, Serialize)]
pub struct GpuInfo {
    /// Catalog key.
    pub model: String,
    pub name: String,
    pub uuid: String,
    pub driver: Option<String>,
    pub cuda: Option<String>,
    pub mig_enabled: bool,
}

/// The configuration of a GPU that migbench may change: what a journal records as found, and
/// what `migbench restore` must get back to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuState {
    pub mig_enabled: bool,
    /// GPU instances, as `profile@start` (e.g. `3g.40gb@4`), in slice order.
    pub instances: Vec<String>,
    /// Devices (GPU or MIG UUIDs) an MPS control daemon serves.
    pub mps: Vec<String>,
}

/// A compute process on the GPU that migbench did not start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForeignProcess {
    pub pid: u32,
    pub name: String,
    pub used_gib: f64,
}

/// One step that changes the GPU's configuration. Each has an inverse that undoes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    SetMigMode {
        enabled: bool,
    },
    /// A GPU instance of `profile` at memory slice `start` (which also identifies it).
    CreateGpuInstance {
        profile_id: u32,
        profile: String,
        start: u8,
    },
    DestroyGpuInstance {
        profile_id: u32,
        profile: String,
        start: u8,
    },
    /// Compute instance number `index` (in creation order) inside the GI at `gi_start`.
    CreateComputeInstance {
        gi_start: u8,
        index: usize,
        profile_id: u32,
        profile: String,
    },
    DestroyComputeInstance {
        gi_start: u8,
        index: usize,
        profile_id: u32,
        profile: String,
    },
    /// An MPS control daemon for one device (the GPU or a MIG device), with private directories.
    StartMps {
        device: String,
        pipe_dir: PathBuf,
        log_dir: PathBuf,
        active_thread_percentage: Option<u8>,
        pinned_memory_limit_gib: Option<f64>,
    },
    StopMps {
        device: String,
        pipe_dir: PathBuf,
        log_dir: PathBuf,
    },
}

impl Change {
    /// The change that undoes this one.
    pub fn inverse(&self) -> Change {
        match self.clone() {
            Change::SetMigMode { enabled } => Change::SetMigMode { enabled: !enabled },
            Change::CreateGpuInstance {
                profile_id,
                profile,
                start,
            } => Change::DestroyGpuInstance {
                profile_id,
                profile,
                start,
            },
            Change::DestroyGpuInstance {
                profile_id,
                profile,
                start,
            } => Change::CreateGpuInstance {
                profile_id,
                profile,
                start,
            },
            Change::CreateComputeInstance {
                gi_start,
                index,
                profile_id,
                profile,
            } => Change::DestroyComputeInstance {
                gi_start,
                index,
                profile_id,
                profile,
            },
            Change::DestroyComputeInstance {
                gi_start,
                index,
                profile_id,
                profile,
            } => Change::CreateComputeInstance {
                gi_start,
                index,
                profile_id,
                profile,
            },
            Change::StartMps {
                device,
                pipe_dir,
                log_dir,
                ..
            } => Change::StopMps {
                device,
                pipe_dir,
                log_dir,
            },
            Change::StopMps {
                device,
                pipe_dir,
                log_dir,
            } => Change::StartMps {
                device,
                pipe_dir,
                log_dir,
                active_thread_percentage: None,
                pinned_memory_limit_gib: None,
            },
        }
    }
}

/// A place a job can run: the whole GPU, or one MIG compute instance.
#[derive(Debug, Clone, Serialize)]
pub struct Device {
    /// What `CUDA_VISIBLE_DEVICES` takes: `GPU-...` or `MIG-...`.
    pub uuid: String,
    /// `GPU` or the instance, e.g. `3g.40gb@4` (with `/1c.3g.40gb` for a split GI).
    pub label: String,
    /// MIG GPU-instance profile, when a MIG device.
    pub profile: Option<String>,
    /// The memory pool the device draws from (a GI's memory is shared by its CIs).
    pub pool: String,
    pub pool_gib: f64,
    pub sm: u32,
    /// Pipe directory of the MPS daemon serving this device, if one runs.
    pub mps_pipe_dir: Option<PathBuf>,
}

impl Device {
    /// The whole GPU `model`, as one device.
    pub fn whole_gpu(model: &GpuModel, uuid: &str, mps_pipe_dir: Option<PathBuf>) -> Device {
        Device {
            uuid: uuid.to_string(),
            label: "GPU".into(),
            profile: None,
            pool: "gpu".into(),
            pool_gib: model.memory_gib(),
            sm: model.sm_count,
            mps_pipe_dir,
        }
    }

    /// The environment that pins a job to this device and to its MPS daemon, if one runs. A job
    /// outside MPS gets a pipe directory where no daemon can be: CUDA joins a daemon at the
    /// default /tmp/nvidia-mps whenever one runs there, and would make a full or time-slicing
    /// job an MPS client without a word (issue 23; docs/nvidia-smi.md).
    pub fn job_env(&self) -> Vec<(String, String)> {
        let pipe = self
            .mps_pipe_dir
            .as_ref()
            .map_or_else(|| NO_MPS_PIPE_DIR.to_string(), |d| d.display().to_string());
        vec![
            ("CUDA_VISIBLE_DEVICES".to_string(), self.uuid.clone()),
            ("CUDA_MPS_PIPE_DIRECTORY".to_string(), pipe),
        ]
    }
}

/// The MPS pipe directory of jobs that must not be MPS clients: nothing can ever exist under
/// /dev/null, so no daemon's socket can be found there and CUDA runs the job on its own.
pub const NO_MPS_PIPE_DIR: &str = "/dev/null/migbench-no-mps";

/// A job to start on a device.
#[derive(Debug, Clone)]
pub struct JobRequest<'a> {
    /// Unique within the run.
    pub id: u64,
    pub workload: &'a Workload,
    pub device: &'a Device,
}

/// How to start a job: argv (never through a shell), environment and working directory.
#[derive(Debug, Clone)]
pub struct JobLaunch {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
}

/// Where a sample row was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Gpu,
    Instance,
    Process,
}

crate::named!(Scope: Gpu, Instance, Process);

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Gpu => "gpu",
            Scope::Instance => "instance",
            Scope::Process => "process",
        }
    }
}

/// Memory in use at one moment, at one scope.
#[derive(Debug, Clone, Serialize)]
pub struct SampleRow {
    pub scope: Scope,
    /// GPU or MIG UUID, or the PID for a process.
    pub id: String,
    pub label: String,
    pub used_gib: f64,
    pub capacity_gib: Option<f64>,
    /// On a GPU row, percent of the time a kernel ran over the last sample period (NVML's GPU
    /// utilization; not given on MIG GPUs, docs/mig.md); on a MIG instance's row, the share of
    /// its SMs busy since its last sample (NVML's GPM, Hopper and later). Absent where the
    /// backend cannot tell; the simulator does not.
    pub utilization_pct: Option<f64>,
    /// The whole GPU's power draw in watts, on the GPU's row, where the backend reports it
    /// (NVML's `nvmlDeviceGetPowerUsage`; the simulator's power model). Never 0 for unknown.
    pub power_w: Option<f64>,
    /// For a process, its process group, which the sampler fills in: a job runs as the leader of
    /// its own group, so processes it starts (vLLM's engine core, a launcher's child) are counted
    /// as the job's.
    pub group: Option<u32>,
    /// For a process, whether NVML listed it among MPS clients (true) or as a plain compute
    /// process (false); None where the backend cannot tell (the simulator).
    pub mps_client: Option<bool>,
}

impl SampleRow {
    /// The memory one process uses on `device`.
    pub fn process(pid: u32, device: String, used_gib: f64) -> SampleRow {
        SampleRow {
            scope: Scope::Process,
            id: pid.to_string(),
            label: device,
            used_gib,
            capacity_gib: None,
            utilization_pct: None,
            power_w: None,
            group: None,
            mps_client: None,
        }
    }
}

/// The GPU a run drives.
pub trait Backend: Send + Sync {
    fn kind(&self) -> BackendKind;
    fn info(&self) -> GpuInfo;
    /// The GPU as a run's journal and lock record it: what `migbench restore` needs to find the
    /// same GPU again (`index` is the scenario's GPU index).
    fn identity(&self, index: u32) -> GpuIdentity {
        let info = self.info();
        GpuIdentity {
            backend: self.kind(),
            model: info.model,
            uuid: info.uuid,
            index,
            sim_state: self.state_file(),
        }
    }
    /// The file a simulated GPU is saved in, when it outlives the process.
    fn state_file(&self) -> Option<PathBuf> {
        None
    }
    /// Whether the GPU's state outlives this process (a real GPU; a simulated one saved in a
    /// file). Then its lock file is cleared and kept for the next run; else it is removed.
    fn outlives_run(&self) -> bool {
        true
    }
    /// The run's clock: the monotonic wall clock on hardware, simulated time that advances by
    /// events on the simulator ([`crate::clock`]).
    fn clock(&self) -> Clock;
    /// Seconds on the backend's clock.
    fn now(&self) -> f64 {
        self.clock().now()
    }
    /// The configuration now.
    fn state(&self) -> Result<GpuState>;
    /// Whether `change` is in effect now: a GPU instance it creates exists, MIG mode is as it
    /// sets it... Restoring uses it to skip changes a crash cut short or a restore undid.
    fn in_effect(&self, change: &Change) -> Result<bool>;
    /// Why the GPU's compute mode rules out sharing mode `mode`, if it does: under
    /// EXCLUSIVE_PROCESS a device takes one process at a time, so time-slicing cannot run;
    /// under PROHIBITED nothing can.
    fn mode_refusal(&self, _mode: crate::mode::SharingMode) -> Option<String> {
        None
    }
    /// Compute processes on the GPU that this run did not start.
    fn foreign_processes(&self) -> Result<Vec<ForeignProcess>> {
        Ok(Vec::new())
    }
    /// Applies one change; an error leaves the GPU as it was before the change.
    fn apply(&self, change: &Change) -> Result<()>;
    /// Where jobs can run now: the GPU, or each MIG compute instance. An error when they cannot
    /// be listed, never an empty list in its place: a variant with nowhere to run fails.
    fn devices(&self) -> Result<Vec<Device>>;
    /// How to start `job` on its device.
    fn launch(&self, job: &JobRequest) -> Result<JobLaunch>;
    /// Whether a container workload's job runs in its container (through its engine): on a
    /// real GPU. The simulator runs the simulated job itself, and records the engine's command
    /// line it stands for.
    fn runs_containers(&self) -> bool {
        true
    }
    /// Memory in use now, per GPU, instance and process.
    fn sample(&self) -> Result<Vec<SampleRow>>;

    /// The GPU's total-energy counter in joules (NVML's `nvmlDeviceGetTotalEnergyConsumption`,
    /// since the driver loaded, Volta and later; the simulator's since it started), or None
    /// where the GPU does not report one. Only differences between two readings mean anything.
    fn energy_j(&self) -> Option<f64> {
        None
    }
    /// The process of job `job` (a [`JobRequest::id`]) has ended; the orchestrator has yet to
    /// see it. The simulator stops giving it turns.
    fn process_exited(&self, _job: u64) {}
    /// The orchestrator has seen job `job` end: whatever the backend tracked of it goes.
    fn job_ended(&self, _job: u64) {}
}

/// Which GPU to drive.
#[derive(Debug, Clone)]
pub enum Target {
    /// The simulator, its configuration kept in `state_file` when given.
    Sim {
        /// At most this many simulated seconds per real second; as fast as events allow if
        /// `None`.
        pace: Option<f64>,
        state_file: Option<PathBuf>,
    },
    /// A real GPU, by index or UUID.
    Nvml { index: u32, uuid: Option<String> },
}

/// Opens the backend for a GPU of `model`.
pub fn open(model: &'static GpuModel, target: &Target) -> Result<Arc<dyn Backend>> {
    match target {
        Target::Sim { pace, state_file } => {
            // Simulated jobs are this same binary, run as `migbench synth`.
            let exe = std::env::current_exe()
                .map_err(|e| Error::Harness(format!("cannot find the migbench binary: {e}")))?;
            Ok(match state_file {
                Some(file) => Arc::new(sim::SimBackend::start_saved(model, *pace, exe, file)?),
                None => Arc::new(sim::SimBackend::start(model, *pace, exe)?),
            })
        }
        Target::Nvml { index, uuid } => Ok(Arc::new(nvml::NvmlBackend::open(
            model,
            *index,
            uuid.as_deref(),
        )?)),
    }
}
