//! Backends: the GPU migbench drives. [`sim`] simulates one; [`nvml`] drives a real NVIDIA GPU.
//!
//! The orchestrator talks to both through [`Backend`], in the declarative style of mig-parted:
//! it computes a list of [`Change`]s for a variant, asks the backend to apply them one at a time
//! (journaling each), and undoes them in reverse order with [`Change::inverse`].

pub mod nvml;
pub mod sim;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::workload::Workload;

/// Which backend produced a result. Simulated numbers are never presented as measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Sim,
    Nvml,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Sim => "sim",
            BackendKind::Nvml => "nvml",
        }
    }
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
}

/// The GPU a run drives.
pub trait Backend: Send + Sync {
    fn kind(&self) -> BackendKind;
    fn info(&self) -> GpuInfo;
    /// Seconds on the backend's clock: wall time on hardware, simulated time on the simulator.
    fn now(&self) -> f64;
    /// How many backend seconds pass per real second (1 on hardware).
    fn time_scale(&self) -> f64 {
        1.0
    }
    /// Applies one change; an error leaves the GPU as it was before the change.
    fn apply(&self, change: &Change) -> Result<()>;
    /// Where jobs can run now: the GPU, or each MIG compute instance.
    fn devices(&self) -> Vec<Device>;
    /// How to start `job` on its device.
    fn launch(&self, job: &JobRequest) -> Result<JobLaunch>;
    /// Memory in use now, per GPU, instance and process.
    fn sample(&self) -> Result<Vec<SampleRow>>;
}
