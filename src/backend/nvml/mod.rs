//! The real-GPU backend: NVML (through nvml-wrapper) for discovery and sampling, nvidia-smi for
//! MIG changes and nvidia-cuda-mps-control for MPS.
//!
//! Why nvidia-smi for MIG and not NVML: nvml-wrapper has no safe wrappers for creating or
//! destroying GPU and compute instances (docs/mig.md), so NVML would mean unsafe raw calls with
//! hand-managed handles; nvidia-smi takes the placement directly (`-cgi 9:4`), reports the IDs it
//! gave, and is the language users already read. Above all, the lines it runs come from
//! [`commands`], the same code `migbench run --dry-run` prints from, so a dry run shows exactly
//! what a real run will do. Sampling stays on NVML, where a call costs microseconds.

pub mod catalog_check;
pub mod commands;
mod exec;
pub mod mps;
pub mod smi_parse;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::struct_wrappers::device::ProcessInfo;
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

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// How long an MPS daemon gets to come up, and to be gone after `quit`.
const MPS_WAIT: Duration = Duration::from_secs(10);

/// NVML, loaded once per process; it lives as long as the process does. `$MIGBENCH_NVML_LIB`
/// names another libnvidia-ml to load (the tests' stand-in driver, or a library outside the
/// loader's path).
fn nvml() -> Result<&'static Nvml> {
    static NVML: OnceLock<std::result::Result<Nvml, String>> = OnceLock::new();
    NVML.get_or_init(|| {
        let loaded = match std::env::var_os("MIGBENCH_NVML_LIB") {
            Some(lib) => Nvml::builder().lib_path(&lib).init(),
            None => Nvml::init(),
        };
        loaded.map_err(|e| match e {
            NvmlError::LibloadingError(_) | NvmlError::DriverNotLoaded => {
                "no NVIDIA driver found — use --sim for the simulated GPU".to_string()
            }
            other => format!("NVML failed to start: {other}"),
        })
    })
    .as_ref()
    .map_err(|e| Error::Input(e.clone()))
}

fn nvml_error(what: &str) -> impl Fn(NvmlError) -> Error + '_ {
    move |e| Error::Harness(format!("NVML: cannot read {what}: {e}"))
}

/// A GPU of this machine, as `migbench discover` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FoundGpu {
    pub index: u32,
    pub name: String,
    /// The catalog key, or why the GPU is not in the catalog.
    pub model: std::result::Result<String, String>,
    pub uuid: String,
    pub memory_gib: f64,
    pub mig_current: Option<bool>,
    pub mig_pending: Option<bool>,
    pub driver: Option<String>,
    pub cuda: Option<String>,
    pub mig_devices: Vec<FoundMigDevice>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FoundMigDevice {
    pub uuid: String,
    pub gpu_instance_id: u32,
    pub compute_instance_id: u32,
    pub memory_gib: f64,
}

/// Every NVIDIA GPU of this machine, with its MIG devices.
pub fn discover() -> Result<Vec<FoundGpu>> {
    let nvml = nvml()?;
    let count = nvml.device_count().map_err(nvml_error("the GPU count"))?;
    let driver = nvml.sys_driver_version().ok();
    let cuda = cuda_version(nvml);
    let mut gpus = Vec::new();
    for index in 0..count {
        let device = nvml.device_by_index(index).map_err(nvml_error("a GPU"))?;
        let name = device.name().map_err(nvml_error("the GPU name"))?;
        let mig = device.mig_mode().ok();
        let mig_devices = mig_devices_of(nvml, &device)?
            .into_iter()
            .map(|m| FoundMigDevice {
                uuid: m.uuid,
                gpu_instance_id: m.gi_id,
                compute_instance_id: m.ci_id,
                memory_gib: m.total_gib,
            })
            .collect();
        gpus.push(FoundGpu {
            index,
            model: Catalog::builtin()
                .gpu(&name)
                .map(|g| g.key.clone())
                .map_err(|e| e.to_string()),
            name,
            uuid: device.uuid().map_err(nvml_error("the GPU UUID"))?,
            memory_gib: device
                .memory_info()
                .map(|m| m.total as f64 / GIB)
                .unwrap_or(0.0),
            mig_current: mig.as_ref().map(|m| m.current == 1),
            mig_pending: mig.as_ref().map(|m| m.pending == 1),
            driver: driver.clone(),
            cuda: cuda.clone(),
            mig_devices,
        });
    }
    Ok(gpus)
}

