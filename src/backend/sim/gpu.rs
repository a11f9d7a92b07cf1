//! The simulated GPU's state: MIG instances, MPS daemons, memory pools and compute sharing.
//!
//! It enforces the hardware's rules (catalog placements; no MIG instance while MPS runs; MIG
//! mode changes only with no processes) and the physics jobs feel:
//! - **memory**: a pool is the whole GPU, or one GPU instance shared by its compute instances;
//!   an allocation beyond the pool (or beyond an MPS client's pinned limit) fails;
//! - **compute**: jobs on one device share it, each mode by its own model ([`super::sharing`]):
//!   a MIG slice's SMs (`alpha`), MPS clients sharing all SMs (`mps_exponent`), time-slicing
//!   switching whole contexts (`timeslice_efficiency`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::sharing::{Context, Sharing};
use crate::backend::{Change, Device, ForeignProcess, GpuState};
use crate::catalog::{CiProfile, GiProfile, GpuModel};
use crate::error::{Error, Result};
use crate::layout::placed_name;
use crate::workload::SimProfile;

/// One job as the simulator tracks it.
#[derive(Debug, Clone)]
pub struct SimJob {
    pub device: String,
    /// Work in seconds at full speed on the reference GPU.
    pub work_s: f64,
    pub sharing: Sharing,
    /// SMs of the GPU the workload's timing was measured on.
    pub reference_sm: u32,
    /// Work done so far, in the same unit as `work_s`.
    pub done_s: f64,
    pub memory_gib: f64,
    pub pid: Option<u32>,
    /// Connected and not yet finished: it uses compute.
    pub active: bool,
    /// Work seconds per simulated second while active.
    pub rate: f64,
    /// What it draws at full SMs, as a share of the board's dynamic power (`sim.power_share`).
    pub power_share: f64,
}

#[derive(Debug, Clone)]
pub struct SimGi {
    pub profile: &'static GiProfile,
    pub start: u8,
    pub cis: Vec<SimCi>,
}

impl SimGi {
    /// The GI's memory pool, named by its profile and placement (`3g.40gb@4`).
    pub fn pool(&self) -> String {
        placed_name(&self.profile.name, self.start)
    }
}

#[derive(Debug, Clone)]
pub struct SimCi {
    pub index: usize,
    pub profile: &'static CiProfile,
    pub uuid: String,
}

/// An MPS control daemon on the simulated GPU; saved as it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MpsDaemon {
    pub device: String,
    pub pipe_dir: std::path::PathBuf,
    pub active_thread_percentage: Option<u8>,
    pub pinned_memory_limit_gib: Option<f64>,
}

/// Why an allocation failed, in the terms PyTorch reports.
#[derive(Debug, Clone, PartialEq)]
pub struct OutOfMemory {
    pub requested_gib: f64,
    pub capacity_gib: f64,
    pub free_gib: f64,
    pub in_use_gib: f64,
}

#[derive(Debug)]
pub struct SimGpu {
    pub model: &'static GpuModel,
    pub uuid: String,
    pub mig_enabled: bool,
    pub gis: Vec<SimGi>,
    pub mps: Vec<MpsDaemon>,
    pub jobs: BTreeMap<u64, SimJob>,
    /// Processes some other program runs on this GPU (set up in a saved state, for tests).
    pub foreign: Vec<ForeignProcess>,
    /// Simulated time of the last progress update.
    last_update: f64,
    /// Energy drawn since the simulator started, in joules: NVML's total-energy counter.
    energy_j: f64,
    /// [`SimGpu::busy_power_share`] as of the last change of jobs or rates: the power is read
    /// at every event, and changes only with them.
    busy_share: f64,
}

