//! What GPUs and MIG devices this machine has (`migbench discover`).

use super::library::{cuda_version, nvml, nvml_error, raw_id, GIB};
use nvml_wrapper::Nvml;

use crate::error::Result;

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
            model: super::identify(&device, &name)
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

/// The MIG devices of `device` (none when MIG is off), with their GPU and compute instance IDs.
pub(super) fn mig_devices_of(nvml: &Nvml, device: &nvml_wrapper::Device) -> Result<Vec<MigDevice>> {
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
pub(super) struct MigDevice {
    pub(super) uuid: String,
    pub(super) gi_id: u32,
    pub(super) ci_id: u32,
    pub(super) total_gib: f64,
}
