//! Per-MIG SM activity from NVML's GPU Performance Monitoring (GPM, Hopper and later): NVML
//! gives no utilization per MIG instance otherwise (`nvmlDeviceGetUtilizationRates` is not
//! supported with MIG on). A GPM sample is a reading of counters; the SM utilization over an
//! interval is computed from two of them (`nvmlGpmMetricsGet`), so the first sample of each
//! instance has none, and a GPU without GPM has none at all: absent, never 0.

use std::collections::HashMap;
use std::sync::Mutex;

use nvml_wrapper::enums::gpm::GpmMetricId;
use nvml_wrapper::gpm::{gpm_metrics_get, GpmSample};
use nvml_wrapper::Nvml;

use crate::clock::lock;

/// The last GPM sample of each GPU instance, by GPU instance ID.
#[derive(Default)]
pub(super) struct Activity {
    previous: Mutex<HashMap<u32, GpmSample<'static>>>,
}

impl Activity {
    /// The share of GPU instance `gi`'s SMs busy since its last sample, in percent.
    pub(super) fn sm_util(
        &self,
        nvml: &'static Nvml,
        device: &nvml_wrapper::Device<'static>,
        gi: u32,
    ) -> Option<f64> {
        let sample = device.gpm_mig_sample(gi).ok()?;
        let mut previous = lock(&self.previous);
        let before = previous.insert(gi, sample)?;
        let now = previous.get(&gi)?;
        let metrics = gpm_metrics_get(nvml, &before, now, &[GpmMetricId::SmUtil]).ok()?;
        let value = metrics.into_iter().next()?.ok()?.value;
        (value.is_finite() && (0.0..=100.0).contains(&value)).then_some(value)
    }

    /// Forgets every sample: after a layout change an ID may name another instance.
    pub(super) fn forget(&self) {
        lock(&self.previous).clear();
    }
}
