//! Loading NVML, and the calls nvml-wrapper does not wrap safely.

use nvml_wrapper::error::NvmlError;
use nvml_wrapper::struct_wrappers::device::ProcessInfo;
use nvml_wrapper::Nvml;
use std::sync::OnceLock;

use crate::error::{Error, Result};

pub(super) const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// NVML, loaded once per process; it lives as long as the process does. `$MIGBENCH_NVML_LIB`
/// names another libnvidia-ml to load (the tests' stand-in driver, or a library outside the
/// loader's path).
pub(super) fn nvml() -> Result<&'static Nvml> {
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

/// Refuses a driver whose NVML corrupts process lists: from 535.43 to 535.86 the `_v3` process
/// queries fill 32-byte entries through a call whose callers (nvml-wrapper among them) read
/// 24-byte ones, so PIDs and memory come out wrong and a buffer sized by count overflows
/// (nvitop PRs #79 and #89, go-nvml#75, pynvml PR #48; docs/nvidia-smi.md).
pub(super) fn check_driver(version: &str) -> Result<()> {
    let mut parts = version.trim().split('.').map(|p| p.parse::<u32>().ok());
    let (Some(Some(major)), Some(Some(minor))) = (parts.next(), parts.next()) else {
        return Ok(());
    };
    if major == 535 && (43..=86).contains(&minor) {
        return Err(Error::Input(format!(
            "NVIDIA driver {version} is in the range 535.43–535.86, whose NVML returns process              lists in entries of the wrong size: migbench would record wrong PIDs and memory.              Update the driver (535.104.05 or later)"
        )));
    }
    Ok(())
}

/// Runs `f` with this process's hold on NVML let go: on Ampere a MIG mode change is refused
/// ("In use by another client") while any other process has NVML open, migbench included, so
/// mig-parted shuts NVML down before it asks, and so does migbench (issue 23). Handles are
/// looked up again by UUID after, as the backend always does; a sample taken meanwhile fails
/// and is skipped.
pub(super) fn without_nvml<T>(nvml: &Nvml, f: impl FnOnce() -> T) -> T {
    let lib = nvml.lib();
    // SAFETY: NVML counts initializations; this gives back the one nvml-wrapper took and takes
    // it again before returning, so the library is initialized whenever nvml-wrapper uses it
    // outside this window.
    let shut = unsafe { lib.nvmlShutdown() } == 0;
    let out = f();
    if shut {
        // SAFETY: as above; an init that fails leaves NVML calls answering "uninitialized".
        unsafe { lib.nvmlInit_v2() };
    }
    out
}

pub(super) fn nvml_error(what: &str) -> impl Fn(NvmlError) -> Error + '_ {
    move |e| Error::Harness(format!("NVML: cannot read {what}: {e}"))
}

pub(super) fn cuda_version(nvml: &Nvml) -> Option<String> {
    nvml.sys_cuda_driver_version().ok().map(|v| {
        format!(
            "{}.{}",
            nvml_wrapper::cuda_driver_version_major(v),
            nvml_wrapper::cuda_driver_version_minor(v)
        )
    })
}

/// A raw NVML getter of one ID of a MIG device handle (GPU or compute instance ID), for which
/// nvml-wrapper has no safe wrapper.
pub(super) type RawIdFn = unsafe extern "C" fn(
    nvml_wrapper_sys::bindings::nvmlDevice_t,
    *mut std::os::raw::c_uint,
) -> nvml_wrapper_sys::bindings::nvmlReturn_t;

pub(super) fn raw_id<E>(
    f: &std::result::Result<RawIdFn, E>,
    mig: &nvml_wrapper::Device,
) -> Option<u32> {
    let f = f.as_ref().ok()?;
    let mut v: std::os::raw::c_uint = 0;
    // SAFETY: a live MIG device handle, and a pointer to a live c_uint for the result.
    let rc = unsafe { f(mig.handle(), &mut v) };
    (rc == 0).then_some(v)
}

/// The processes with a CUDA context on `device`, each with whether it is an MPS client: plain
/// ones, and MPS clients, which NVML lists apart (nvmlDeviceGetMPSComputeRunningProcesses_v3).
pub(super) fn device_processes(device: &nvml_wrapper::Device) -> Result<Vec<(ProcessInfo, bool)>> {
    let mut procs: Vec<(ProcessInfo, bool)> = device
        .running_compute_processes()
        .map_err(nvml_error("the processes"))?
        .into_iter()
        .map(|p| (p, false))
        .collect();
    match device.mps_running_compute_processes() {
        Ok(mps) => procs.extend(mps.into_iter().map(|p| (p, true))),
        // Before Volta, or a driver without it: no MPS clients to list apart.
        Err(NvmlError::NotSupported | NvmlError::FailedToLoadSymbol(_)) => {}
        Err(e) => return Err(nvml_error("the MPS processes")(e)),
    }
    Ok(procs)
}

#[cfg(test)]
mod tests {
    #[test]
    fn drivers_whose_process_lists_are_corrupt_are_refused_and_others_pass() {
        for bad in ["535.43.02", "535.54.03", "535.86.10"] {
            let e = super::check_driver(bad).unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("535.43–535.86"), "{e}");
        }
        for good in [
            "535.42.01",
            "535.104.05",
            "535.261.03",
            "550.54.15",
            "R570",
            "",
        ] {
            assert!(super::check_driver(good).is_ok(), "{good}");
        }
    }
}
