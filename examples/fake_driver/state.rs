//! The stand-in NVIDIA driver's state, shared by its programs: the NVML library (`fake_nvml`,
//! which NVIDIA's own `nvidia-smi` loads), the node's setup (`stand_in_gpu`) and a CUDA job
//! (`fake_cuda_job`).
//!
//! Together with NVIDIA's `nvidia-smi` and `nvidia-cuda-mps-control` they let the NVML backend
//! run end to end on a machine with no GPU: MIG changes go through the real nvidia-smi, which
//! makes them through this library's NVML calls, and come back through NVML's MIG device handles;
//! jobs hold "device memory" that NVML reports per process with its GPU and compute instance
//! IDs. It follows the driver's documented behaviour (docs/nvidia-smi.md, docs/mig.md), not its
//! timing, and numbers instances its own way, so migbench passes only if it reads IDs back.
//!
//! `$MIGBENCH_FAKE_GPU` is a directory: `node.json` holds the node's GPUs (each with its MIG
//! profile table, as a driver knows its GPU) and their MIG configuration, `procs/PID.json` what
//! each live process holds, `lock` serializes changes between processes.

#![allow(dead_code)] // each program uses part of it

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub const MIB: u64 = 1024 * 1024;

/// Memory the driver keeps on a GPU with no process (NVML's `used` never reads 0).
pub const RESERVED_MIB: u64 = 512;

/// The node: its driver and GPUs, in NVML's index order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FakeNode {
    /// The driver's version, which NVIDIA's nvidia-smi compares with its own.
    pub driver: String,
    /// As NVML gives it: 12020 is CUDA 12.2.
    pub cuda: i32,
    pub gpus: Vec<FakeGpu>,
    /// Where CUDA looks for an MPS daemon when `CUDA_MPS_PIPE_DIRECTORY` is unset: the
    /// driver's /tmp/nvidia-mps, or a test's own directory.
    #[serde(default)]
    pub default_mps_pipe: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FakeGpu {
    /// The NVML device name, as the driver reports it.
    pub name: String,
    pub uuid: String,
    pub memory_mib: u64,
    /// The PCI device ID (0x2330 for an H100 SXM5) and bus ID, as NVML's PCI info gives them.
    pub pci_device_id: u32,
    pub bus_id: String,
    pub sm_count: u32,
    #[serde(default)]
    pub mig_current: bool,
    #[serde(default)]
    pub mig_pending: bool,
    /// Changing MIG mode needs a GPU reset (Ampere, or a VM): the change stays pending.
    #[serde(default)]
    pub mig_needs_reset: bool,
    /// NVML's compute mode: 0 DEFAULT, 2 PROHIBITED, 3 EXCLUSIVE_PROCESS (nvidia-smi -c).
    #[serde(default)]
    pub compute_mode: u32,
    /// Refuse every change as the driver refuses an ordinary user: "Insufficient Permissions".
    #[serde(default)]
    pub not_root: bool,
    /// The driver's GPU instance profiles (`nvidia-smi mig -lgip`); empty: no MIG support.
    #[serde(default)]
    pub profiles: Vec<DriverProfile>,
    #[serde(default)]
    pub gis: Vec<FakeGi>,
    /// Instances created so far: the next GPU instance ID and a part of fresh MIG UUIDs.
    #[serde(default)]
    pub created: u32,
    /// How long (ms) a compute instance stays "In use by another client" after its last
    /// process ended, as the driver keeps it while handles close (DCGM#95, #276).
    #[serde(default)]
    pub linger_ms: u64,
    /// CUDA clients cannot reach the MPS daemons of this GPU (a daemon of another user, a
    /// broken pipe directory): jobs run without MPS, silently, as CUDA does.
    #[serde(default)]
    pub mps_unreachable: bool,
    /// Added to every PID NVML reports: a process seen from another PID namespace (NVML in a
    /// container reports the host's PIDs, nvidia-docker#1483).
    #[serde(default)]
    pub pid_offset: u32,
    /// How many of the newest compute instances NVML's MIG device handles do not show yet: a
    /// view that lags behind instances another process made (libcudacxx#224).
    #[serde(default)]
    pub nvml_lag: u32,
    /// The board's power and its idle draw (the catalog's), in watts: the stand-in draws idle
    /// plus the share of SMs with a process on them times the rest.
    #[serde(default)]
    pub board_w: f64,
    #[serde(default)]
    pub idle_w: f64,
    /// The total-energy counter (mJ) and when it was last brought up to date (ms since the
    /// epoch): it advances whenever a process comes, goes or changes, and at every energy
    /// reading, at the power until then (a process killed unannounced counts until the next).
    #[serde(default)]
    pub energy_mj: f64,
    #[serde(default)]
    pub energy_at_ms: u64,
    /// NVML's GPU Performance Monitoring (Hopper and later): the SM-activity counters it reads,
    /// kept with the energy counter, in ms × the share of SMs busy: the whole GPU's, and each
    /// GPU instance's by ID (over its own SMs).
    #[serde(default)]
    pub gpm: bool,
    #[serde(default)]
    pub busy_sm_ms: f64,
    #[serde(default)]
    pub gi_busy_sm_ms: BTreeMap<u32, f64>,
}