/// The part of a simulated GPU that outlives a process: its configuration, as saved in a state
/// file, so that a crashed run leaves it changed and `migbench restore` can put it back.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedGpu {
    pub model: String,
    pub uuid: String,
    #[serde(default)]
    pub mig_enabled: bool,
    #[serde(default)]
    pub instances: Vec<SavedGi>,
    #[serde(default)]
    pub mps: Vec<MpsDaemon>,
    #[serde(default)]
    pub foreign: Vec<ForeignProcess>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedGi {
    pub profile_id: u32,
    pub start: u8,
    pub compute: Vec<SavedCi>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedCi {
    pub index: usize,
    pub profile_id: u32,
}

/// A pseudo UUID in the GPU- / MIG- format, stable for a given GPU and instance.
fn sim_uuid(prefix: &str, a: u32, b: u32) -> String {
    format!("{prefix}-5133d000-0000-4000-8000-{a:06x}{b:06x}")
}

impl SimGpu {
    pub fn new(model: &'static GpuModel) -> SimGpu {
        SimGpu::with_uuid(model, sim_uuid("GPU", 0, 0))
    }

    pub fn with_uuid(model: &'static GpuModel, uuid: String) -> SimGpu {
        SimGpu {
            model,
            uuid,
            mig_enabled: false,
            gis: Vec::new(),
            mps: Vec::new(),
            jobs: BTreeMap::new(),
            foreign: Vec::new(),
            last_update: 0.0,
            busy_share: 0.0,
            energy_j: 0.0,
        }
    }

    /// A fresh GPU with a UUID of its own, so that simulated runs in parallel never share one.
    pub fn fresh(model: &'static GpuModel) -> SimGpu {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        SimGpu::with_uuid(model, sim_uuid("GPU", std::process::id(), n))
    }

    /// Rebuilds a saved GPU by making its changes again, under the same rules.
    pub fn restore(model: &'static GpuModel, saved: &SavedGpu) -> Result<SimGpu> {
        let mut gpu = SimGpu::with_uuid(model, saved.uuid.clone());
        gpu.foreign = saved.foreign.clone();
        gpu.mig_enabled = saved.mig_enabled;
        for gi in &saved.instances {
            gpu.create_gi(gi.profile_id, gi.start)?;
            for ci in &gi.compute {
                gpu.create_ci(gi.start, ci.index, ci.profile_id)?;
            }
        }
        for d in &saved.mps {
            gpu.start_mps(d.clone())?;
        }
        Ok(gpu)
    }

    pub fn save(&self) -> SavedGpu {
        SavedGpu {
            model: self.model.key.clone(),
            uuid: self.uuid.clone(),
            mig_enabled: self.mig_enabled,
            instances: self
                .gis
                .iter()
                .map(|gi| SavedGi {
                    profile_id: gi.profile.id,
                    start: gi.start,
                    compute: gi
                        .cis
                        .iter()
                        .map(|ci| SavedCi {
                            index: ci.index,
                            profile_id: ci.profile.id,
                        })
                        .collect(),
                })
                .collect(),
            mps: self.mps.clone(),
            foreign: self.foreign.clone(),
        }
    }

    /// MIG mode, instances and MPS daemons now.
    pub fn state(&self) -> GpuState {
        let mut gis: Vec<&SimGi> = self.gis.iter().collect();
        gis.sort_by_key(|g| g.start);
        GpuState {
            mig_enabled: self.mig_enabled,
            instances: gis.iter().map(|g| g.pool()).collect(),
            mps: self.mps.iter().map(|d| d.device.clone()).collect(),
        }
    }

    /// Whether `change` is in effect (see [`crate::backend::Backend::in_effect`]).
    pub fn in_effect(&self, change: &Change) -> bool {
        let gi = |start: u8| self.gis.iter().find(|g| g.start == start);
        let ci = |start: u8, index: usize| {
            gi(start).is_some_and(|g| g.cis.iter().any(|c| c.index == index))
        };
        let mps = |device: &str| self.mps.iter().any(|d| d.device == device);
        match change {
            Change::SetMigMode { enabled } => self.mig_enabled == *enabled,
            Change::CreateGpuInstance { start, .. } => gi(*start).is_some(),
            Change::DestroyGpuInstance { start, .. } => gi(*start).is_none(),
            Change::CreateComputeInstance {
                gi_start, index, ..
            } => ci(*gi_start, *index),
            Change::DestroyComputeInstance {
                gi_start, index, ..
            } => !ci(*gi_start, *index),
            Change::StartMps { device, .. } => mps(device),
            Change::StopMps { device, .. } => !mps(device),
        }
    }

    fn has_processes(&self) -> bool {
        self.jobs.values().any(|j| j.pid.is_some())
    }

    pub fn set_mig_mode(&mut self, enabled: bool) -> Result<()> {
        if self.has_processes() {
            return Err(Error::Harness(
                "simulated GPU: MIG mode can only change while no process uses the GPU".into(),
            ));
        }
        if !enabled && !self.gis.is_empty() {
            return Err(Error::Harness(
                "simulated GPU: destroy every GPU instance before disabling MIG mode".into(),
            ));
        }
        self.mig_enabled = enabled;
        Ok(())
    }

    pub fn create_gi(&mut self, profile_id: u32, start: u8) -> Result<()> {
        if !self.mig_enabled {
            return Err(Error::Harness("simulated GPU: MIG mode is disabled".into()));
        }
        if !self.mps.is_empty() {
            return Err(Error::Harness(
                "simulated GPU: MIG instances cannot be created while an MPS daemon runs".into(),
            ));
        }
        let profile = self.model.profile(&profile_id.to_string())?;
        let used = self
            .gis
            .iter()
            .fold(0u16, |m, g| m | g.profile.mask_at(g.start));
        if !profile.placements.contains(&start) || used & profile.mask_at(start) != 0 {
            return Err(Error::Harness(format!(
                "simulated GPU: cannot create {} at slice {start}: Insufficient Resources",
                profile.name
            )));
        }
        self.gis.push(SimGi {
            profile,
            start,
            cis: Vec::new(),
        });
        Ok(())
    }

    pub fn destroy_gi(&mut self, start: u8) -> Result<()> {
        let i = self.gi_index(start)?;
        if !self.gis[i].cis.is_empty() {
            return Err(Error::Harness(format!(
                "simulated GPU: GPU instance at slice {start} still has compute instances"
            )));
        }
        self.gis.remove(i);
        Ok(())
    }

    pub fn create_ci(&mut self, gi_start: u8, index: usize, profile_id: u32) -> Result<()> {
        let i = self.gi_index(gi_start)?;
        let gi = &mut self.gis[i];
        let ci = gi
            .profile
            .compute_profiles
            .iter()
            .find(|c| c.id == profile_id)
            .ok_or_else(|| {
                Error::Harness(format!(
                    "simulated GPU: no CI profile {profile_id} in {}",
                    gi.profile.name
                ))
            })?;
        let used: u8 = gi.cis.iter().map(|c| c.profile.compute_slices).sum();
        if used + ci.compute_slices > gi.profile.compute_slices {
            return Err(Error::Harness(
                "simulated GPU: Insufficient Resources for the compute instance".into(),
            ));
        }
        gi.cis.push(SimCi {
            index,
            profile: ci,
            uuid: sim_uuid("MIG", u32::from(gi_start) + 1, index as u32 + 1),
        });
        Ok(())
    }

    pub fn destroy_ci(&mut self, gi_start: u8, index: usize) -> Result<()> {
        let i = self.gi_index(gi_start)?;
        let uuid = self.gis[i]
            .cis
            .iter()
            .find(|c| c.index == index)
            .map(|c| c.uuid.clone())
            .ok_or_else(|| {
                Error::Harness(format!(
                    "simulated GPU: no compute instance {index} at slice {gi_start}"
                ))
            })?;
        if self
            .jobs
            .values()
            .any(|j| j.device == uuid && j.pid.is_some())
        {
            return Err(Error::Harness(
                "simulated GPU: a process still uses the compute instance".into(),
            ));
        }
        self.gis[i].cis.retain(|c| c.index != index);
        Ok(())
    }

    fn gi_index(&self, start: u8) -> Result<usize> {
        self.gis
            .iter()
            .position(|g| g.start == start)
            .ok_or_else(|| {
                Error::Harness(format!("simulated GPU: no GPU instance at slice {start}"))
            })
    }

    pub fn start_mps(&mut self, daemon: MpsDaemon) -> Result<()> {
        if self.mps.iter().any(|d| d.device == daemon.device) {
            return Err(Error::Harness(format!(
                "simulated GPU: an MPS daemon already serves {}",
                daemon.device
            )));
        }
        self.mps.push(daemon);
        Ok(())
    }

    pub fn stop_mps(&mut self, device: &str) -> Result<()> {
        let before = self.mps.len();
        self.mps.retain(|d| d.device != device);
        if self.mps.len() == before {
            return Err(Error::Harness(format!(
                "simulated GPU: no MPS daemon serves {device}"
            )));
        }
        Ok(())
    }

    /// Makes one configuration change, checking the hardware's rules.
    pub fn apply(&mut self, change: &Change) -> Result<()> {
        match change {
            Change::SetMigMode { enabled } => self.set_mig_mode(*enabled),
            Change::CreateGpuInstance {
                profile_id, start, ..
            } => self.create_gi(*profile_id, *start),
            Change::DestroyGpuInstance { start, .. } => self.destroy_gi(*start),
            Change::CreateComputeInstance {
                gi_start,
                index,
                profile_id,
                ..
            } => self.create_ci(*gi_start, *index, *profile_id),
            Change::DestroyComputeInstance {
                gi_start, index, ..
            } => self.destroy_ci(*gi_start, *index),
            Change::StartMps {
                device,
                pipe_dir,
                active_thread_percentage,
                pinned_memory_limit_gib,
                ..
            } => {
                self.start_mps(MpsDaemon {
                    device: device.clone(),
                    pipe_dir: pipe_dir.clone(),
                    active_thread_percentage: *active_thread_percentage,
                    pinned_memory_limit_gib: *pinned_memory_limit_gib,
                })?;
                self.recompute_rates();
                Ok(())
            }
            Change::StopMps { device, .. } => {
                self.stop_mps(device)?;
                self.recompute_rates();
                Ok(())
            }
        }
    }

    /// Where jobs can run: the whole GPU, or each compute instance in slice order.
    pub fn devices(&self) -> Vec<Device> {
        let mps_dir = |uuid: &str| {
            self.mps
                .iter()
                .find(|d| d.device == uuid)
                .map(|d| d.pipe_dir.clone())
        };
        if !self.mig_enabled {
            return vec![Device::whole_gpu(
                self.model,
                &self.uuid,
                mps_dir(&self.uuid),
            )];
        }
        let mut gis: Vec<&SimGi> = self.gis.iter().collect();
        gis.sort_by_key(|g| g.start);
        let mut devices = Vec::new();
        for gi in gis {
            let split = gi.cis.len() > 1
                || gi
                    .cis
                    .iter()
                    .any(|c| c.profile.compute_slices != gi.profile.compute_slices);
            for ci in &gi.cis {
                let (pool, pool_gib, sm) =
                    self.device_resources(&ci.uuid).expect("CI of a live GI");
                let label = if split {
                    format!("{pool}/{}#{}", ci.profile.name, ci.index)
                } else {
                    pool.clone()
                };
                devices.push(Device {
                    uuid: ci.uuid.clone(),
                    label,
                    profile: Some(gi.profile.name.clone()),
                    pool,
                    pool_gib,
                    sm,
                    mps_pipe_dir: mps_dir(&ci.uuid),
                });
            }
        }
        devices
    }

    /// Memory pool and SMs of a device UUID: `(pool name, pool GiB, SMs)`.
    pub fn device_resources(&self, uuid: &str) -> Option<(String, f64, u32)> {
        if uuid == self.uuid && !self.mig_enabled {
            return Some(("gpu".into(), self.model.memory_gib(), self.model.sm_count));
        }
        self.gis.iter().find_map(|gi| {
            gi.cis.iter().find(|c| c.uuid == uuid).map(|ci| {
                (
                    gi.pool(),
                    gi.profile.memory_gib,
                    gi.profile.ci_sm(ci.profile),
                )
            })
        })
    }

    /// The memory slices of a device's GPU instance ÷ the GPU's (1 for the whole GPU).
    fn memory_share(&self, uuid: &str) -> f64 {
        self.gis
            .iter()
            .find(|gi| gi.cis.iter().any(|c| c.uuid == uuid))
            .map_or(1.0, |gi| {
                f64::from(gi.profile.memory_slices) / f64::from(self.model.memory_slices)
            })
    }

    fn pool_of(&self, device: &str) -> Option<(String, f64)> {
        self.device_resources(device).map(|(p, g, _)| (p, g))
    }

    /// Memory used in a pool by every job but `except`.
    pub fn pool_used(&self, pool: &str, except: Option<u64>) -> f64 {
        self.jobs
            .iter()
            .filter(|(id, j)| {
                Some(**id) != except && self.pool_of(&j.device).is_some_and(|(p, _)| p == pool)
            })
            .map(|(_, j)| j.memory_gib)
            .sum()
    }

    /// Sets job `id`'s memory to `gib`, or says why the pool cannot hold it.
    pub fn allocate(&mut self, id: u64, gib: f64) -> std::result::Result<(), OutOfMemory> {
        let job = &self.jobs[&id];
        let (pool, capacity) = self.pool_of(&job.device).unwrap_or(("gone".into(), 0.0));
        let others = self.pool_used(&pool, Some(id));
        let limit = self
            .mps
            .iter()
            .find(|d| d.device == job.device)
            .and_then(|d| d.pinned_memory_limit_gib)
            .unwrap_or(f64::INFINITY);
        let fits_pool = others + gib <= capacity + 1e-9;
        if gib <= job.memory_gib || (fits_pool && gib <= limit + 1e-9) {
            self.jobs.get_mut(&id).expect("job exists").memory_gib = gib;
            return Ok(());
        }
        let capacity = capacity.min(limit);
        Err(OutOfMemory {
            requested_gib: gib - job.memory_gib,
            capacity_gib: capacity,
            free_gib: (capacity - others - job.memory_gib).max(0.0),
            in_use_gib: job.memory_gib,
        })
    }

    /// Brings every active job's progress, and the energy counter, up to simulated time `now`.
    /// Jobs come, go and change speed only at events, each after the advance to its instant,
    /// so the power since the last update is the power now.
    pub fn advance(&mut self, now: f64) {
        let dt = (now - self.last_update).max(0.0);
        // Several events share an instant: the power (a pass over the active jobs) only matters
        // when time has passed.
        if dt > 0.0 {
            self.energy_j += dt * self.power_w();
        }
        for job in self.jobs.values_mut().filter(|j| j.active) {
            job.done_s = (job.done_s + dt * job.rate).min(job.work_s);
        }
        self.last_update = now;
    }

    /// The share of the board's dynamic power drawn: every device with an active job, its SMs
    /// (under MPS capped by the clients' active-thread percentages), weighted by the mean
    /// `power_share` of its active jobs, over the whole GPU's SMs.
    pub fn busy_power_share(&self) -> f64 {
        // Per device: active jobs, and the sum of their power shares.
        let mut active: BTreeMap<&str, (usize, f64)> = BTreeMap::new();
        for job in self.jobs.values().filter(|j| j.active) {
            let entry = active.entry(job.device.as_str()).or_default();
            entry.0 += 1;
            entry.1 += job.power_share;
        }
        let busy: f64 = active
            .into_iter()
            .map(|(device, (jobs, shares))| {
                let sm = self.device_resources(device).map_or(0, |(_, _, sm)| sm);
                let cap = self
                    .mps
                    .iter()
                    .find(|d| d.device == device)
                    .and_then(|d| d.active_thread_percentage)
                    .map_or(1.0, |p| (f64::from(p) / 100.0 * jobs as f64).min(1.0));
                f64::from(sm) * cap * (shares / jobs as f64)
            })
            .sum();
        (busy / f64::from(self.model.sm_count.max(1))).clamp(0.0, 1.0)
    }

    /// The board's power now (docs/energy.md): idle, plus the dynamic part in proportion to the
    /// SMs at work and what the jobs on them draw.
    pub fn power_w(&self) -> f64 {
        let p = &self.model.power;
        p.idle_w + (p.board_w - p.idle_w) * self.busy_share
    }

    /// The energy counter, in joules since the simulator started.
    pub fn energy_j(&self) -> f64 {
        self.energy_j
    }

    /// When job `id` will have done `done_s` seconds of work at its present speed, seen at `now`;
    /// `None` if it makes no progress (idle, or gone).
    pub fn when_done(&self, id: u64, done_s: f64, now: f64) -> Option<f64> {
        let job = self.jobs.get(&id)?;
        let target = done_s.min(job.work_s);
        if job.done_s >= target {
            return Some(now);
        }
        (job.active && job.rate > 0.0).then(|| now + (target - job.done_s) / job.rate)
    }

    /// Job `id` has done at least `done_s` seconds of work (it was woken for that).
    pub fn reach(&mut self, id: u64, done_s: f64) {
        if let Some(job) = self.jobs.get_mut(&id) {
            job.done_s = job.done_s.max(done_s.min(job.work_s));
        }
    }

    /// Recomputes every active job's speed, and the power drawn, after jobs came or went.
    pub fn recompute_rates(&mut self) {
        let mut per_device: BTreeMap<String, usize> = BTreeMap::new();
        let mut per_pool: BTreeMap<String, usize> = BTreeMap::new();
        for job in self.jobs.values().filter(|j| j.active) {
            *per_device.entry(job.device.clone()).or_default() += 1;
            if let Some((pool, _)) = self.pool_of(&job.device) {
                *per_pool.entry(pool).or_default() += 1;
            }
        }
        let rates: Vec<(u64, f64)> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.active)
            .map(|(&id, j)| {
                let (pool, _, sm) = self
                    .device_resources(&j.device)
                    .unwrap_or_else(|| ("gone".into(), 0.0, 0));
                let mps = self
                    .mps
                    .iter()
                    .find(|d| d.device == j.device)
                    .map(|d| f64::from(d.active_thread_percentage.unwrap_or(100)) / 100.0);
                let jobs = per_device[&j.device];
                let ctx = Context {
                    device_sm: sm,
                    jobs,
                    mps,
                    memory_share: self.memory_share(&j.device),
                    gpu_sm: self.model.sm_count,
                    pool_jobs: per_pool.get(&pool).copied().unwrap_or(jobs),
                };
                let rate = j.sharing.speed(ctx, j.reference_sm);
                (id, rate)
            })
            .collect();
        for (id, rate) in rates {
            self.jobs.get_mut(&id).expect("job exists").rate = rate;
        }
        self.busy_share = self.busy_power_share();
    }

    pub fn register(&mut self, id: u64, job: SimJob) {
        self.jobs.insert(id, job);
    }

    /// A job of a workload with simulation profile `sim`, not yet started.
    pub fn new_job(device: String, work_s: f64, sim: &SimProfile, reference_sm: u32) -> SimJob {
        SimJob {
            device,
            work_s,
            sharing: Sharing::of(sim),
            reference_sm,
            power_share: sim.power_share.unwrap_or(1.0),
            done_s: 0.0,
            memory_gib: 0.0,
            pid: None,
            active: false,
            rate: 0.0,
        }
    }
}
