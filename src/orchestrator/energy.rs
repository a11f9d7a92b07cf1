//! A variant's energy: the GPU's total-energy counter read around its jobs, or its power samples
//! integrated where it has no counter, and each job's share of it (docs/energy.md).
//!
//! The counter is the whole GPU's, under MIG and MPS too: NVML has no energy per MIG instance or
//! per process. A job's share is therefore an attribution, labelled so: by the measured SM
//! activity of its MIG instance where NVML's GPM gives it, else in proportion to the
//! SM-seconds it held (the SMs of the device it ran on, times its run time).

use crate::backend::{Backend, BackendKind};
use crate::catalog::GpuModel;
use std::collections::HashMap;

use crate::results::{EnergySource, EnergySplit, JobRecord};
use crate::sampler::{Sampler, WindowIntegral};

/// The counter and the clock at the start and the end of a variant's jobs.
#[derive(Debug, Clone, Copy)]
pub(super) struct EnergyWindow {
    start: Reading,
    end: Option<Reading>,
}

#[derive(Debug, Clone, Copy)]
struct Reading {
    /// Seconds since the run started.
    t: f64,
    joules: Option<f64>,
}

/// The energy of one variant repetition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Energy {
    pub joules: f64,
    pub source: EnergySource,
    /// The window's length in seconds.
    pub seconds: f64,
}

impl Energy {
    pub fn mean_power_w(&self) -> Option<f64> {
        (self.seconds > 0.0).then(|| self.joules / self.seconds)
    }
}

fn read(backend: &dyn Backend, t0: f64) -> Reading {
    Reading {
        t: backend.now() - t0,
        joules: backend.energy_j().filter(|j| j.is_finite() && *j >= 0.0),
    }
}

impl EnergyWindow {
    /// Reads the counter as the jobs start, and has `sampler` integrate power from then.
    pub fn open(backend: &dyn Backend, t0: f64, sampler: &Sampler) -> EnergyWindow {
        let start = read(backend, t0);
        sampler.power_from(start.t);
        EnergyWindow { start, end: None }
    }

    /// Reads it again once they are over.
    pub fn close(&mut self, backend: &dyn Backend, t0: f64, sampler: &Sampler) {
        let end = read(backend, t0);
        sampler.power_until(end.t);
        self.end = Some(end);
    }

    /// The energy over the window: the counter's difference, else the GPU's power samples
    /// integrated over it; None when neither is there, never 0 for unknown.
    pub fn energy(&self, backend: BackendKind, power: &WindowIntegral) -> Option<Energy> {
        let end = self.end?;
        if let (Some(a), Some(b)) = (self.start.joules, end.joules) {
            // A counter that went back (the driver reloaded) says nothing of the window.
            if b >= a {
                let source = match backend {
                    BackendKind::Sim => EnergySource::Model,
                    BackendKind::Nvml | BackendKind::Imported => EnergySource::Counter,
                };
                return Some(Energy {
                    joules: b - a,
                    source,
                    seconds: (end.t - self.start.t).max(0.0),
                });
            }
        }
        Some(Energy {
            joules: power.total,
            source: EnergySource::PowerSamples,
            seconds: power.seconds()?,
        })
    }
}

/// The SMs of the device a job ran on: its MIG instance's (a GPU or compute instance profile),
/// or the whole GPU's.
fn device_sm(gpu: &GpuModel, profile: Option<&str>) -> u32 {
    let Some(name) = profile else {
        return gpu.sm_count;
    };
    if let Ok(gi) = gpu.profile(name) {
        return gi.sm;
    }
    gpu.profiles
        .iter()
        .find_map(|gi| gi.compute_profile(name).map(|ci| gi.ci_sm(ci)))
        .unwrap_or(gpu.sm_count)
}

