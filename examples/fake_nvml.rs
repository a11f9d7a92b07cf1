//! A stand-in libnvidia-ml.so for tests: the NVML calls migbench makes (through nvml-wrapper),
//! answered from the stand-in driver's state (see `fake_driver/state.rs`). Load it with
//! `MIGBENCH_NVML_LIB=target/debug/examples/libfake_nvml.so`.
//!
//! Handles are numbers, not pointers: the GPU is [`GPU_HANDLE`], a MIG device encodes its GPU
//! and compute instance IDs. nvml-wrapper never looks behind them.

// These are C entry points: NVML's callers pass valid pointers, as its header documents.
#![allow(clippy::not_unsafe_ptr_arg_deref, clippy::missing_safety_doc)]

#[path = "fake_driver/state.rs"]
mod state;

use std::ffi::{c_char, c_int, c_uint, CStr};

use nvml_wrapper_sys::bindings::{
    nvmlDevice_t, nvmlMemory_v2_t, nvmlProcessInfo_t,
    nvmlReturn_enum_NVML_ERROR_DRIVER_NOT_LOADED as DRIVER_NOT_LOADED,
    nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE as INSUFFICIENT_SIZE,
    nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT as INVALID_ARGUMENT,
    nvmlReturn_enum_NVML_ERROR_NOT_FOUND as NOT_FOUND,
    nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED as NOT_SUPPORTED,
    nvmlReturn_enum_NVML_ERROR_NO_PERMISSION as NO_PERMISSION,
    nvmlReturn_enum_NVML_SUCCESS as SUCCESS, nvmlReturn_t, nvmlUtilization_t,
};
use state::{FakeGpu, Target, MIB};

const GPU_HANDLE: usize = 0x100;
const MIG_HANDLE: usize = 0x10000;

/// NVML's "no value" for the instance IDs of a process outside MIG.
const NO_VALUE: c_uint = 0xFFFF_FFFF;

fn handle(target: Target) -> nvmlDevice_t {
    let n = match target {
        Target::Gpu => GPU_HANDLE,
        Target::Mig { gi, ci } => MIG_HANDLE + ((gi as usize) << 8) + ci as usize,
    };
    n as nvmlDevice_t
}

fn target(device: nvmlDevice_t) -> Option<Target> {
    match device as usize {
        GPU_HANDLE => Some(Target::Gpu),
        n if n >= MIG_HANDLE => Some(Target::Mig {
            gi: ((n - MIG_HANDLE) >> 8) as u32,
            ci: ((n - MIG_HANDLE) & 0xFF) as u32,
        }),
        _ => None,
    }
}

/// The GPU, and what `device` is on it, or the NVML error to return.
fn gpu_and(device: nvmlDevice_t) -> Result<(FakeGpu, Target), nvmlReturn_t> {
    let gpu = state::load().ok_or(DRIVER_NOT_LOADED)?;
    let target = target(device).ok_or(INVALID_ARGUMENT)?;
    if let Target::Mig { gi, ci } = target {
        let exists = gpu.gi(gi).is_some_and(|g| g.cis.iter().any(|c| c.id == ci));
        if !exists {
            return Err(INVALID_ARGUMENT);
        }
    }
    Ok((gpu, target))
}

fn answer(result: Result<(), nvmlReturn_t>) -> nvmlReturn_t {
    result.err().unwrap_or(SUCCESS)
}