fn cuda_version(nvml: &Nvml) -> Option<String> {
    nvml.sys_cuda_driver_version().ok().map(|v| {
        format!(
            "{}.{}",
            nvml_wrapper::cuda_driver_version_major(v),
            nvml_wrapper::cuda_driver_version_minor(v)
        )
    })
}

/// The MIG devices of `device` (none when MIG is off), with their GPU and compute instance IDs.
fn mig_devices_of(nvml: &Nvml, device: &nvml_wrapper::Device) -> Result<Vec<MigDevice>> {
    let max = device.mig_device_count().unwrap_or(0);
    let lib = nvml.lib();
    let mut out = Vec::new();
    for i in 0..max {
        let Ok(mig) = device.mig_device_by_index(i) else {
            continue;
        };
        let (Some(gi_id), Some(ci_id)) = (
            raw_id(&lib.nvmlDeviceGetGpuInstanceId, &mig),
            raw_id(&lib.nvmlDeviceGetComputeInstanceId, &mig),
        ) else {
            continue;
        };
        out.push(MigDevice {
            uuid: mig.uuid().map_err(nvml_error("a MIG device UUID"))?,
            gi_id,
            ci_id,
            total_gib: mig
                .memory_info()
                .map(|m| m.total as f64 / GIB)
                .unwrap_or(0.0),
        });
    }
    Ok(out)
}

/// A MIG device as NVML sees it.
#[derive(Debug, Clone)]
struct MigDevice {
    uuid: String,
    gi_id: u32,
    ci_id: u32,
    total_gib: f64,
}

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
}