/// A GPU instance profile as the driver knows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DriverProfile {
    /// NVML's profile enum (NVML_GPU_INSTANCE_PROFILE_*), the index callers ask by.
    pub nvml_profile: u32,
    /// The profile ID nvidia-smi prints and `-cgi` takes.
    pub id: u32,
    pub name: String,
    pub instances: u32,
    pub memory_mib: u64,
    pub sm: u32,
    pub compute_slices: u32,
    pub ce: u32,
    pub dec: u32,
    pub enc: u32,
    pub jpg: u32,
    pub ofa: u32,
    /// Placement starts, each `size` memory slices long.
    pub placements: Vec<u32>,
    pub size: u32,
    pub compute_profiles: Vec<DriverCiProfile>,
}

/// A compute instance profile of a GPU instance profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DriverCiProfile {
    /// NVML's compute instance profile enum, which is also the ID `-cci` takes.
    pub id: u32,
    pub name: String,
    pub compute_slices: u32,
    pub instances: u32,
    pub sm: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FakeGi {
    pub id: u32,
    pub profile_id: u32,
    pub start: u32,
    pub size: u32,
    pub cis: Vec<FakeCi>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FakeCi {
    pub id: u32,
    pub profile_id: u32,
    /// Its first compute slice in the GPU instance.
    pub start: u32,
    pub slices: u32,
    pub uuid: String,
    /// When it was made, in the GPU's count of instances created.
    #[serde(default)]
    pub serial: u32,
}

/// What a process holds on a GPU; its GPU and compute instance when MIG is on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FakeProc {
    pub pid: u32,
    /// The GPU's index on the node.
    #[serde(default)]
    pub gpu: u32,
    pub used_mib: u64,
    pub gi: Option<u32>,
    pub ci: Option<u32>,
    /// A client of an MPS server: NVML lists it among the MPS processes.
    #[serde(default)]
    pub mps: bool,
    /// When it ended (ms since the epoch), once it has: its instance may stay busy a while.
    #[serde(default)]
    pub ended_ms: Option<u64>,
}

/// Where a CUDA device UUID points on one GPU.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    Gpu,
    Mig { gi: u32, ci: u32 },
}

pub fn dir() -> Option<PathBuf> {
    std::env::var_os("MIGBENCH_FAKE_GPU").map(PathBuf::from)
}

