//! A variant's energy: the GPU's total-energy counter read around its jobs, or its power samples
//! integrated where it has no counter, and each job's share of it (docs/energy.md).
//!
//! The counter is the whole GPU's, under MIG and MPS too: NVML has no energy per MIG instance or
//! per process. A job's share is therefore an attribution, in proportion to the SM-seconds it
//! held (the SMs of the device it ran on, times its run time), and labelled so.

use crate::backend::{Backend, BackendKind, Scope};
use crate::catalog::GpuModel;
use crate::results::{EnergySource, JobRecord};
use crate::sampler::Sample;

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
    /// Reads the counter as the jobs start.
    pub fn open(backend: &dyn Backend, t0: f64) -> EnergyWindow {
        EnergyWindow {
            start: read(backend, t0),
            end: None,
        }
    }

    /// Reads it again once they are over.
    pub fn close(&mut self, backend: &dyn Backend, t0: f64) {
        self.end = Some(read(backend, t0));
    }

    /// The energy over the window: the counter's difference, else the GPU's power samples
    /// integrated (trapezoids) over it; None when neither is there, never 0 for unknown.
    pub fn energy(&self, backend: BackendKind, samples: &[Sample]) -> Option<Energy> {
        let end = self.end?;
        let seconds = (end.t - self.start.t).max(0.0);
        if let (Some(a), Some(b)) = (self.start.joules, end.joules) {
            // A counter that went back (the driver reloaded) says nothing of the window.
            if b >= a {
                let source = match backend {
                    BackendKind::Sim => EnergySource::Model,
                    BackendKind::Nvml => EnergySource::Counter,
                };
                return Some(Energy {
                    joules: b - a,
                    source,
                    seconds,
                });
            }
        }
        let points: Vec<(f64, f64)> = samples
            .iter()
            .filter(|s| s.t >= self.start.t && s.t <= end.t)
            .filter_map(|s| {
                s.rows
                    .iter()
                    .find(|r| r.scope == Scope::Gpu)
                    .and_then(|r| r.power_w)
                    .filter(|w| w.is_finite() && *w >= 0.0)
                    .map(|w| (s.t, w))
            })
            .collect();
        if points.len() < 2 {
            return None;
        }
        let joules = points
            .windows(2)
            .map(|p| (p[1].0 - p[0].0) * (p[0].1 + p[1].1) / 2.0)
            .sum();
        Some(Energy {
            joules,
            source: EnergySource::PowerSamples,
            seconds: points[points.len() - 1].0 - points[0].0,
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

/// Shares `energy` among the jobs that ran, in proportion to their SM-seconds.
pub(super) fn share(jobs: &mut [JobRecord], gpu: &GpuModel, energy: &Energy) {
    let weight = |j: &JobRecord| -> f64 {
        let seconds = match (j.start_s, j.end_s) {
            (Some(start), Some(end)) if end > start => end - start,
            _ => 0.0,
        };
        f64::from(device_sm(gpu, j.instance_profile.as_deref())) * seconds
    };
    let total: f64 = jobs.iter().map(weight).sum();
    if total <= 0.0 {
        return;
    }
    for job in jobs.iter_mut() {
        let w = weight(job);
        if w > 0.0 {
            job.energy_j = Some(energy.joules * w / total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::SampleRow;
    use crate::catalog::Catalog;

    fn gpu_row(power_w: Option<f64>) -> SampleRow {
        SampleRow {
            scope: Scope::Gpu,
            power_w,
            ..SampleRow::process(0, "GPU".into(), 0.0)
        }
    }

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
        let samples: Vec<Sample> = [(10.0, 100.0), (15.0, 300.0), (20.0, 300.0)]
            .into_iter()
            .map(|(t, w)| Sample {
                t,
                rows: vec![gpu_row(Some(w))],
            })
            .collect();
        let counted = window(Some(5_000.0), Some(7_500.0))
            .energy(BackendKind::Nvml, &samples)
            .unwrap();
        assert_eq!(counted.joules, 2_500.0);
        assert_eq!(counted.source, EnergySource::Counter);
        assert_eq!(counted.mean_power_w(), Some(250.0));
        // No counter, or one that went back: 5 s at 100 to 300 W, then 5 s at 300 W.
        for (a, b) in [(None, None), (Some(9.0), Some(1.0))] {
            let integrated = window(a, b).energy(BackendKind::Nvml, &samples).unwrap();
            assert_eq!(integrated.joules, 1_000.0 + 1_500.0);
            assert_eq!(integrated.source, EnergySource::PowerSamples);
        }
        // Neither: unknown, not zero.
        let unpowered: Vec<Sample> = samples
            .iter()
            .map(|s| Sample {
                t: s.t,
                rows: vec![gpu_row(None)],
            })
            .collect();
        assert_eq!(
            window(None, None).energy(BackendKind::Nvml, &unpowered),
            None
        );
    }

    #[test]
    fn jobs_share_by_sm_seconds() {
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
        share(&mut jobs, gpu, &energy);
        assert_eq!(jobs[0].energy_j, Some(640.0));
        assert_eq!(jobs[1].energy_j, Some(1_200.0));
    }
}
