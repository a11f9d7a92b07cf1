//! A stand-in libnvidia-ml.so.1 that NVIDIA's own `nvidia-smi` (535) loads and drives, and
//! migbench too: NVML's public calls for devices, memory, processes and MIG, answered from the
//! stand-in driver's state (see `fake_driver/state.rs`). Point `LD_LIBRARY_PATH` at a directory
//! holding it as `libnvidia-ml.so.1` (scripts/stand-in-gpu.sh does), or migbench alone at it
//! with `MIGBENCH_NVML_LIB`.
//!
//! nvidia-smi resolves every NVML symbol it knows when it starts, so the library exports all of
//! them (`fake_driver/unsupported.rs`): those the stand-in has no answer for return
//! NVML_ERROR_NOT_SUPPORTED, which nvidia-smi shows as "N/A" or "[Not Supported]". The driver's
//! decisions — a MIG command without MIG mode, a placement taken, an instance in use, a caller
//! who is not root — are made here, where the real driver makes them, and nvidia-smi words them.
//!
//! Handles are numbers, not pointers: a kind, a GPU index and instance IDs packed in one word.
//! nvidia-smi and nvml-wrapper never look behind them.

// These are C entry points: NVML's callers pass valid pointers, as its header documents.
#![allow(clippy::not_unsafe_ptr_arg_deref, clippy::missing_safety_doc)]

#[path = "fake_driver/state.rs"]
mod state;

use std::ffi::{c_char, c_int, c_uint, c_ulonglong, c_void, CStr};

use nvml_wrapper_sys::bindings::{
    nvmlComputeInstanceInfo_t, nvmlComputeInstancePlacement_t, nvmlComputeInstanceProfileInfo_t,
    nvmlComputeInstanceProfileInfo_v2_t, nvmlComputeInstance_t, nvmlDevice_t, nvmlGpmMetricsGet_t,
    nvmlGpmSample_t, nvmlGpmSupport_t, nvmlGpuInstanceInfo_t, nvmlGpuInstancePlacement_t,
    nvmlGpuInstanceProfileInfo_t, nvmlGpuInstanceProfileInfo_v2_t, nvmlGpuInstance_t, nvmlMemory_t,
    nvmlMemory_v2_t, nvmlPciInfo_t, nvmlProcessInfo_t, nvmlReturn_t, nvmlUtilization_t,
};
use state::{DriverProfile, FakeGpu, FakeNode, Target, MIB};

// NVML's return codes (nvml.h).
const SUCCESS: nvmlReturn_t = 0;
const INVALID_ARGUMENT: nvmlReturn_t = 2;
const NOT_SUPPORTED: nvmlReturn_t = 3;
const NO_PERMISSION: nvmlReturn_t = 4;
const NOT_FOUND: nvmlReturn_t = 6;
const INSUFFICIENT_SIZE: nvmlReturn_t = 7;
const DRIVER_NOT_LOADED: nvmlReturn_t = 9;
const IN_USE: nvmlReturn_t = 19;
const INSUFFICIENT_RESOURCES: nvmlReturn_t = 23;
const UNKNOWN: nvmlReturn_t = 999;

/// NVML's "no value" for the instance IDs of a process outside MIG.
const NO_VALUE: c_uint = 0xFFFF_FFFF;

/// What a handle stands for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Handle {
    /// A GPU, by index.
    Gpu(u32),
    /// A MIG device (a compute instance as a CUDA device).
    Mig(u32, u32, u32),
    GpuInstance(u32, u32),
    ComputeInstance(u32, u32, u32),
}

impl Handle {
    fn word(self) -> usize {
        let (kind, gpu, gi, ci) = match self {
            Handle::Gpu(g) => (1, g, 0, 0),
            Handle::Mig(g, gi, ci) => (2, g, gi, ci),
            Handle::GpuInstance(g, gi) => (3, g, gi, 0),
            Handle::ComputeInstance(g, gi, ci) => (4, g, gi, ci),
        };
        (kind << 28) | ((gpu as usize & 0xFF) << 16) | ((gi as usize & 0xFF) << 8) | ci as usize
    }

    fn of(word: usize) -> Option<Handle> {
        let (gpu, gi, ci) = (
            ((word >> 16) & 0xFF) as u32,
            ((word >> 8) & 0xFF) as u32,
            (word & 0xFF) as u32,
        );
        match word >> 28 {
            1 => Some(Handle::Gpu(gpu)),
            2 => Some(Handle::Mig(gpu, gi, ci)),
            3 => Some(Handle::GpuInstance(gpu, gi)),
            4 => Some(Handle::ComputeInstance(gpu, gi, ci)),
            _ => None,
        }
    }

    fn gpu(self) -> u32 {
        match self {
            Handle::Gpu(g)
            | Handle::Mig(g, ..)
            | Handle::GpuInstance(g, _)
            | Handle::ComputeInstance(g, ..) => g,
        }
    }
}

fn ptr<T>(h: Handle) -> *mut T {
    h.word() as *mut T
}

fn handle<T>(p: *mut T) -> Option<Handle> {
    Handle::of(p as usize)
}

type Answer<T = ()> = Result<T, nvmlReturn_t>;

fn answer(result: Answer) -> nvmlReturn_t {
    result.err().unwrap_or(SUCCESS)
}

fn node() -> Answer<FakeNode> {
    state::load().ok_or(DRIVER_NOT_LOADED)
}

/// The node and the GPU a handle is on, after checking that what it names still exists (a
/// handle to a destroyed instance is invalid, as the driver has it).
fn resolve<T>(p: *mut T) -> Answer<(FakeNode, Handle)> {
    let node = node()?;
    let h = handle(p).ok_or(INVALID_ARGUMENT)?;
    let gpu = node.gpus.get(h.gpu() as usize).ok_or(INVALID_ARGUMENT)?;
    let exists = match h {
        Handle::Gpu(_) => true,
        Handle::GpuInstance(_, gi) => gpu.gi(gi).is_some(),
        Handle::Mig(_, gi, ci) | Handle::ComputeInstance(_, gi, ci) => {
            gpu.gi(gi).is_some_and(|g| g.cis.iter().any(|c| c.id == ci))
        }
    };
    if !exists {
        return Err(INVALID_ARGUMENT);
    }
    Ok((node, h))
}

/// The GPU of a device handle, and what on it the handle names.
fn device(d: nvmlDevice_t) -> Answer<(FakeGpu, u32, Target)> {
    let (node, h) = resolve(d)?;
    let target = match h {
        Handle::Gpu(_) => Target::Gpu,
        Handle::Mig(_, gi, ci) => Target::Mig { gi, ci },
        _ => return Err(INVALID_ARGUMENT),
    };
    let index = h.gpu();
    Ok((node.gpus[index as usize].clone(), index, target))
}

/// A whole GPU's handle (not a MIG device's), and the GPU.
fn whole_gpu(d: nvmlDevice_t) -> Answer<(FakeGpu, u32)> {
    match device(d)? {
        (gpu, index, Target::Gpu) => Ok((gpu, index)),
        _ => Err(INVALID_ARGUMENT),
    }
}

