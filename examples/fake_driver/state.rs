//! The stand-in NVIDIA driver's state, shared by its four programs: the NVML library
//! (`fake_nvml`), `nvidia-smi` (`fake_nvidia_smi`), `nvidia-cuda-mps-control`
//! (`fake_mps_control`) and a CUDA job (`fake_cuda_job`).
//!
//! Together they let the NVML backend run end to end on a machine with no GPU, in tests: MIG
//! changes go through nvidia-smi's command language and come back through NVML's MIG device
//! handles, jobs hold "device memory" that NVML reports per process with its GPU and compute
//! instance IDs, and MPS daemons are real processes with private pipe directories. It follows the
//! driver's documented behaviour (docs/nvidia-smi.md, docs/mig.md), not its timing, and
//! it numbers instances its own way, so migbench passes only if it reads IDs back.
//!
//! `$MIGBENCH_FAKE_GPU` is a directory: `gpu.json` holds the GPU and its MIG configuration,
//! `procs/PID.json` what each live process holds.

#![allow(dead_code)] // each program uses part of it

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub const MIB: u64 = 1024 * 1024;

/// Memory the driver keeps on a GPU with no process (NVML's `used` never reads 0).
pub const RESERVED_MIB: u64 = 512;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FakeGpu {
    /// The NVML device name, which picks the catalog model (its MIG profiles and placements).
    pub name: String,
    pub uuid: String,
    pub memory_mib: u64,
    pub driver: String,
    /// As NVML gives it: 12040 is CUDA 12.4.
    pub cuda: i32,
    #[serde(default)]
    pub mig_current: bool,
    #[serde(default)]
    pub mig_pending: bool,
    /// Changing MIG mode needs a GPU reset here (as in a VM): the change stays pending.
    #[serde(default)]
    pub mig_needs_reset: bool,
    /// Refuse every change as the driver refuses an ordinary user: "Insufficient Permissions".
    #[serde(default)]
    pub not_root: bool,
    #[serde(default)]
    pub gis: Vec<FakeGi>,
    /// Instances created so far: the next GPU instance ID and a part of fresh MIG UUIDs.
    #[serde(default)]
    pub created: u32,
    /// Where this driver's profile tables (`nvidia-smi mig -lgip`, `-lgipp`) differ from the
    /// catalog's, by profile ID: names and GiB change between drivers (docs/mig.md).
    #[serde(default)]
    pub driver_profiles: BTreeMap<u32, DriverProfile>,
}

/// A catalog profile as another driver lists it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriverProfile {
    pub name: Option<String>,
    pub memory_gib: Option<f64>,
    pub placements: Option<Vec<u8>>,
    /// Not listed at all.
    #[serde(default)]
    pub absent: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FakeGi {
    pub id: u32,
    pub profile_id: u32,
    pub name: String,
    pub start: u8,
    pub size: u8,
    pub memory_mib: u64,
    pub cis: Vec<FakeCi>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FakeCi {
    pub id: u32,
    pub profile_id: u32,
    pub name: String,
    pub slices: u8,
    pub uuid: String,
}

/// What a process holds on the GPU; its GPU and compute instance when MIG is on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FakeProc {
    pub pid: u32,
    pub used_mib: u64,
    pub gi: Option<u32>,
    pub ci: Option<u32>,
    /// A client of an MPS server: NVML lists it among the MPS processes.
    #[serde(default)]
    pub mps: bool,
}

/// Where a CUDA device UUID points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    Gpu,
    Mig { gi: u32, ci: u32 },
}

pub fn dir() -> Option<PathBuf> {
    std::env::var_os("MIGBENCH_FAKE_GPU").map(PathBuf::from)
}

/// The GPU, or None when there is no driver (no state directory or no gpu.json).
pub fn load() -> Option<FakeGpu> {
    let text = std::fs::read_to_string(dir()?.join("gpu.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// Writes the GPU atomically: NVML readers never see half a file.
pub fn save(gpu: &FakeGpu) {
    let dir = dir().expect("MIGBENCH_FAKE_GPU is set");
    let tmp = dir.join(format!("gpu.json.{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_string_pretty(gpu).unwrap()).unwrap();
    std::fs::rename(tmp, dir.join("gpu.json")).unwrap();
}

fn procs_dir() -> PathBuf {
    dir().expect("MIGBENCH_FAKE_GPU is set").join("procs")
}

/// Processes alive now that hold GPU memory.
pub fn procs() -> Vec<FakeProc> {
    let Ok(entries) = std::fs::read_dir(procs_dir()) else {
        return Vec::new();
    };
    let mut procs: Vec<FakeProc> = entries
        .flatten()
        // Not the `.tmp` files being written, or a process would count twice.
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| serde_json::from_str(&std::fs::read_to_string(e.path()).ok()?).ok())
        .filter(|p: &FakeProc| alive(p.pid))
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

pub fn set_proc(p: &FakeProc) {
    let dir = procs_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let tmp = dir.join(format!("{}.tmp", p.pid));
    std::fs::write(&tmp, serde_json::to_string(p).unwrap()).unwrap();
    std::fs::rename(tmp, dir.join(format!("{}.json", p.pid))).unwrap();
}

pub fn remove_proc(pid: u32) {
    let _ = std::fs::remove_file(procs_dir().join(format!("{pid}.json")));
}

impl FakeGpu {
    /// The MIG devices (one per compute instance), in the order NVML indexes them.
    pub fn mig_devices(&self) -> Vec<(&FakeGi, &FakeCi)> {
        let mut gis: Vec<&FakeGi> = self.gis.iter().collect();
        gis.sort_by_key(|g| g.id);
        gis.into_iter()
            .flat_map(|g| g.cis.iter().map(move |c| (g, c)))
            .collect()
    }

    pub fn target(&self, uuid: &str) -> Option<Target> {
        if uuid == self.uuid {
            return Some(Target::Gpu);
        }
        self.mig_devices()
            .into_iter()
            .find(|(_, c)| c.uuid == uuid)
            .map(|(g, c)| Target::Mig { gi: g.id, ci: c.id })
    }

    pub fn gi(&self, id: u32) -> Option<&FakeGi> {
        self.gis.iter().find(|g| g.id == id)
    }

    /// Memory (MiB) of the pool `target` allocates from: the GPU, or its GPU instance.
    pub fn capacity_mib(&self, target: Target) -> u64 {
        match target {
            Target::Gpu => self.memory_mib,
            Target::Mig { gi, .. } => self.gi(gi).map_or(0, |g| g.memory_mib),
        }
    }

    /// Memory (MiB) in use in that pool, leaving out process `except`.
    pub fn used_mib(&self, target: Target, except: Option<u32>) -> u64 {
        let pool = procs().into_iter().filter(|p| Some(p.pid) != except);
        match target {
            Target::Gpu => RESERVED_MIB + pool.map(|p| p.used_mib).sum::<u64>(),
            Target::Mig { gi, .. } => pool.filter(|p| p.gi == Some(gi)).map(|p| p.used_mib).sum(),
        }
    }
}
