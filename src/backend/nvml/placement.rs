//! Where jobs can run and what runs there: the MIG instances as nvidia-smi lists them, the
//! devices NVML shows, each placed in its memory slices, and the compute processes on them.
//! Listing runs nvidia-smi, far too slow for every sample, so each listing is kept until the
//! next change.

use nvml_wrapper::struct_wrappers::device::ProcessInfo;

use super::commands::{self, MigIds};
use super::discover::{mig_devices_of, MigDevice};
use super::library::{device_processes, nvml_error};
use super::{exec, smi_parse, NvmlBackend};
use crate::backend::Device;
use crate::clock::lock;
use crate::error::{Error, Result};
use crate::layout::placed_name;

/// A device jobs can run on: the whole GPU, or a MIG device.
#[derive(Debug, Clone)]
pub(super) struct Placed {
    pub(super) device: Device,
    pub(super) mig: bool,
}

impl NvmlBackend {
    /// The GPU instances now, from `nvidia-smi mig -lgi`, and the compute instances of each.
    pub(super) fn listed_instances(&self) -> Result<MigIds> {
        let mut cache = lock(&self.listed);
        if let Some(ids) = &*cache {
            return Ok(ids.clone());
        }
        let ids = self.list_instances()?;
        *cache = Some(ids.clone());
        Ok(ids)
    }

    pub(super) fn list_instances(&self) -> Result<MigIds> {
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
    pub(super) fn smi(&self, args: &[&str]) -> Result<String> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let purpose = format!("list {}", args.join(" "));
        exec::list(&commands::smi(self.index, &args, purpose, false))
    }

    /// This GPU's GPU instances, from `nvidia-smi mig -lgi`, in slice order.
    pub(super) fn listed_gpu_instances(&self) -> Result<Vec<smi_parse::ListedGpuInstance>> {
        let mut gis = smi_parse::parse_gpu_instances(&self.smi(&["mig", "-lgi"])?)
            .map_err(|e| Error::Harness(format!("cannot read `nvidia-smi mig -lgi`: {e}")))?;
        gis.retain(|g| g.gpu == self.index);
        gis.sort_by_key(|g| g.start);
        Ok(gis)
    }

    pub(super) fn mig_devices(&self) -> Result<Vec<MigDevice>> {
        mig_devices_of(self.nvml, &self.device()?)
    }

    /// The names `CUDA_VISIBLE_DEVICES` can give this GPU: its index and UUID, and the UUIDs of
    /// its MIG devices now.
    pub(super) fn device_names(&self) -> Vec<String> {
        let migs = self.mig_devices().unwrap_or_default();
        [self.index.to_string(), self.uuid.clone()]
            .into_iter()
            .chain(migs.into_iter().map(|m| m.uuid))
            .collect()
    }

    /// Where jobs can run now: the whole GPU, or each MIG device in slice order.
    pub(super) fn placed(&self) -> Result<Vec<Placed>> {
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

    pub(super) fn placed_mig_devices(&self) -> Result<Vec<Placed>> {
        let listed = self.listed_gpu_instances()?;
        let migs = self.mig_devices()?;
        // NVML's MIG device handles can lag behind instances another process made or destroyed
        // (libcudacxx#224): jobs would then go to too few devices, or to ones that are gone.
        let from_nvml: std::collections::BTreeSet<(u32, u32)> =
            migs.iter().map(|m| (m.gi_id, m.ci_id)).collect();
        let from_smi = self.listed_instances()?.compute_instance_ids();
        if from_nvml != from_smi {
            let show = |s: &std::collections::BTreeSet<(u32, u32)>| {
                let ids: Vec<String> = s.iter().map(|(g, c)| format!("GI {g} CI {c}")).collect();
                if ids.is_empty() {
                    "none".to_string()
                } else {
                    ids.join(", ")
                }
            };
            return Err(Error::Harness(format!(
                "NVML's MIG devices on GPU {} ({}) are not the compute instances `nvidia-smi mig \
                 -lci` lists ({}): NVML's view of MIG is stale, so jobs cannot be placed",
                self.index,
                show(&from_nvml),
                show(&from_smi)
            )));
        }
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

    /// The compute processes on the GPU, each with the UUID of the device it runs on. With MIG
    /// on, each MIG device is asked for its own: NVML gives the whole GPU's list in MIG mode only
    /// to privileged callers (nvmlDeviceGetComputeRunningProcesses_v3), and a MIG device's list
    /// needs no matching of GPU and compute instance IDs.
    /// Each with whether NVML listed it as an MPS client.
    pub(super) fn processes(&self, placed: &[Placed]) -> Result<Vec<(ProcessInfo, String, bool)>> {
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
        let mut out: Vec<(ProcessInfo, String, bool)> = Vec::new();
        for (device, uuid) in devices {
            for (p, mps) in device_processes(&device)? {
                if !out.iter().any(|(q, ..)| q.pid == p.pid) {
                    out.push((p, uuid.to_string(), mps));
                }
            }
        }
        Ok(out)
    }
}