/// A device jobs can run on: the whole GPU, or a MIG device.
#[derive(Debug, Clone)]
struct Placed {
    device: Device,
    mig: bool,
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
        let found = Catalog::builtin().gpu(&name)?;
        if found.key != model.key {
            return Err(Error::Input(format!(
                "GPU {index} is a {name} ({}), but the scenario is for a {}",
                found.key, model.key
            )));
        }
        let cuda = cuda_version(nvml);
        Ok(NvmlBackend {
            nvml,
            model,
            index: device.index().unwrap_or(index),
            uuid: device.uuid().map_err(nvml_error("the GPU UUID"))?,
            name,
            driver: nvml.sys_driver_version().ok(),
            cuda,
            clock: Clock::wall(),
            mps: Mutex::new(BTreeMap::new()),
            placed: Mutex::new(None),
            listed: Mutex::new(None),
        })
    }

    fn device(&self) -> Result<nvml_wrapper::Device<'static>> {
        self.nvml
            .device_by_uuid(self.uuid.as_str())
            .map_err(nvml_error("the GPU"))
    }

    /// MIG mode: (current, pending).
    fn mig_mode(&self) -> Result<(bool, bool)> {
        match self.device()?.mig_mode() {
            Ok(m) => Ok((m.current == 1, m.pending == 1)),
            // A GPU without MIG support is a GPU with MIG off.
            Err(NvmlError::NotSupported) => Ok((false, false)),
            Err(e) => Err(nvml_error("the MIG mode")(e)),
        }
    }

    /// The GPU instances now, from `nvidia-smi mig -lgi`, and the compute instances of each.
    fn listed_instances(&self) -> Result<MigIds> {
        let mut cache = lock(&self.listed);
        if let Some(ids) = &*cache {
            return Ok(ids.clone());
        }
        let ids = self.list_instances()?;
        *cache = Some(ids.clone());
        Ok(ids)
    }

    fn list_instances(&self) -> Result<MigIds> {
        let mut ids = MigIds::default();
        if !self.mig_mode()?.0 {
            return Ok(ids);
        }
        let gis = self.listed_gpu_instances()?;
        let cis = smi_parse::parse_compute_instances(&self.smi(&["mig", "-lci"])?)
            .map_err(|e| Error::Harness(format!("cannot read `nvidia-smi mig -lci`: {e}")))?;
        for gi in &gis {
            ids.set_gi(gi.start, gi.instance_id);
            // Compute instance `index` is the index-th of its GI in ID order: migbench creates
            // a GI's compute instances in order, in an empty GI, so the IDs rise with the index.
            let mut ci_ids: Vec<u32> = cis
                .iter()
                .filter(|c| c.gpu == self.index && c.gpu_instance_id == gi.instance_id)
                .map(|c| c.instance_id)
                .collect();
            ci_ids.sort_unstable();
            for (index, id) in ci_ids.into_iter().enumerate() {
                ids.set_ci(gi.start, index, id);
            }
        }
        Ok(ids)
    }

    /// Runs a read-only nvidia-smi listing on this GPU.
    fn smi(&self, args: &[&str]) -> Result<String> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let purpose = format!("list {}", args.join(" "));
        exec::list(&commands::smi(self.index, &args, purpose, false))
    }

    /// This GPU's GPU instances, from `nvidia-smi mig -lgi`, in slice order.
    fn listed_gpu_instances(&self) -> Result<Vec<smi_parse::ListedGpuInstance>> {
        let mut gis = smi_parse::parse_gpu_instances(&self.smi(&["mig", "-lgi"])?)
            .map_err(|e| Error::Harness(format!("cannot read `nvidia-smi mig -lgi`: {e}")))?;
        gis.retain(|g| g.gpu == self.index);
        gis.sort_by_key(|g| g.start);
        Ok(gis)
    }

    fn mig_devices(&self) -> Result<Vec<MigDevice>> {
        mig_devices_of(self.nvml, &self.device()?)
    }

    /// The names `CUDA_VISIBLE_DEVICES` can give this GPU: its index and UUID, and the UUIDs of
    /// its MIG devices now.
    fn device_names(&self) -> Vec<String> {
        let migs = self.mig_devices().unwrap_or_default();
        [self.index.to_string(), self.uuid.clone()]
            .into_iter()
            .chain(migs.into_iter().map(|m| m.uuid))
            .collect()
    }

    /// Where jobs can run now: the whole GPU, or each MIG device in slice order.
    fn placed(&self) -> Result<Vec<Placed>> {
        let mut cache = lock(&self.placed);
        if let Some(placed) = &*cache {
            return Ok(placed.clone());
        }
        let placed = if self.mig_mode()?.0 {
            self.placed_mig_devices()?
        } else {
            vec![Placed {
                device: Device::whole_gpu(self.model, &self.uuid, None),
                mig: false,
            }]
        };
        *cache = Some(placed.clone());
        Ok(placed)
    }

    fn placed_mig_devices(&self) -> Result<Vec<Placed>> {
        let listed = self.listed_gpu_instances()?;
        let migs = self.mig_devices()?;
        let mut placed: Vec<(u8, Placed)> = Vec::new();
        for m in &migs {
            let Some(gi) = listed.iter().find(|g| g.instance_id == m.gi_id) else {
                continue;
            };
            let profile = self.model.profile(&gi.profile_id.to_string())?;
            let siblings = migs.iter().filter(|o| o.gi_id == m.gi_id).count() as u8;
            let pool = placed_name(&profile.name, gi.start);
            // A GI split into n equal compute instances: each gets 1/n of its compute slices.
            let sm = match profile
                .compute_profiles
                .iter()
                .find(|c| siblings > 1 && c.compute_slices * siblings == profile.compute_slices)
            {
                Some(ci) => profile.ci_sm(ci),
                None => profile.sm,
            };
            placed.push((
                gi.start,
                Placed {
                    device: Device {
                        uuid: m.uuid.clone(),
                        label: if siblings > 1 {
                            format!("{pool}/ci{}", m.ci_id)
                        } else {
                            pool.clone()
                        },
                        profile: Some(profile.name.clone()),
                        pool,
                        pool_gib: if m.total_gib > 0.0 {
                            m.total_gib
                        } else {
                            profile.memory_gib
                        },
                        sm,
                        mps_pipe_dir: None,
                    },
                    mig: true,
                },
            ));
        }
        placed.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.device.label.cmp(&b.1.device.label)));
        Ok(placed.into_iter().map(|(_, p)| p).collect())
    }

    fn mps_dir(&self, device: &str) -> Option<PathBuf> {
        lock(&self.mps).get(device).cloned()
    }

    fn start_mps(
        &self,
        change: &Change,
        device: &str,
        pipe_dir: &Path,
        log_dir: &Path,
    ) -> Result<()> {
        for dir in [pipe_dir, log_dir] {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Harness(format!("cannot create {}: {e}", dir.display())))?;
        }
        let lines = command_lines(change, self.index, &MigIds::default())?;
        let (daemon, settings) = lines
            .split_first()
            .expect("starting MPS is at least one line");
        exec::run(daemon)?;
        // The daemon forks and returns at once; its control pipe appears when it is ready.
        let ready = wait_until(|| pipe_dir.join("control").exists());
        if !ready {
            // The daemon may be running without its pipe (a driver that names it otherwise):
            // without a control pipe it cannot be told to quit, so it is stopped, as nothing
            // journals it as started.
            let pids: Vec<u32> = mps::using(pipe_dir).iter().map(|p| p.pid).collect();
            for &pid in &pids {
                // SAFETY: kill(2) on an MPS daemon this call started, found by its pipe directory.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
            }
            return Err(Error::Harness(format!(
                "the MPS control daemon for {device} did not come up within {} s (log in {})",
                MPS_WAIT.as_secs(),
                log_dir.display()
            )));
        }
        lock(&self.mps).insert(device.to_string(), pipe_dir.to_path_buf());
        for line in settings {
            if let Err(e) = exec::run(line) {
                // Leave nothing half set up: quit the daemon again.
                let _ = self.stop_mps(&change.inverse(), device, pipe_dir);
                return Err(e);
            }
        }
        Ok(())
    }

    fn stop_mps(&self, change: &Change, device: &str, pipe_dir: &Path) -> Result<()> {
        for line in command_lines(change, self.index, &MigIds::default())? {
            exec::run(&line)?;
        }
        if !wait_until(|| mps::using(pipe_dir).is_empty()) {
            let left: Vec<String> = mps::using(pipe_dir)
                .iter()
                .map(|p| format!("{} (pid {})", p.program, p.pid))
                .collect();
            return Err(Error::Harness(format!(
                "after `quit`, MPS processes for {device} are still running: {}",
                left.join(", ")
            )));
        }
        lock(&self.mps).remove(device);
        Ok(())
    }

    fn set_mig_mode(&self, change: &Change, enabled: bool) -> Result<()> {
        for line in command_lines(change, self.index, &MigIds::default())? {
            exec::run(&line)?;
        }
        let (current, pending) = self.mig_mode()?;
        if current != enabled {
            // Put the pending mode back, so nothing changes at the next reset or reboot.
            let _ = command_lines(&change.inverse(), self.index, &MigIds::default())
                .map(|lines| lines.iter().map(exec::run).collect::<Vec<_>>());
            return Err(Error::Input(format!(
                "MIG mode on GPU {} stays {} ({} pending): the change needs a GPU reset \
                 (`nvidia-smi --gpu-reset -i {}`) or a reboot, which migbench never does; \
                 the pending change was taken back",
                self.index,
                if current { "enabled" } else { "disabled" },
                if pending { "enable" } else { "disable" },
                self.index
            )));
        }
        Ok(())
    }

    /// The compute processes on the GPU, each with the UUID of the device it runs on. With MIG
    /// on, each MIG device is asked for its own: NVML gives the whole GPU's list in MIG mode only
    /// to privileged callers (nvmlDeviceGetComputeRunningProcesses_v3), and a MIG device's list
    /// needs no matching of GPU and compute instance IDs.
    fn processes(&self, placed: &[Placed]) -> Result<Vec<(ProcessInfo, String)>> {
        let mut devices: Vec<(nvml_wrapper::Device, &str)> = Vec::new();
        for m in placed.iter().filter(|p| p.mig) {
            let device = self
                .nvml
                .device_by_uuid(m.device.uuid.as_str())
                .map_err(nvml_error("a MIG device"))?;
            devices.push((device, &m.device.uuid));
        }
        if devices.is_empty() {
            devices.push((self.device()?, &self.uuid));
        }
        let mut out: Vec<(ProcessInfo, String)> = Vec::new();
        for (device, uuid) in devices {
            for p in device_processes(&device)? {
                if !out.iter().any(|(q, _)| q.pid == p.pid) {
                    out.push((p, uuid.to_string()));
                }
            }
        }
        Ok(out)
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

/// A raw NVML getter of one ID of a MIG device handle (GPU or compute instance ID), for which
/// nvml-wrapper has no safe wrapper.
type RawIdFn = unsafe extern "C" fn(
    nvml_wrapper_sys::bindings::nvmlDevice_t,
    *mut std::os::raw::c_uint,
) -> nvml_wrapper_sys::bindings::nvmlReturn_t;

fn raw_id<E>(f: &std::result::Result<RawIdFn, E>, mig: &nvml_wrapper::Device) -> Option<u32> {
    let f = f.as_ref().ok()?;
    let mut v: std::os::raw::c_uint = 0;
    // SAFETY: a live MIG device handle, and a pointer to a live c_uint for the result.
    let rc = unsafe { f(mig.handle(), &mut v) };
    (rc == 0).then_some(v)
}

/// The processes with a CUDA context on `device`: plain ones, and MPS clients, which NVML lists
/// apart (nvmlDeviceGetMPSComputeRunningProcesses_v3).
fn device_processes(device: &nvml_wrapper::Device) -> Result<Vec<ProcessInfo>> {
    let mut procs = device
        .running_compute_processes()
        .map_err(nvml_error("the processes"))?;
    match device.mps_running_compute_processes() {
        Ok(mps) => procs.extend(mps),
        // Before Volta, or a driver without it: no MPS clients to list apart.
        Err(NvmlError::NotSupported | NvmlError::FailedToLoadSymbol(_)) => {}
        Err(e) => return Err(nvml_error("the MPS processes")(e)),
    }
    Ok(procs)
}

/// Polls `done` until it holds or [`MPS_WAIT`] passes.
fn wait_until(done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + MPS_WAIT;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
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

    fn foreign_processes(&self) -> Result<Vec<ForeignProcess>> {
        let placed = self.placed()?;
        Ok(self
            .processes(&placed)?
            .into_iter()
            .map(|(p, _)| ForeignProcess {
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
        result
    }

    fn devices(&self) -> Vec<Device> {
        self.placed()
            .unwrap_or_default()
            .into_iter()
            .map(|p| Device {
                mps_pipe_dir: self.mps_dir(&p.device.uuid),
                ..p.device
            })
            .collect()
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
            group: None,
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
            rows.push(SampleRow {
                scope: Scope::Instance,
                id: p.device.uuid.clone(),
                label: p.device.pool.clone(),
                used_gib: mem.used as f64 / GIB,
                capacity_gib: Some(mem.total as f64 / GIB),
                utilization_pct: None,
                group: None,
            });
        }
        for (proc, device) in self.processes(&placed)? {
            if let UsedGpuMemory::Used(bytes) = proc.used_gpu_memory {
                rows.push(SampleRow::process(proc.pid, device, bytes as f64 / GIB));
            }
        }
        Ok(rows)
    }
}