/// A GPU in MIG mode, for the MIG calls: NOT_SUPPORTED without it, as the driver answers.
fn mig_gpu(d: nvmlDevice_t) -> Answer<(FakeGpu, u32)> {
    let (gpu, index) = whole_gpu(d)?;
    if gpu.profiles.is_empty() || !gpu.mig_current {
        return Err(NOT_SUPPORTED);
    }
    Ok((gpu, index))
}

/// Changes GPU `index` under the driver's lock.
fn change_gpu<T>(index: u32, f: impl FnOnce(&mut FakeGpu) -> Answer<T>) -> Answer<T> {
    state::change(|node: &mut FakeNode| {
        let gpu = node.gpus.get_mut(index as usize).ok_or(INVALID_ARGUMENT)?;
        if gpu.not_root {
            return Err(NO_PERMISSION);
        }
        f(gpu)
    })
    .unwrap_or(Err(UNKNOWN))
}

/// Copies `text` into a C buffer of `len` bytes, NUL included.
fn write_str(text: &str, buf: *mut c_char, len: c_uint) -> Answer {
    if buf.is_null() {
        return Err(INVALID_ARGUMENT);
    }
    if text.len() + 1 > len as usize {
        return Err(INSUFFICIENT_SIZE);
    }
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast(), text.len());
        *buf.add(text.len()) = 0;
    }
    Ok(())
}

fn write_name(text: &str, buf: &mut [c_char]) {
    for (i, b) in text.bytes().take(buf.len() - 1).enumerate() {
        buf[i] = b as c_char;
    }
    buf[text.len().min(buf.len() - 1)] = 0;
}

/// Writes what `items` holds into a caller's array of `*count` places, as NVML's list calls do:
/// the count is always set; too small an array is INSUFFICIENT_SIZE.
fn write_list<T: Copy>(items: &[T], out: *mut T, count: *mut c_uint) -> Answer {
    if count.is_null() {
        return Err(INVALID_ARGUMENT);
    }
    let room = unsafe { *count } as usize;
    unsafe { *count = items.len() as c_uint };
    if items.is_empty() {
        return Ok(());
    }
    if out.is_null() || room < items.len() {
        return Err(INSUFFICIENT_SIZE);
    }
    for (i, item) in items.iter().enumerate() {
        unsafe { *out.add(i) = *item };
    }
    Ok(())
}

/// Writes `items` into a caller's array sized by the profile's instance count, as NVML's MIG
/// list calls do: there `count` is only an answer, and a NULL array asks for the count alone.
fn write_sized<T: Copy>(items: &[T], out: *mut T, count: *mut c_uint) -> Answer {
    set(count, items.len() as c_uint)?;
    if !out.is_null() {
        for (i, item) in items.iter().enumerate() {
            unsafe { *out.add(i) = *item };
        }
    }
    Ok(())
}

fn set<T>(out: *mut T, value: T) -> Answer {
    if out.is_null() {
        return Err(INVALID_ARGUMENT);
    }
    unsafe { *out = value };
    Ok(())
}

// ---- Initialization and the system ------------------------------------------------------------

#[no_mangle]
pub extern "C" fn nvmlInit_v2() -> nvmlReturn_t {
    let result = node().map(drop);
    if result.is_ok() {
        state::hold_nvml(1);
    }
    answer(result)
}

#[no_mangle]
pub extern "C" fn nvmlInit() -> nvmlReturn_t {
    nvmlInit_v2()
}

#[no_mangle]
pub extern "C" fn nvmlInitWithFlags(_flags: c_uint) -> nvmlReturn_t {
    nvmlInit_v2()
}

#[no_mangle]
pub extern "C" fn nvmlShutdown() -> nvmlReturn_t {
    state::hold_nvml(-1);
    SUCCESS
}

/// NVML's own wording of each return code (nvml.h), which nvidia-smi prints after a failure.
#[no_mangle]
pub extern "C" fn nvmlErrorString(result: nvmlReturn_t) -> *const c_char {
    let text: &CStr = match result {
        0 => c"Success",
        1 => c"Uninitialized",
        2 => c"Invalid Argument",
        3 => c"Not Supported",
        4 => c"Insufficient Permissions",
        5 => c"Already Initialized",
        6 => c"Not Found",
        7 => c"Insufficient Size",
        9 => c"Driver Not Loaded",
        10 => c"Timeout",
        13 => c"Function Not Found",
        15 => c"GPU is lost",
        19 => c"In use by another client",
        20 => c"Insufficient Memory",
        21 => c"No data",
        23 => c"Insufficient Resources",
        25 => c"Argument version mismatch",
        _ => c"Unknown Error",
    };
    text.as_ptr()
}

/// The internal table nvidia-smi asks for at start: zeros are enough for what it reads of it.
#[no_mangle]
pub extern "C" fn nvmlInternalGetExportTable(
    table: *mut *const c_void,
    _id: *const c_void,
) -> nvmlReturn_t {
    static TABLE: [u64; 512] = [0; 512];
    answer(set(table, TABLE.as_ptr().cast()))
}

#[no_mangle]
pub extern "C" fn nvmlSystemGetDriverVersion(buf: *mut c_char, len: c_uint) -> nvmlReturn_t {
    answer(node().and_then(|n| write_str(&n.driver, buf, len)))
}

#[no_mangle]
pub extern "C" fn nvmlSystemGetNVMLVersion(buf: *mut c_char, len: c_uint) -> nvmlReturn_t {
    // NVML's version is the CUDA major version before the driver's (nvml.h).
    answer(node().and_then(|n| write_str(&format!("{}.{}", n.cuda / 1000, n.driver), buf, len)))
}

#[no_mangle]
pub extern "C" fn nvmlSystemGetCudaDriverVersion(version: *mut c_int) -> nvmlReturn_t {
    answer(node().and_then(|n| set(version, n.cuda)))
}

#[no_mangle]
pub extern "C" fn nvmlSystemGetCudaDriverVersion_v2(version: *mut c_int) -> nvmlReturn_t {
    nvmlSystemGetCudaDriverVersion(version)
}

#[no_mangle]
pub extern "C" fn nvmlSystemGetProcessName(
    pid: c_uint,
    buf: *mut c_char,
    len: c_uint,
) -> nvmlReturn_t {
    let name = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.display().to_string())
        .or_else(|_| std::fs::read_to_string(format!("/proc/{pid}/comm")))
        .map_err(|_| NOT_FOUND);
    answer(name.and_then(|n| write_str(n.trim_end(), buf, len.min(256))))
}

// ---- Devices ----------------------------------------------------------------------------------