/// Shares `energy` among the jobs that ran; says how. Where every job that ran was on a MIG
/// instance with measured SM activity (`activity`: busy seconds by instance UUID, from GPM),
/// each instance's part is its busy SM-seconds, shared among its jobs by SM-seconds; otherwise
/// every job's part is its SM-seconds. `None` when no job ran for any time.
pub(super) fn share(
    jobs: &mut [JobRecord],
    gpu: &GpuModel,
    energy: &Energy,
    activity: &HashMap<String, WindowIntegral>,
) -> Option<EnergySplit> {
    let sm_seconds = |j: &JobRecord| -> f64 {
        let seconds = match (j.start_s, j.end_s) {
            (Some(start), Some(end)) if end > start => end - start,
            _ => 0.0,
        };
        f64::from(device_sm(gpu, j.instance_profile.as_deref())) * seconds
    };
    let by_sm_seconds: Vec<f64> = jobs.iter().map(sm_seconds).collect();
    let measured = |j: &JobRecord| activity.get(j.instance_uuid.as_deref()?);
    let by_activity = jobs
        .iter()
        .zip(&by_sm_seconds)
        .all(|(j, &w)| w <= 0.0 || measured(j).is_some())
        .then(|| {
            let mut per_instance: HashMap<&str, f64> = HashMap::new();
            for (j, &w) in jobs.iter().zip(&by_sm_seconds) {
                if let Some(uuid) = j.instance_uuid.as_deref() {
                    *per_instance.entry(uuid).or_default() += w;
                }
            }
            jobs.iter()
                .zip(&by_sm_seconds)
                .map(|(j, &w)| {
                    let (Some(busy), Some(uuid)) = (measured(j), j.instance_uuid.as_deref()) else {
                        return 0.0;
                    };
                    let instance_sm = f64::from(device_sm(gpu, j.instance_profile.as_deref()));
                    busy.total * instance_sm * w / per_instance[uuid]
                })
                .collect::<Vec<f64>>()
        })
        .filter(|w| w.iter().sum::<f64>() > 0.0);
    let (weights, split) = match by_activity {
        Some(w) => (w, EnergySplit::SmActivity),
        None => (by_sm_seconds, EnergySplit::SmSeconds),
    };
    let total: f64 = weights.iter().sum();
    if total <= 0.0 {
        return None;
    }
    for (job, w) in jobs.iter_mut().zip(weights) {
        if w > 0.0 {
            job.energy_j = Some(energy.joules * w / total);
        }
    }
    Some(split)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn window(start: Option<f64>, end: Option<f64>) -> EnergyWindow {
        EnergyWindow {
            start: Reading {
                t: 10.0,
                joules: start,
            },
            end: Some(Reading {
                t: 20.0,
                joules: end,
            }),
        }
    }

    #[test]
    fn the_counter_wins_and_power_samples_stand_in_without_it() {
        // Samples before and after the window do not count.
        let mut power = WindowIntegral::between(10.0, Some(20.0));
        for (t, w) in [
            (5.0, 999.0),
            (10.0, 100.0),
            (15.0, 300.0),
            (20.0, 300.0),
            (25.0, 999.0),
        ] {
            power.add(t, w);
        }
        let counted = window(Some(5_000.0), Some(7_500.0))
            .energy(BackendKind::Nvml, &power)
            .unwrap();
        assert_eq!(counted.joules, 2_500.0);
        assert_eq!(counted.source, EnergySource::Counter);
        assert_eq!(counted.mean_power_w(), Some(250.0));
        // No counter, or one that went back: 5 s at 100 to 300 W, then 5 s at 300 W.
        for (a, b) in [(None, None), (Some(9.0), Some(1.0))] {
            let integrated = window(a, b).energy(BackendKind::Nvml, &power).unwrap();
            assert_eq!(integrated.joules, 1_000.0 + 1_500.0);
            assert_eq!(integrated.source, EnergySource::PowerSamples);
            assert_eq!(integrated.seconds, 10.0);
        }
        // Neither: unknown, not zero.
        let unpowered = WindowIntegral::between(10.0, Some(20.0));
        assert_eq!(
            window(None, None).energy(BackendKind::Nvml, &unpowered),
            None
        );
    }

    #[test]
    fn jobs_share_by_measured_activity_where_every_instance_has_it_else_by_sm_seconds() {
        let gpu = Catalog::builtin().gpu("h100-80gb").unwrap();
        let job = |profile: &str, start: f64, end: f64| JobRecord {
            variant: "v".into(),
            repetition: 0,
            job: 0,
            mode: crate::mode::SharingMode::Mig,
            workload: "w".into(),
            unit: "video".into(),
            instance_profile: Some(profile.to_string()),
            instance_uuid: None,
            start_s: Some(start),
            end_s: Some(end),
            duration_s: Some(end - start),
            exit_code: Some(0),
            pid: None,
            outcome: crate::results::Outcome::Ok,
            vram_peak_gib: None,
            vram_constant_gib: None,
            energy_j: None,
            reason: None,
            log: None,
        };
        // A 4g.40gb (64 SMs) for 10 s and a 3g.40gb (60 SMs) for 20 s.
        let mut jobs = vec![job("4g.40gb", 0.0, 10.0), job("3g.40gb", 0.0, 20.0)];
        let energy = Energy {
            joules: 1_840.0,
            source: EnergySource::Counter,
            seconds: 20.0,
        };
        assert_eq!(
            share(&mut jobs, gpu, &energy, &HashMap::new()),
            Some(EnergySplit::SmSeconds)
        );
        assert_eq!(jobs[0].energy_j, Some(640.0));
        assert_eq!(jobs[1].energy_j, Some(1_200.0));

        // With GPM: the 4g.40gb busy 2 of its 10 s, the 3g.40gb all 20 s: 128 and 1,200 busy
        // SM-seconds.
        let busy = |seconds: f64| {
            let mut w = WindowIntegral::between(0.0, Some(20.0));
            w.add(0.0, seconds / 20.0);
            w.add(20.0, seconds / 20.0);
            w
        };
        jobs[0].instance_uuid = Some("MIG-a".into());
        jobs[1].instance_uuid = Some("MIG-b".into());
        let activity = HashMap::from([
            ("MIG-a".to_string(), busy(2.0)),
            ("MIG-b".to_string(), busy(20.0)),
        ]);
        assert_eq!(
            share(&mut jobs, gpu, &energy, &activity),
            Some(EnergySplit::SmActivity)
        );
        let a = jobs[0].energy_j.unwrap();
        let b = jobs[1].energy_j.unwrap();
        assert!((a - 1_840.0 * 128.0 / 1_328.0).abs() < 1e-9, "{a}");
        assert!((a + b - 1_840.0).abs() < 1e-9);
        // One job's instance unmeasured: all by SM-seconds.
        let partial = HashMap::from([("MIG-a".to_string(), busy(2.0))]);
        assert_eq!(
            share(&mut jobs, gpu, &energy, &partial),
            Some(EnergySplit::SmSeconds)
        );
        assert_eq!(jobs[0].energy_j, Some(640.0));
    }
}