/// The node, or None when there is no driver (no state directory or no node.json).
pub fn load() -> Option<FakeNode> {
    let text = std::fs::read_to_string(dir()?.join("node.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// Writes the node atomically: readers never see half a file.
pub fn save(node: &FakeNode) -> std::io::Result<()> {
    let dir = dir().ok_or_else(|| std::io::Error::other("MIGBENCH_FAKE_GPU is not set"))?;
    let tmp = dir.join(format!("node.json.{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_string_pretty(node)?)?;
    std::fs::rename(tmp, dir.join("node.json"))
}

/// Runs `change` on the node under the driver's lock, saving it when `change` succeeds: two
/// processes changing MIG at once (nvidia-smi and a restore, say) never lose each other's work.
pub fn change<T, E>(change: impl FnOnce(&mut FakeNode) -> Result<T, E>) -> Option<Result<T, E>> {
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir()?.join("lock"))
        .ok()?;
    // SAFETY: flock(2) on a file this function holds open; released when it is closed.
    unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
    let mut node = load()?;
    let result = change(&mut node);
    if result.is_ok() {
        save(&node).ok()?;
    }
    Some(result)
}

fn procs_dir() -> Option<PathBuf> {
    Some(dir()?.join("procs"))
}

/// Every process file, of live processes and of ended ones that may still hold an instance.
fn proc_files() -> Vec<FakeProc> {
    let Some(Ok(entries)) = procs_dir().map(std::fs::read_dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        // Not the `.tmp` files being written, or a process would count twice.
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| serde_json::from_str(&std::fs::read_to_string(e.path()).ok()?).ok())
        .collect()
}

/// Processes alive now that hold GPU memory.
pub fn procs() -> Vec<FakeProc> {
    let mut procs: Vec<FakeProc> = proc_files()
        .into_iter()
        .filter(|p| p.ended_ms.is_none() && alive(p.pid))
        .collect();
    procs.sort_by_key(|p| p.pid);
    procs
}

/// Whether `pid` runs (and is not a zombie waiting to be reaped). migbench's own `procfs` says
/// the same, but linking migbench into the stand-in libnvidia-ml makes it a 400 MB library.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

/// Brings every GPU's energy counter up to now, before a process comes, goes or changes: the
/// power since the last update is the power of the processes as they were.
fn advance_energy() {
    let procs = procs();
    let _ = change(|node: &mut FakeNode| {
        for (index, gpu) in node.gpus.iter_mut().enumerate() {
            gpu.advance_energy(index as u32, &procs);
        }
        Ok::<(), ()>(())
    });
}

pub fn set_proc(p: &FakeProc) {
    advance_energy();
    let dir = procs_dir().expect("MIGBENCH_FAKE_GPU is set");
    std::fs::create_dir_all(&dir).unwrap();
    let tmp = dir.join(format!("{}.tmp", p.pid));
    std::fs::write(&tmp, serde_json::to_string(p).unwrap()).unwrap();
    std::fs::rename(tmp, dir.join(format!("{}.json", p.pid))).unwrap();
}

pub fn remove_proc(pid: u32) {
    advance_energy();
    if let Some(dir) = procs_dir() {
        let _ = std::fs::remove_file(dir.join(format!("{pid}.json")));
    }
}

/// Marks process `p` ended now: it holds nothing, but its instance may linger in use.
pub fn end_proc(p: &FakeProc) {
    set_proc(&FakeProc {
        used_mib: 0,
        ended_ms: Some(now_ms()),
        ..p.clone()
    });
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Whether compute instance `ci` of GPU instance `gi` on GPU `index` is still held: a process
/// on it runs, or ended less than `linger_ms` ago.
pub fn instance_busy(index: u32, gi: u32, ci: Option<u32>, linger_ms: u64) -> bool {
    let now = now_ms();
    proc_files()
        .into_iter()
        .filter(|p| p.gpu == index && p.gi == Some(gi) && ci.is_none_or(|c| p.ci == Some(c)))
        .any(|p| match p.ended_ms {
            Some(ended) => now < ended + linger_ms,
            None => alive(p.pid),
        })
}

impl FakeGpu {
    /// The SMs with a process on them now: per GPU instance in MIG mode (its compute instances
    /// that have one), else the whole GPU's under key `None`.
    fn busy_sm(&self, index: u32, procs: &[FakeProc]) -> BTreeMap<Option<u32>, u32> {
        let mine = procs.iter().filter(|p| p.gpu == index);
        let mut out = BTreeMap::new();
        if self.mig_current {
            let mut busy: Vec<(u32, u32)> = mine.filter_map(|p| Some((p.gi?, p.ci?))).collect();
            busy.sort_unstable();
            busy.dedup();
            for (gi_id, ci_id) in busy {
                let sm = self.gi(gi_id).and_then(|gi| {
                    let ci = gi.cis.iter().find(|c| c.id == ci_id)?;
                    let profile = self.profile(gi.profile_id)?;
                    profile
                        .compute_profiles
                        .iter()
                        .find(|c| c.id == ci.profile_id)
                        .map(|c| c.sm)
                });
                *out.entry(Some(gi_id)).or_default() += sm.unwrap_or(0);
            }
        } else if mine.count() > 0 {
            out.insert(None, self.sm_count);
        }
        out
    }

    /// What GPU `index` draws now, in watts: idle, plus the rest of the board's power in
    /// proportion to the SMs of the devices that have a process.
    pub fn power_w(&self, index: u32, procs: &[FakeProc]) -> f64 {
        let busy_sm: u32 = self.busy_sm(index, procs).values().sum();
        let share = (f64::from(busy_sm) / f64::from(self.sm_count.max(1))).min(1.0);
        self.idle_w + (self.board_w - self.idle_w) * share
    }

    /// Brings the energy counter and the SM-activity counters up to now; returns the power now.
    pub fn advance_energy(&mut self, index: u32, procs: &[FakeProc]) -> f64 {
        let power = self.power_w(index, procs);
        let now = now_ms();
        if self.energy_at_ms > 0 && now > self.energy_at_ms {
            let ms = (now - self.energy_at_ms) as f64;
            self.energy_mj += power * ms;
            // GPM's SM activity: busy SMs over each instance's (or the GPU's), times the time.
            let busy = self.busy_sm(index, procs);
            let total: u32 = busy.values().sum();
            self.busy_sm_ms += ms * f64::from(total) / f64::from(self.sm_count.max(1));
            for (gi, sm) in busy {
                let Some(gi) = gi else { continue };
                let gi_sm = self
                    .gi(gi)
                    .and_then(|g| self.profile(g.profile_id))
                    .map_or(0, |p| p.sm);
                if gi_sm > 0 {
                    *self.gi_busy_sm_ms.entry(gi).or_default() +=
                        ms * (f64::from(sm) / f64::from(gi_sm)).min(1.0);
                }
            }
        }
        self.energy_at_ms = now;
        power
    }
}

impl FakeNode {
    /// The GPU and what on it a CUDA device UUID names.
    pub fn target(&self, uuid: &str) -> Option<(u32, Target)> {
        self.gpus.iter().enumerate().find_map(|(i, g)| {
            let t = if uuid == g.uuid {
                Some(Target::Gpu)
            } else {
                g.mig_devices()
                    .into_iter()
                    .find(|(_, c)| c.uuid == uuid)
                    .map(|(g, c)| Target::Mig { gi: g.id, ci: c.id })
            };
            t.map(|t| (i as u32, t))
        })
    }
}

impl FakeGpu {
    /// The MIG devices (one per compute instance), in the order NVML indexes them.
    pub fn mig_devices(&self) -> Vec<(&FakeGi, &FakeCi)> {
        let mut gis: Vec<&FakeGi> = self.gis.iter().collect();
        gis.sort_by_key(|g| g.id);
        gis.into_iter()
            .flat_map(|g| {
                let mut cis: Vec<&FakeCi> = g.cis.iter().collect();
                cis.sort_by_key(|c| c.id);
                cis.into_iter().map(move |c| (g, c))
            })
            .collect()
    }

    /// The MIG devices NVML's handles show: all but the `nvml_lag` newest.
    pub fn nvml_mig_devices(&self) -> Vec<(&FakeGi, &FakeCi)> {
        let mut serials: Vec<u32> = self.mig_devices().iter().map(|(_, c)| c.serial).collect();
        serials.sort_unstable();
        let hidden = &serials[serials.len().saturating_sub(self.nvml_lag as usize)..];
        self.mig_devices()
            .into_iter()
            .filter(|(_, c)| !hidden.contains(&c.serial))
            .collect()
    }

    pub fn gi(&self, id: u32) -> Option<&FakeGi> {
        self.gis.iter().find(|g| g.id == id)
    }

    pub fn profile(&self, id: u32) -> Option<&DriverProfile> {
        self.profiles.iter().find(|p| p.id == id)
    }

    /// Memory (MiB) of the pool `target` allocates from: the GPU, or its GPU instance.
    pub fn capacity_mib(&self, target: Target) -> u64 {
        match target {
            Target::Gpu => self.memory_mib,
            Target::Mig { gi, .. } => self
                .gi(gi)
                .and_then(|g| self.profile(g.profile_id))
                .map_or(0, |p| p.memory_mib),
        }
    }

    /// Memory (MiB) in use in that pool of GPU `index`, leaving out process `except`.
    pub fn used_mib(&self, index: u32, target: Target, except: Option<u32>) -> u64 {
        let pool = procs()
            .into_iter()
            .filter(|p| p.gpu == index && Some(p.pid) != except);
        match target {
            Target::Gpu => RESERVED_MIB + pool.map(|p| p.used_mib).sum::<u64>(),
            Target::Mig { gi, .. } => pool.filter(|p| p.gi == Some(gi)).map(|p| p.used_mib).sum(),
        }
    }

    /// The memory slices the GPU instances hold, as a mask.
    pub fn taken_slices(&self) -> u64 {
        self.gis
            .iter()
            .map(|g| mask(g.start, g.size))
            .fold(0, |a, b| a | b)
    }
}

/// The memory slices from `start`, `size` of them, as a mask.
pub fn mask(start: u32, size: u32) -> u64 {
    ((1u64 << size) - 1) << start
}

/// NVML opened (nvmlInit) and not yet shut down, by process: `nvml-holders/PID` holds the count.
fn holder_file(pid: u32) -> Option<PathBuf> {
    Some(dir()?.join("nvml-holders").join(pid.to_string()))
}

/// Counts one more nvmlInit (`by` = 1) or nvmlShutdown (`by` = -1) of this process.
pub fn hold_nvml(by: i64) {
    let Some(file) = holder_file(std::process::id()) else {
        return;
    };
    let count: i64 = std::fs::read_to_string(&file)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    let count = (count + by).max(0);
    if count == 0 {
        let _ = std::fs::remove_file(&file);
    } else if let Some(parent) = file.parent() {
        let _ = std::fs::create_dir_all(parent);
        let _ = std::fs::write(&file, count.to_string());
    }
}

/// Other live processes that hold NVML open.
pub fn other_nvml_holders() -> Vec<u32> {
    let Some(Ok(entries)) = dir().map(|d| std::fs::read_dir(d.join("nvml-holders"))) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != std::process::id() && alive(*pid))
        .collect()
}