/// Copies `text` into a C buffer of `len` bytes, NUL included.
fn write_str(text: &str, buf: *mut c_char, len: c_uint) -> Result<(), nvmlReturn_t> {
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

#[no_mangle]
pub extern "C" fn nvmlInit_v2() -> nvmlReturn_t {
    if state::load().is_some() {
        SUCCESS
    } else {
        DRIVER_NOT_LOADED
    }
}

#[no_mangle]
pub extern "C" fn nvmlShutdown() -> nvmlReturn_t {
    SUCCESS
}

#[no_mangle]
pub extern "C" fn nvmlErrorString(_result: nvmlReturn_t) -> *const c_char {
    c"stand-in NVML error".as_ptr()
}

#[no_mangle]
pub extern "C" fn nvmlSystemGetDriverVersion(buf: *mut c_char, len: c_uint) -> nvmlReturn_t {
    answer(
        state::load()
            .ok_or(DRIVER_NOT_LOADED)
            .and_then(|g| write_str(&g.driver, buf, len)),
    )
}

#[no_mangle]
pub extern "C" fn nvmlSystemGetCudaDriverVersion_v2(version: *mut c_int) -> nvmlReturn_t {
    answer(
        state::load()
            .ok_or(DRIVER_NOT_LOADED)
            .map(|g| unsafe { *version = g.cuda }),
    )
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetCount_v2(count: *mut c_uint) -> nvmlReturn_t {
    answer(
        state::load()
            .ok_or(DRIVER_NOT_LOADED)
            .map(|_| unsafe { *count = 1 }),
    )
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetHandleByIndex_v2(
    index: c_uint,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    if index != 0 {
        return INVALID_ARGUMENT;
    }
    unsafe { *device = handle(Target::Gpu) };
    SUCCESS
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetHandleByUUID(
    uuid: *const c_char,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    let Some(gpu) = state::load() else {
        return DRIVER_NOT_LOADED;
    };
    let uuid = unsafe { CStr::from_ptr(uuid) }.to_string_lossy();
    match gpu.target(&uuid) {
        Some(t) => {
            unsafe { *device = handle(t) };
            SUCCESS
        }
        None => NOT_FOUND,
    }
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetIndex(device: nvmlDevice_t, index: *mut c_uint) -> nvmlReturn_t {
    answer(gpu_and(device).map(|_| unsafe { *index = 0 }))
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetName(
    device: nvmlDevice_t,
    buf: *mut c_char,
    len: c_uint,
) -> nvmlReturn_t {
    answer(gpu_and(device).and_then(|(gpu, t)| match t {
        Target::Gpu => write_str(&gpu.name, buf, len),
        Target::Mig { gi, .. } => {
            let profile = gpu.gi(gi).map_or("", |g| g.name.as_str());
            write_str(&format!("{} MIG {profile}", gpu.name), buf, len)
        }
    }))
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetUUID(
    device: nvmlDevice_t,
    buf: *mut c_char,
    len: c_uint,
) -> nvmlReturn_t {
    answer(gpu_and(device).and_then(|(gpu, t)| match t {
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

#[no_mangle]
pub extern "C" fn nvmlDeviceGetMemoryInfo_v2(
    device: nvmlDevice_t,
    memory: *mut nvmlMemory_v2_t,
) -> nvmlReturn_t {
    answer(gpu_and(device).map(|(gpu, t)| {
        let total = gpu.capacity_mib(t) * MIB;
        let used = gpu.used_mib(t, None) * MIB;
        unsafe {
            (*memory).total = total;
            (*memory).reserved = 0;
            (*memory).used = used;
            (*memory).free = total.saturating_sub(used);
        }
    }))
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetMigMode(
    device: nvmlDevice_t,
    current: *mut c_uint,
    pending: *mut c_uint,
) -> nvmlReturn_t {
    answer(gpu_and(device).and_then(|(gpu, t)| {
        if t != Target::Gpu {
            return Err(NOT_SUPPORTED);
        }
        unsafe {
            *current = c_uint::from(gpu.mig_current);
            *pending = c_uint::from(gpu.mig_pending);
        }
        Ok(())
    }))
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetMaxMigDeviceCount(
    device: nvmlDevice_t,
    count: *mut c_uint,
) -> nvmlReturn_t {
    // Seven on every GPU migbench knows (docs/mig.md).
    answer(gpu_and(device).map(|_| unsafe { *count = 7 }))
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetMigDeviceHandleByIndex(
    device: nvmlDevice_t,
    index: c_uint,
    mig: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    answer(gpu_and(device).and_then(|(gpu, _)| {
        if !gpu.mig_current {
            return Err(NOT_SUPPORTED);
        }
        let (g, c) = *gpu.mig_devices().get(index as usize).ok_or(NOT_FOUND)?;
        unsafe { *mig = handle(Target::Mig { gi: g.id, ci: c.id }) };
        Ok(())
    }))
}

fn instance_id(device: nvmlDevice_t, id: *mut c_uint, pick: fn(u32, u32) -> u32) -> nvmlReturn_t {
    answer(gpu_and(device).and_then(|(_, t)| match t {
        Target::Gpu => Err(NOT_SUPPORTED),
        Target::Mig { gi, ci } => {
            unsafe { *id = pick(gi, ci) };
            Ok(())
        }
    }))
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetGpuInstanceId(
    device: nvmlDevice_t,
    id: *mut c_uint,
) -> nvmlReturn_t {
    instance_id(device, id, |gi, _| gi)
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetComputeInstanceId(
    device: nvmlDevice_t,
    id: *mut c_uint,
) -> nvmlReturn_t {
    instance_id(device, id, |_, ci| ci)
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetUtilizationRates(
    device: nvmlDevice_t,
    rates: *mut nvmlUtilization_t,
) -> nvmlReturn_t {
    answer(gpu_and(device).and_then(|(gpu, _)| {
        // Not supported with MIG on (docs/mig.md).
        if gpu.mig_current {
            return Err(NOT_SUPPORTED);
        }
        let busy = !state::procs().is_empty();
        unsafe {
            (*rates).gpu = if busy { 100 } else { 0 };
            (*rates).memory = 0;
        }
        Ok(())
    }))
}

/// The processes on `device` (all of the GPU's, or those of one MIG device) with a plain compute
/// context, or with an MPS one: NVML lists MPS clients apart.
fn list_processes(
    device: nvmlDevice_t,
    count: *mut c_uint,
    infos: *mut nvmlProcessInfo_t,
    mps: bool,
) -> nvmlReturn_t {
    answer(gpu_and(device).and_then(|(gpu, t)| {
        // NVML answers for the whole GPU in MIG mode only to privileged callers; the stand-in
        // plays an unprivileged one, so callers must ask each MIG device.
        if gpu.mig_current && t == Target::Gpu {
            return Err(NO_PERMISSION);
        }
        let procs: Vec<_> = state::procs()
            .into_iter()
            .filter(|p| p.mps == mps)
            .filter(|p| match t {
                Target::Gpu => true,
                Target::Mig { gi, ci } => p.gi == Some(gi) && p.ci == Some(ci),
            })
            .collect();
        let room = unsafe { *count } as usize;
        unsafe { *count = procs.len() as c_uint };
        if infos.is_null() || room < procs.len() {
            return if procs.is_empty() {
                Ok(())
            } else {
                Err(INSUFFICIENT_SIZE)
            };
        }
        for (i, p) in procs.iter().enumerate() {
            unsafe {
                *infos.add(i) = nvmlProcessInfo_t {
                    pid: p.pid,
                    usedGpuMemory: p.used_mib * MIB,
                    gpuInstanceId: p.gi.unwrap_or(NO_VALUE),
                    computeInstanceId: p.ci.unwrap_or(NO_VALUE),
                };
            }
        }
        Ok(())
    }))
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetComputeRunningProcesses_v3(
    device: nvmlDevice_t,
    count: *mut c_uint,
    infos: *mut nvmlProcessInfo_t,
) -> nvmlReturn_t {
    list_processes(device, count, infos, false)
}

#[no_mangle]
pub extern "C" fn nvmlDeviceGetMPSComputeRunningProcesses_v3(
    device: nvmlDevice_t,
    count: *mut c_uint,
    infos: *mut nvmlProcessInfo_t,
) -> nvmlReturn_t {
    list_processes(device, count, infos, true)
}