#[no_mangle]
pub extern "C" fn nvmlDeviceGetCount_v2(count: *mut c_uint) -> nvmlReturn_t {
    answer(node().and_then(|n| set(count, n.gpus.len() as c_uint)))
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetCount(count: *mut c_uint) -> nvmlReturn_t {
    nvmlDeviceGetCount_v2(count)
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetHandleByIndex_v2(
    index: c_uint,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    answer(node().and_then(|n| {
        if index as usize >= n.gpus.len() {
            return Err(INVALID_ARGUMENT);
        }
        set(device, ptr(Handle::Gpu(index)))
    }))
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetHandleByIndex(
    index: c_uint,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    nvmlDeviceGetHandleByIndex_v2(index, device)
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetHandleByUUID(
    uuid: *const c_char,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    if uuid.is_null() {
        return INVALID_ARGUMENT;
    }
    let uuid = unsafe { CStr::from_ptr(uuid) }.to_string_lossy();
    answer(
        node().and_then(|n| match n.target(&uuid).ok_or(NOT_FOUND)? {
            (g, Target::Gpu) => set(device, ptr(Handle::Gpu(g))),
            (g, Target::Mig { gi, ci }) => set(device, ptr(Handle::Mig(g, gi, ci))),
        }),
    )
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetHandleByPciBusId_v2(
    bus_id: *const c_char,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    if bus_id.is_null() {
        return INVALID_ARGUMENT;
    }
    let wanted = unsafe { CStr::from_ptr(bus_id) }
        .to_string_lossy()
        .to_lowercase();
    answer(node().and_then(|n| {
        let index = n
            .gpus
            .iter()
            .position(|g| {
                let id = g.bus_id.to_lowercase();
                // "0000:36:00.0" and "00000000:36:00.0" name the same GPU.
                id == wanted || id.trim_start_matches('0') == wanted.trim_start_matches('0')
            })
            .ok_or(NOT_FOUND)?;
        set(device, ptr(Handle::Gpu(index as u32)))
    }))
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetIndex(d: nvmlDevice_t, index: *mut c_uint) -> nvmlReturn_t {
    answer(whole_gpu(d).and_then(|(_, i)| set(index, i)))
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetMinorNumber(d: nvmlDevice_t, minor: *mut c_uint) -> nvmlReturn_t {
    nvmlDeviceGetIndex(d, minor)
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetName(
    d: nvmlDevice_t,
    buf: *mut c_char,
    len: c_uint,
) -> nvmlReturn_t {
    answer(device(d).and_then(|(gpu, _, t)| match t {
        Target::Gpu => write_str(&gpu.name, buf, len),
        Target::Mig { gi, .. } => {
            let profile = gpu
                .gi(gi)
                .and_then(|g| gpu.profile(g.profile_id))
                .map_or("", |p| p.name.as_str());
            write_str(&format!("{} MIG {profile}", gpu.name), buf, len)
        }
    }))
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetUUID(
    d: nvmlDevice_t,
    buf: *mut c_char,
    len: c_uint,
) -> nvmlReturn_t {
    answer(device(d).and_then(|(gpu, _, t)| match t {
        Target::Gpu => write_str(&gpu.uuid, buf, len),
        Target::Mig { gi, ci } => {
            let mig = gpu
                .mig_devices()
                .into_iter()
                .find(|(g, c)| g.id == gi && c.id == ci);
            write_str(&mig.ok_or(NOT_FOUND)?.1.uuid, buf, len)
        }
    }))
}

fn pci_info(gpu: &FakeGpu) -> nvmlPciInfo_t {
    let mut info: nvmlPciInfo_t = unsafe { std::mem::zeroed() };
    let hex = |s: &str| u32::from_str_radix(s, 16).unwrap_or(0);
    // "00000000:36:00.0": domain, bus, device and function.
    let parts: Vec<&str> = gpu.bus_id.split([':', '.']).collect();
    if let [domain, bus, dev, _function] = parts.as_slice() {
        info.domain = hex(domain);
        info.bus = hex(bus);
        info.device = hex(dev);
    }
    // NVML puts the vendor (0x10de, NVIDIA) in the low half of the device ID word.
    info.pciDeviceId = (gpu.pci_device_id << 16) | 0x10de;
    info.pciSubSystemId = (0x16c1 << 16) | 0x10de;
    write_name(&gpu.bus_id, &mut info.busId);
    write_name(
        &gpu.bus_id[gpu.bus_id.len().saturating_sub(12)..],
        &mut info.busIdLegacy,
    );
    info
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetPciInfo_v3(
    d: nvmlDevice_t,
    pci: *mut nvmlPciInfo_t,
) -> nvmlReturn_t {
    answer(device(d).and_then(|(gpu, ..)| set(pci, pci_info(&gpu))))
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetPciInfo_v2(
    d: nvmlDevice_t,
    pci: *mut nvmlPciInfo_t,
) -> nvmlReturn_t {
    nvmlDeviceGetPciInfo_v3(d, pci)
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetMemoryInfo(
    d: nvmlDevice_t,
    memory: *mut nvmlMemory_t,
) -> nvmlReturn_t {
    answer(device(d).and_then(|(gpu, index, t)| {
        let total = gpu.capacity_mib(t) * MIB;
        let used = gpu.used_mib(index, t, None) * MIB;
        set(
            memory,
            nvmlMemory_t {
                total,
                used,
                free: total.saturating_sub(used),
            },
        )
    }))
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetMemoryInfo_v2(
    d: nvmlDevice_t,
    memory: *mut nvmlMemory_v2_t,
) -> nvmlReturn_t {
    answer(device(d).and_then(|(gpu, index, t)| {
        let total = gpu.capacity_mib(t) * MIB;
        let used = gpu.used_mib(index, t, None) * MIB;
        let version = if memory.is_null() {
            0
        } else {
            unsafe { (*memory).version }
        };
        set(
            memory,
            nvmlMemory_v2_t {
                version,
                total,
                reserved: 0,
                used,
                free: total.saturating_sub(used),
            },
        )
    }))
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetUtilizationRates(
    d: nvmlDevice_t,
    rates: *mut nvmlUtilization_t,
) -> nvmlReturn_t {
    answer(device(d).and_then(|(gpu, index, _)| {
        // Not supported with MIG on (docs/mig.md).
        if gpu.mig_current {
            return Err(NOT_SUPPORTED);
        }
        let busy = state::procs().iter().any(|p| p.gpu == index);
        set(
            rates,
            nvmlUtilization_t {
                gpu: if busy { 100 } else { 0 },
                memory: 0,
            },
        )
    }))
}

/// A whole GPU's power now, in W (NVML has no power or energy per MIG device); read only, as
/// every sample asks for it.
fn power(d: nvmlDevice_t) -> Answer<f64> {
    let (gpu, index) = whole_gpu(d)?;
    if gpu.board_w <= 0.0 {
        return Err(NOT_SUPPORTED);
    }
    Ok(gpu.power_w(index, &state::procs()))
}

/// GPU `index` with its counters (energy, GPM's SM activity) brought up to now.
fn advanced(index: u32) -> Answer<FakeGpu> {
    let procs = state::procs();
    state::change(|node: &mut FakeNode| {
        let gpu = node.gpus.get_mut(index as usize).ok_or(INVALID_ARGUMENT)?;
        gpu.advance_energy(index, &procs);
        Ok(gpu.clone())
    })
    .unwrap_or(Err(UNKNOWN))
}

/// Brings GPU `d`'s energy counter up to now; the counter, in mJ.
fn energy(d: nvmlDevice_t) -> Answer<f64> {
    power(d)?;
    let (_, index) = whole_gpu(d)?;
    Ok(advanced(index)?.energy_mj)
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetPowerUsage(
    d: nvmlDevice_t,
    milliwatts: *mut c_uint,
) -> nvmlReturn_t {
    answer(power(d).and_then(|w| set(milliwatts, (w * 1000.0).round() as c_uint)))
}

/// The board's power limit, in mW: its maximum, which migbench never changes.
fn power_limit(d: nvmlDevice_t, milliwatts: *mut c_uint) -> nvmlReturn_t {
    answer(whole_gpu(d).and_then(|(gpu, _)| {
        if gpu.board_w <= 0.0 {
            return Err(NOT_SUPPORTED);
        }
        set(milliwatts, (gpu.board_w * 1000.0).round() as c_uint)
    }))
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetEnforcedPowerLimit(
    d: nvmlDevice_t,
    milliwatts: *mut c_uint,
) -> nvmlReturn_t {
    power_limit(d, milliwatts)
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetPowerManagementLimit(
    d: nvmlDevice_t,
    milliwatts: *mut c_uint,
) -> nvmlReturn_t {
    power_limit(d, milliwatts)
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetTotalEnergyConsumption(
    d: nvmlDevice_t,
    millijoules: *mut c_ulonglong,
) -> nvmlReturn_t {
    answer(energy(d).and_then(|mj| set(millijoules, mj as c_ulonglong)))
}

// ---- GPU Performance Monitoring (Hopper and later) ---------------------------------------------

/// NVML's GPM metric for the share of SMs busy (NVML_GPM_METRIC_SM_UTIL), in percent.
const GPM_SM_UTIL: c_uint = 2;
const ARGUMENT_VERSION_MISMATCH: nvmlReturn_t = 25;

/// What a GPM sample holds: whose SM-activity counter, read when.
#[derive(Debug, Clone, Copy, Default)]
struct GpmSample {
    /// GPU index and GPU instance ID (`None`: the whole GPU); `None` until filled.
    of: Option<(u32, Option<u32>)>,
    at_ms: u64,
    busy_sm_ms: f64,
}

/// GPU `d`'s state with its counters brought up to now, where it supports GPM.
fn gpm_gpu(d: nvmlDevice_t) -> Answer<(FakeGpu, u32)> {
    let (gpu, index) = whole_gpu(d)?;
    if !gpu.gpm {
        return Err(NOT_SUPPORTED);
    }
    Ok((advanced(index)?, index))
}

fn fill(sample: nvmlGpmSample_t, value: GpmSample) -> Answer {
    if sample.is_null() {
        return Err(INVALID_ARGUMENT);
    }
    unsafe { *sample.cast::<GpmSample>() = value };
    Ok(())
}

#[no_mangle]
pub extern "C" fn nvmlGpmQueryDeviceSupport(
    d: nvmlDevice_t,
    support: *mut nvmlGpmSupport_t,
) -> nvmlReturn_t {
    answer(whole_gpu(d).and_then(|(gpu, _)| {
        if support.is_null() {
            return Err(INVALID_ARGUMENT);
        }
        if unsafe { (*support).version } != 1 {
            return Err(ARGUMENT_VERSION_MISMATCH);
        }
        unsafe { (*support).isSupportedDevice = c_uint::from(gpu.gpm) };
        Ok(())
    }))
}

#[no_mangle]
pub extern "C" fn nvmlGpmSampleAlloc(sample: *mut nvmlGpmSample_t) -> nvmlReturn_t {
    answer(set(
        sample,
        Box::into_raw(Box::<GpmSample>::default()).cast(),
    ))
}

#[no_mangle]
pub extern "C" fn nvmlGpmSampleFree(sample: nvmlGpmSample_t) -> nvmlReturn_t {
    if sample.is_null() {
        return INVALID_ARGUMENT;
    }
    // Made by nvmlGpmSampleAlloc, freed once, as NVML's callers do.
    drop(unsafe { Box::from_raw(sample.cast::<GpmSample>()) });
    SUCCESS
}

#[no_mangle]
pub extern "C" fn nvmlGpmSampleGet(d: nvmlDevice_t, sample: nvmlGpmSample_t) -> nvmlReturn_t {
    answer(gpm_gpu(d).and_then(|(gpu, index)| {
        fill(
            sample,
            GpmSample {
                of: Some((index, None)),
                at_ms: gpu.energy_at_ms,
                busy_sm_ms: gpu.busy_sm_ms,
            },
        )
    }))
}

/// GPU instance `gi`'s activity: asked of the GPU's handle with the instance's ID, as NVML has it.
#[no_mangle]
pub extern "C" fn nvmlGpmMigSampleGet(
    d: nvmlDevice_t,
    gi: c_uint,
    sample: nvmlGpmSample_t,
) -> nvmlReturn_t {
    answer(gpm_gpu(d).and_then(|(gpu, index)| {
        if !gpu.mig_current {
            return Err(NOT_SUPPORTED);
        }
        gpu.gi(gi).ok_or(NOT_FOUND)?;
        fill(
            sample,
            GpmSample {
                of: Some((index, Some(gi))),
                at_ms: gpu.energy_at_ms,
                busy_sm_ms: gpu.gi_busy_sm_ms.get(&gi).copied().unwrap_or(0.0),
            },
        )
    }))
}

/// The metrics between two samples of one GPU (or GPU instance): SM utilization, the share of
/// SMs busy over the interval in percent; every other metric is NOT_SUPPORTED in its slot.
#[no_mangle]
pub extern "C" fn nvmlGpmMetricsGet(get: *mut nvmlGpmMetricsGet_t) -> nvmlReturn_t {
    if get.is_null() {
        return INVALID_ARGUMENT;
    }
    let get = unsafe { &mut *get };
    if get.version != 1 {
        return ARGUMENT_VERSION_MISMATCH;
    }
    if get.sample1.is_null() || get.sample2.is_null() || get.numMetrics as usize > get.metrics.len()
    {
        return INVALID_ARGUMENT;
    }
    let (a, b) = unsafe {
        (
            *get.sample1.cast::<GpmSample>(),
            *get.sample2.cast::<GpmSample>(),
        )
    };
    if a.of.is_none() || a.of != b.of || b.at_ms < a.at_ms {
        return INVALID_ARGUMENT;
    }
    let ms = (b.at_ms - a.at_ms) as f64;
    let util = if ms > 0.0 {
        (100.0 * (b.busy_sm_ms - a.busy_sm_ms) / ms).clamp(0.0, 100.0)
    } else {
        0.0
    };
    for metric in get.metrics.iter_mut().take(get.numMetrics as usize) {
        if metric.metricId == GPM_SM_UTIL {
            metric.nvmlReturn = SUCCESS;
            metric.value = util;
        } else {
            metric.nvmlReturn = NOT_SUPPORTED;
        }
    }
    SUCCESS
}

/// The processes on `d` (all of a GPU's, or those of one MIG device) with a plain compute
/// context, or with an MPS one: NVML lists MPS clients apart.
fn list_processes(
    d: nvmlDevice_t,
    count: *mut c_uint,
    infos: *mut nvmlProcessInfo_t,
    mps: bool,
) -> nvmlReturn_t {
    answer(device(d).and_then(|(gpu, index, t)| {
        // NVML answers for the whole GPU in MIG mode only to privileged callers; the stand-in
        // plays an unprivileged one, so callers must ask each MIG device.
        if gpu.mig_current && t == Target::Gpu {
            return Err(NO_PERMISSION);
        }
        let procs: Vec<nvmlProcessInfo_t> = state::procs()
            .into_iter()
            .filter(|p| p.gpu == index && p.mps == mps)
            .filter(|p| match t {
                Target::Gpu => true,
                Target::Mig { gi, ci } => p.gi == Some(gi) && p.ci == Some(ci),
            })
            .map(|p| nvmlProcessInfo_t {
                pid: p.pid + gpu.pid_offset,
                usedGpuMemory: p.used_mib * MIB,
                gpuInstanceId: p.gi.unwrap_or(NO_VALUE),
                computeInstanceId: p.ci.unwrap_or(NO_VALUE),
            })
            .collect();
        write_list(&procs, infos, count)
    }))
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetComputeRunningProcesses_v3(
    d: nvmlDevice_t,
    count: *mut c_uint,
    infos: *mut nvmlProcessInfo_t,
) -> nvmlReturn_t {
    list_processes(d, count, infos, false)
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetMPSComputeRunningProcesses_v3(
    d: nvmlDevice_t,
    count: *mut c_uint,
    infos: *mut nvmlProcessInfo_t,
) -> nvmlReturn_t {
    list_processes(d, count, infos, true)
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetGraphicsRunningProcesses_v3(
    d: nvmlDevice_t,
    count: *mut c_uint,
    _infos: *mut nvmlProcessInfo_t,
) -> nvmlReturn_t {
    // No graphics work runs on the stand-in.
    answer(device(d).and_then(|_| set(count, 0)))
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetComputeMode(d: nvmlDevice_t, mode: *mut c_uint) -> nvmlReturn_t {
    answer(device(d).and_then(|(gpu, ..)| set(mode, gpu.compute_mode)))
}

// ---- MIG mode and MIG devices -----------------------------------------------------------------

#[no_mangle]
pub extern "C" fn nvmlDeviceGetMigMode(
    d: nvmlDevice_t,
    current: *mut c_uint,
    pending: *mut c_uint,
) -> nvmlReturn_t {
    answer(whole_gpu(d).and_then(|(gpu, _)| {
        if gpu.profiles.is_empty() {
            return Err(NOT_SUPPORTED);
        }
        set(current, c_uint::from(gpu.mig_current))?;
        set(pending, c_uint::from(gpu.mig_pending))
    }))
}

/// Turns MIG mode on or off. Refused while the GPU has GPU instances or processes ("In use by
/// another client"); where a reset is needed (Ampere, VMs) the change stays pending and
/// `activation` says it did not take effect.
#[no_mangle]
pub extern "C" fn nvmlDeviceSetMigMode(
    d: nvmlDevice_t,
    mode: c_uint,
    activation: *mut nvmlReturn_t,
) -> nvmlReturn_t {
    let result = whole_gpu(d).and_then(|(gpu, index)| {
        if gpu.profiles.is_empty() {
            return Err(NOT_SUPPORTED);
        }
        let on = match mode {
            0 => false,
            1 => true,
            _ => return Err(INVALID_ARGUMENT),
        };
        change_gpu(index, |gpu| {
            let busy = state::procs().iter().any(|p| p.gpu == index);
            if !gpu.gis.is_empty() || busy {
                return Err(IN_USE);
            }
            // Where the change waits for a reset (Ampere), NVML held open by another process
            // keeps it from being made at all (mig-parted shuts NVML down before it asks).
            if gpu.mig_needs_reset && !state::other_nvml_holders().is_empty() {
                return Err(IN_USE);
            }
            gpu.mig_pending = on;
            if gpu.mig_needs_reset && gpu.mig_current != on {
                return Ok(NOT_SUPPORTED);
            }
            gpu.mig_current = on;
            Ok(SUCCESS)
        })
    });
    answer(result.and_then(|status| set(activation, status)))
}

#[no_mangle]
pub extern "C" fn nvmlDeviceIsMigDeviceHandle(
    d: nvmlDevice_t,
    is_mig: *mut c_uint,
) -> nvmlReturn_t {
    answer(device(d).and_then(|(_, _, t)| set(is_mig, c_uint::from(t != Target::Gpu))))
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetMaxMigDeviceCount(
    d: nvmlDevice_t,
    count: *mut c_uint,
) -> nvmlReturn_t {
    answer(whole_gpu(d).and_then(|(gpu, _)| {
        let most = gpu.profiles.iter().map(|p| p.instances).max().unwrap_or(0);
        set(count, most)
    }))
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetMigDeviceHandleByIndex(
    d: nvmlDevice_t,
    index: c_uint,
    mig: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    answer(mig_gpu(d).and_then(|(gpu, g)| {
        let (gi, ci) = *gpu
            .nvml_mig_devices()
            .get(index as usize)
            .ok_or(NOT_FOUND)?;
        set(mig, ptr(Handle::Mig(g, gi.id, ci.id)))
    }))
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetDeviceHandleFromMigDeviceHandle(
    mig: nvmlDevice_t,
    d: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    answer(device(mig).and_then(|(_, g, t)| match t {
        Target::Gpu => Err(INVALID_ARGUMENT),
        Target::Mig { .. } => set(d, ptr(Handle::Gpu(g))),
    }))
}

fn instance_id(d: nvmlDevice_t, id: *mut c_uint, pick: fn(u32, u32) -> u32) -> nvmlReturn_t {
    answer(device(d).and_then(|(_, _, t)| match t {
        Target::Gpu => Err(NOT_SUPPORTED),
        Target::Mig { gi, ci } => set(id, pick(gi, ci)),
    }))
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetGpuInstanceId(d: nvmlDevice_t, id: *mut c_uint) -> nvmlReturn_t {
    instance_id(d, id, |gi, _| gi)
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetComputeInstanceId(d: nvmlDevice_t, id: *mut c_uint) -> nvmlReturn_t {
    instance_id(d, id, |_, ci| ci)
}

// ---- GPU instances ----------------------------------------------------------------------------

/// The driver's profile for NVML's profile enum `nvml_profile`.
fn profile_by_enum(gpu: &FakeGpu, nvml_profile: c_uint) -> Answer<DriverProfile> {
    gpu.profiles
        .iter()
        .find(|p| p.nvml_profile == nvml_profile)
        .cloned()
        .ok_or(NOT_SUPPORTED)
}

/// The driver's profile with ID `id`, as `-cgi` and the placement calls name it.
fn profile_by_id(gpu: &FakeGpu, id: c_uint) -> Answer<DriverProfile> {
    gpu.profile(id).cloned().ok_or(INVALID_ARGUMENT)
}

fn gi_profile_info(p: &DriverProfile) -> nvmlGpuInstanceProfileInfo_t {
    nvmlGpuInstanceProfileInfo_t {
        id: p.id,
        isP2pSupported: 0,
        sliceCount: p.compute_slices,
        instanceCount: p.instances,
        multiprocessorCount: p.sm,
        copyEngineCount: p.ce,
        decoderCount: p.dec,
        encoderCount: p.enc,
        jpegCount: p.jpg,
        ofaCount: p.ofa,
        memorySizeMB: p.memory_mib as c_ulonglong,
    }
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetGpuInstanceProfileInfo(
    d: nvmlDevice_t,
    profile: c_uint,
    info: *mut nvmlGpuInstanceProfileInfo_t,
) -> nvmlReturn_t {
    answer(
        whole_gpu(d)
            .and_then(|(gpu, _)| set(info, gi_profile_info(&profile_by_enum(&gpu, profile)?))),
    )
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetGpuInstanceProfileInfoV(
    d: nvmlDevice_t,
    profile: c_uint,
    info: *mut nvmlGpuInstanceProfileInfo_v2_t,
) -> nvmlReturn_t {
    answer(whole_gpu(d).and_then(|(gpu, _)| {
        let p = profile_by_enum(&gpu, profile)?;
        if info.is_null() {
            return Err(INVALID_ARGUMENT);
        }
        let v1 = gi_profile_info(&p);
        let info = unsafe { &mut *info };
        info.id = v1.id;
        info.isP2pSupported = v1.isP2pSupported;
        info.sliceCount = v1.sliceCount;
        info.instanceCount = v1.instanceCount;
        info.multiprocessorCount = v1.multiprocessorCount;
        info.copyEngineCount = v1.copyEngineCount;
        info.decoderCount = v1.decoderCount;
        info.encoderCount = v1.encoderCount;
        info.jpegCount = v1.jpegCount;
        info.ofaCount = v1.ofaCount;
        info.memorySizeMB = v1.memorySizeMB;
        write_name(&format!("MIG {}", p.name), &mut info.name);
        Ok(())
    }))
}

/// The placements of profile `p` still free on `gpu`.
fn free_placements(gpu: &FakeGpu, p: &DriverProfile) -> Vec<u32> {
    let taken = gpu.taken_slices();
    p.placements
        .iter()
        .copied()
        .filter(|s| state::mask(*s, p.size) & taken == 0)
        .collect()
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetGpuInstancePossiblePlacements_v2(
    d: nvmlDevice_t,
    profile_id: c_uint,
    placements: *mut nvmlGpuInstancePlacement_t,
    count: *mut c_uint,
) -> nvmlReturn_t {
    answer(mig_gpu(d).and_then(|(gpu, _)| {
        let p = profile_by_id(&gpu, profile_id)?;
        let all: Vec<nvmlGpuInstancePlacement_t> = p
            .placements
            .iter()
            .map(|s| nvmlGpuInstancePlacement_t {
                start: *s,
                size: p.size,
            })
            .collect();
        write_sized(&all, placements, count)
    }))
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetGpuInstanceRemainingCapacity(
    d: nvmlDevice_t,
    profile_id: c_uint,
    count: *mut c_uint,
) -> nvmlReturn_t {
    answer(mig_gpu(d).and_then(|(gpu, _)| {
        let p = profile_by_id(&gpu, profile_id)?;
        // Free placements taken greedily in slice order, as the driver fills them.
        let mut claimed = gpu.taken_slices();
        let mut free = 0;
        for s in &p.placements {
            let m = state::mask(*s, p.size);
            if m & claimed == 0 {
                claimed |= m;
                free += 1;
            }
        }
        let existing = gpu.gis.iter().filter(|g| g.profile_id == p.id).count() as u32;
        set(count, free.min(p.instances.saturating_sub(existing)))
    }))
}

fn create_gi(
    d: nvmlDevice_t,
    profile_id: c_uint,
    start: Option<u32>,
    out: *mut nvmlGpuInstance_t,
) -> nvmlReturn_t {
    let result = mig_gpu(d).and_then(|(_, index)| {
        change_gpu(index, |gpu| {
            let p = profile_by_id(gpu, profile_id)?;
            let free = free_placements(gpu, &p);
            let start = match start {
                None => *free.first().ok_or(INSUFFICIENT_RESOURCES)?,
                Some(s) if !p.placements.contains(&s) => return Err(INVALID_ARGUMENT),
                Some(s) if !free.contains(&s) => return Err(INSUFFICIENT_RESOURCES),
                Some(s) => s,
            };
            if gpu.gis.iter().filter(|g| g.profile_id == p.id).count() as u32 >= p.instances {
                return Err(INSUFFICIENT_RESOURCES);
            }
            // IDs of the driver's own numbering, from 5 up and never reused, so that a caller
            // who predicts them instead of reading them back fails.
            gpu.created += 1;
            let id = 4 + gpu.created;
            gpu.gis.push(state::FakeGi {
                id,
                profile_id: p.id,
                start,
                size: p.size,
                cis: Vec::new(),
            });
            Ok(Handle::GpuInstance(index, id))
        })
    });
    answer(result.and_then(|h| set(out, ptr(h))))
}

#[no_mangle]
pub extern "C" fn nvmlDeviceCreateGpuInstance(
    d: nvmlDevice_t,
    profile_id: c_uint,
    out: *mut nvmlGpuInstance_t,
) -> nvmlReturn_t {
    create_gi(d, profile_id, None, out)
}

#[no_mangle]
pub extern "C" fn nvmlDeviceCreateGpuInstanceWithPlacement(
    d: nvmlDevice_t,
    profile_id: c_uint,
    placement: *const nvmlGpuInstancePlacement_t,
    out: *mut nvmlGpuInstance_t,
) -> nvmlReturn_t {
    if placement.is_null() {
        return INVALID_ARGUMENT;
    }
    create_gi(d, profile_id, Some(unsafe { (*placement).start }), out)
}

/// A GPU instance handle: its GPU (in MIG mode) and instance ID.
fn gpu_instance(gi: nvmlGpuInstance_t) -> Answer<(FakeGpu, u32, u32)> {
    let (node, h) = resolve(gi)?;
    match h {
        Handle::GpuInstance(g, id) => Ok((node.gpus[g as usize].clone(), g, id)),
        _ => Err(INVALID_ARGUMENT),
    }
}

#[no_mangle]
pub extern "C" fn nvmlGpuInstanceDestroy(gi: nvmlGpuInstance_t) -> nvmlReturn_t {
    answer(gpu_instance(gi).and_then(|(_, index, id)| {
        change_gpu(index, |gpu| {
            let g = gpu.gi(id).ok_or(INVALID_ARGUMENT)?;
            if !g.cis.is_empty() || state::instance_busy(index, id, None, gpu.linger_ms) {
                return Err(IN_USE);
            }
            gpu.gis.retain(|g| g.id != id);
            Ok(())
        })
    }))
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetGpuInstances(
    d: nvmlDevice_t,
    profile_id: c_uint,
    out: *mut nvmlGpuInstance_t,
    count: *mut c_uint,
) -> nvmlReturn_t {
    answer(mig_gpu(d).and_then(|(gpu, index)| {
        profile_by_id(&gpu, profile_id)?;
        let mut ids: Vec<u32> = gpu
            .gis
            .iter()
            .filter(|g| g.profile_id == profile_id)
            .map(|g| g.id)
            .collect();
        ids.sort();
        let handles: Vec<nvmlGpuInstance_t> = ids
            .into_iter()
            .map(|id| ptr(Handle::GpuInstance(index, id)))
            .collect();
        write_sized(&handles, out, count)
    }))
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetGpuInstanceById(
    d: nvmlDevice_t,
    id: c_uint,
    out: *mut nvmlGpuInstance_t,
) -> nvmlReturn_t {
    answer(mig_gpu(d).and_then(|(gpu, index)| {
        gpu.gi(id).ok_or(NOT_FOUND)?;
        set(out, ptr(Handle::GpuInstance(index, id)))
    }))
}

#[no_mangle]
pub extern "C" fn nvmlGpuInstanceGetInfo(
    gi: nvmlGpuInstance_t,
    info: *mut nvmlGpuInstanceInfo_t,
) -> nvmlReturn_t {
    answer(gpu_instance(gi).and_then(|(gpu, index, id)| {
        let g = gpu.gi(id).ok_or(INVALID_ARGUMENT)?;
        set(
            info,
            nvmlGpuInstanceInfo_t {
                device: ptr(Handle::Gpu(index)),
                id,
                profileId: g.profile_id,
                placement: nvmlGpuInstancePlacement_t {
                    start: g.start,
                    size: g.size,
                },
            },
        )
    }))
}

// ---- Compute instances ------------------------------------------------------------------------

/// A compute instance's placement size: its slices rounded up to a power of two, as the driver
/// lays them out (`nvidia-smi mig -lci` gives a 3g instance's whole compute instance as 0:4).
fn ci_placement_size(slices: u32) -> u32 {
    slices.next_power_of_two()
}

/// The compute instance profile `id` of GPU instance `gi`.
fn ci_profile(
    gpu: &FakeGpu,
    gi: u32,
    id: c_uint,
) -> Answer<(DriverProfile, state::DriverCiProfile)> {
    let g = gpu.gi(gi).ok_or(INVALID_ARGUMENT)?;
    let p = gpu.profile(g.profile_id).cloned().ok_or(INVALID_ARGUMENT)?;
    let c = p
        .compute_profiles
        .iter()
        .find(|c| c.id == id)
        .cloned()
        .ok_or(NOT_SUPPORTED)?;
    Ok((p, c))
}

fn ci_profile_info(
    p: &DriverProfile,
    c: &state::DriverCiProfile,
) -> nvmlComputeInstanceProfileInfo_t {
    nvmlComputeInstanceProfileInfo_t {
        id: c.id,
        sliceCount: c.compute_slices,
        instanceCount: c.instances,
        multiprocessorCount: c.sm,
        sharedCopyEngineCount: p.ce,
        sharedDecoderCount: p.dec,
        sharedEncoderCount: p.enc,
        sharedJpegCount: p.jpg,
        sharedOfaCount: p.ofa,
    }
}

#[no_mangle]
pub extern "C" fn nvmlGpuInstanceGetComputeInstanceProfileInfo(
    gi: nvmlGpuInstance_t,
    profile: c_uint,
    _eng_profile: c_uint,
    info: *mut nvmlComputeInstanceProfileInfo_t,
) -> nvmlReturn_t {
    answer(gpu_instance(gi).and_then(|(gpu, _, id)| {
        let (p, c) = ci_profile(&gpu, id, profile)?;
        set(info, ci_profile_info(&p, &c))
    }))
}

#[no_mangle]
pub extern "C" fn nvmlGpuInstanceGetComputeInstanceProfileInfoV(
    gi: nvmlGpuInstance_t,
    profile: c_uint,
    _eng_profile: c_uint,
    info: *mut nvmlComputeInstanceProfileInfo_v2_t,
) -> nvmlReturn_t {
    answer(gpu_instance(gi).and_then(|(gpu, _, id)| {
        let (p, c) = ci_profile(&gpu, id, profile)?;
        if info.is_null() {
            return Err(INVALID_ARGUMENT);
        }
        let v1 = ci_profile_info(&p, &c);
        let info = unsafe { &mut *info };
        info.id = v1.id;
        info.sliceCount = v1.sliceCount;
        info.instanceCount = v1.instanceCount;
        info.multiprocessorCount = v1.multiprocessorCount;
        info.sharedCopyEngineCount = v1.sharedCopyEngineCount;
        info.sharedDecoderCount = v1.sharedDecoderCount;
        info.sharedEncoderCount = v1.sharedEncoderCount;
        info.sharedJpegCount = v1.sharedJpegCount;
        info.sharedOfaCount = v1.sharedOfaCount;
        write_name(&format!("MIG {}", c.name), &mut info.name);
        Ok(())
    }))
}

/// The placements (starts) of compute profile `c` in a GPU instance of `slices` compute slices.
fn ci_placements(c: &state::DriverCiProfile, slices: u32) -> Vec<u32> {
    let size = ci_placement_size(c.compute_slices);
    (0..slices)
        .step_by(size as usize)
        .filter(|s| s + c.compute_slices <= slices)
        .collect()
}

/// The compute slices the compute instances of a GPU instance hold, as a mask.
fn ci_taken(g: &state::FakeGi) -> u64 {
    g.cis
        .iter()
        .map(|c| state::mask(c.start, c.slices))
        .fold(0, |a, b| a | b)
}

#[no_mangle]
pub extern "C" fn nvmlGpuInstanceGetComputeInstancePossiblePlacements(
    gi: nvmlGpuInstance_t,
    profile_id: c_uint,
    placements: *mut nvmlComputeInstancePlacement_t,
    count: *mut c_uint,
) -> nvmlReturn_t {
    answer(gpu_instance(gi).and_then(|(gpu, _, id)| {
        let (p, c) = ci_profile(&gpu, id, profile_id)?;
        let all: Vec<nvmlComputeInstancePlacement_t> = ci_placements(&c, p.compute_slices)
            .into_iter()
            .map(|start| nvmlComputeInstancePlacement_t {
                start,
                size: ci_placement_size(c.compute_slices),
            })
            .collect();
        write_sized(&all, placements, count)
    }))
}

#[no_mangle]
pub extern "C" fn nvmlGpuInstanceGetComputeInstanceRemainingCapacity(
    gi: nvmlGpuInstance_t,
    profile_id: c_uint,
    count: *mut c_uint,
) -> nvmlReturn_t {
    answer(gpu_instance(gi).and_then(|(gpu, _, id)| {
        let (p, c) = ci_profile(&gpu, id, profile_id)?;
        let g = gpu.gi(id).ok_or(INVALID_ARGUMENT)?;
        let mut taken = ci_taken(g);
        let mut free = 0;
        for s in ci_placements(&c, p.compute_slices) {
            let m = state::mask(s, c.compute_slices);
            if m & taken == 0 {
                taken |= m;
                free += 1;
            }
        }
        set(count, free)
    }))
}

fn create_ci(
    gi: nvmlGpuInstance_t,
    profile_id: c_uint,
    start: Option<u32>,
    out: *mut nvmlComputeInstance_t,
) -> nvmlReturn_t {
    let result = gpu_instance(gi).and_then(|(_, index, gi_id)| {
        change_gpu(index, |gpu| {
            let (p, c) = ci_profile(gpu, gi_id, profile_id)?;
            gpu.created += 1;
            let serial = gpu.created;
            let uuid_base = gpu.uuid.clone();
            let g = gpu
                .gis
                .iter_mut()
                .find(|g| g.id == gi_id)
                .ok_or(INVALID_ARGUMENT)?;
            let taken = ci_taken(g);
            let places = ci_placements(&c, p.compute_slices);
            let free = |s: &u32| state::mask(*s, c.compute_slices) & taken == 0;
            // Without a placement, the last free one: small compute instances fill the GPU
            // instance from the top, leaving room for a bigger one at 0 (1c and 2c in a 3g).
            let start = match start {
                None => places
                    .iter()
                    .copied()
                    .rfind(free)
                    .ok_or(INSUFFICIENT_RESOURCES)?,
                Some(s) if !places.contains(&s) => return Err(INVALID_ARGUMENT),
                Some(s) if !free(&s) => return Err(INSUFFICIENT_RESOURCES),
                Some(s) => s,
            };
            let id = (0..)
                .find(|i| g.cis.iter().all(|c| c.id != *i))
                .unwrap_or(0);
            // A fresh UUID for every instance created, as the driver gives.
            let uuid = format!(
                "MIG-{}-{serial:04x}-5{gi_id:03x}-8{id:03x}-{:012x}",
                &uuid_base[4..12],
                u64::from(serial) * 0x1_0001 + u64::from(index)
            );
            g.cis.push(state::FakeCi {
                id,
                profile_id: c.id,
                start,
                slices: c.compute_slices,
                uuid,
                serial,
            });
            Ok(Handle::ComputeInstance(index, gi_id, id))
        })
    });
    answer(result.and_then(|h| set(out, ptr(h))))
}

#[no_mangle]
pub extern "C" fn nvmlGpuInstanceCreateComputeInstance(
    gi: nvmlGpuInstance_t,
    profile_id: c_uint,
    out: *mut nvmlComputeInstance_t,
) -> nvmlReturn_t {
    create_ci(gi, profile_id, None, out)
}

#[no_mangle]
pub extern "C" fn nvmlGpuInstanceCreateComputeInstanceWithPlacement(
    gi: nvmlGpuInstance_t,
    profile_id: c_uint,
    placement: *const nvmlComputeInstancePlacement_t,
    out: *mut nvmlComputeInstance_t,
) -> nvmlReturn_t {
    if placement.is_null() {
        return INVALID_ARGUMENT;
    }
    create_ci(gi, profile_id, Some(unsafe { (*placement).start }), out)
}

/// A compute instance handle: its GPU and its GPU and compute instance IDs.
fn compute_instance(ci: nvmlComputeInstance_t) -> Answer<(FakeGpu, u32, u32, u32)> {
    let (node, h) = resolve(ci)?;
    match h {
        Handle::ComputeInstance(g, gi, ci) => Ok((node.gpus[g as usize].clone(), g, gi, ci)),
        _ => Err(INVALID_ARGUMENT),
    }
}

#[no_mangle]
pub extern "C" fn nvmlComputeInstanceDestroy(ci: nvmlComputeInstance_t) -> nvmlReturn_t {
    answer(compute_instance(ci).and_then(|(_, index, gi, ci)| {
        change_gpu(index, |gpu| {
            if state::instance_busy(index, gi, Some(ci), gpu.linger_ms) {
                return Err(IN_USE);
            }
            let g = gpu
                .gis
                .iter_mut()
                .find(|g| g.id == gi)
                .ok_or(INVALID_ARGUMENT)?;
            g.cis.retain(|c| c.id != ci);
            Ok(())
        })
    }))
}

#[no_mangle]
pub extern "C" fn nvmlGpuInstanceGetComputeInstances(
    gi: nvmlGpuInstance_t,
    profile_id: c_uint,
    out: *mut nvmlComputeInstance_t,
    count: *mut c_uint,
) -> nvmlReturn_t {
    answer(gpu_instance(gi).and_then(|(gpu, index, gi_id)| {
        ci_profile(&gpu, gi_id, profile_id)?;
        let g = gpu.gi(gi_id).ok_or(INVALID_ARGUMENT)?;
        let mut ids: Vec<u32> = g
            .cis
            .iter()
            .filter(|c| c.profile_id == profile_id)
            .map(|c| c.id)
            .collect();
        ids.sort();
        let handles: Vec<nvmlComputeInstance_t> = ids
            .into_iter()
            .map(|id| ptr(Handle::ComputeInstance(index, gi_id, id)))
            .collect();
        write_sized(&handles, out, count)
    }))
}

#[no_mangle]
pub extern "C" fn nvmlGpuInstanceGetComputeInstanceById(
    gi: nvmlGpuInstance_t,
    id: c_uint,
    out: *mut nvmlComputeInstance_t,
) -> nvmlReturn_t {
    answer(gpu_instance(gi).and_then(|(gpu, index, gi_id)| {
        let g = gpu.gi(gi_id).ok_or(INVALID_ARGUMENT)?;
        g.cis.iter().find(|c| c.id == id).ok_or(NOT_FOUND)?;
        set(out, ptr(Handle::ComputeInstance(index, gi_id, id)))
    }))
}

#[no_mangle]
pub extern "C" fn nvmlComputeInstanceGetInfo_v2(
    ci: nvmlComputeInstance_t,
    info: *mut nvmlComputeInstanceInfo_t,
) -> nvmlReturn_t {
    answer(compute_instance(ci).and_then(|(gpu, index, gi, id)| {
        let g = gpu.gi(gi).ok_or(INVALID_ARGUMENT)?;
        let c = g.cis.iter().find(|c| c.id == id).ok_or(INVALID_ARGUMENT)?;
        set(
            info,
            nvmlComputeInstanceInfo_t {
                device: ptr(Handle::Gpu(index)),
                gpuInstance: ptr(Handle::GpuInstance(index, gi)),
                id,
                profileId: c.profile_id,
                placement: nvmlComputeInstancePlacement_t {
                    start: c.start,
                    size: ci_placement_size(c.slices),
                },
            },
        )
    }))
}

#[no_mangle]
pub extern "C" fn nvmlComputeInstanceGetInfo(
    ci: nvmlComputeInstance_t,
    info: *mut nvmlComputeInstanceInfo_t,
) -> nvmlReturn_t {
    nvmlComputeInstanceGetInfo_v2(ci, info)
}

// ---- Events: nvidia-smi's plain table makes a set and frees it ---------------------------------

/// An event set that never fires: the stand-in has no XID errors or clock changes to report.
#[no_mangle]
pub extern "C" fn nvmlEventSetCreate(event_set: *mut *mut c_void) -> nvmlReturn_t {
    answer(node().and_then(|_| set(event_set, ptr(Handle::Gpu(0xFF)))))
}

#[no_mangle]
pub extern "C" fn nvmlEventSetFree(_set: *mut c_void) -> nvmlReturn_t {
    SUCCESS
}

// ---- Everything else nvidia-smi resolves -------------------------------------------------------

/// Appends the name of an NVML call the stand-in has no answer for to the file
/// `$MIGBENCH_FAKE_NVML_TRACE`, when set: how to find what a new nvidia-smi command needs.
fn trace(name: &str) {
    if let Some(path) = std::env::var_os("MIGBENCH_FAKE_NVML_TRACE") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = std::io::Write::write_all(&mut f, format!("{name}\n").as_bytes());
        }
    }
}

/// Exports each name as an NVML call that answers NVML_ERROR_NOT_SUPPORTED. The arguments are
/// left alone: in the C calling convention the caller cleans them up.
macro_rules! not_supported {
    ($($name:ident),* $(,)?) => {
        $(
            #[no_mangle]
            pub extern "C" fn $name() -> nvmlReturn_t {
                trace(stringify!($name));
                NOT_SUPPORTED
            }
        )*
    };
}

include!("fake_driver/unsupported.rs");
