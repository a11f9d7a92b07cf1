//! How fast a simulated job runs beside its neighbours: one model per way of sharing, each with
//! its own parameter, because the modes share differently.
//!
//! A job's time is split the way the hardware splits it (docs/advise.md, "The sharing model"):
//!
//! `T / T_full = host + bandwidth / b + (1 − host − bandwidth) / c`
//!
//! - **host** (`host_fraction`): the part of its time alone on the whole reference GPU the GPU does
//!   not speed up (pre- and post-processing on the CPU, weights offloaded to the host). Sharing
//!   the GPU does not slow it.
//! - **bandwidth** (`bandwidth_fraction`): the part bound by memory bandwidth; `b` is the share
//!   of the reference GPU's bandwidth the job gets: a MIG instance's memory slices ÷ the GPU's,
//!   divided among the jobs running at once in the same memory pool (MPS clients, CIs of one
//!   GI); under time-slicing a job has its device's bandwidth while its context runs.
//! - the rest is compute-bound; `c` is the compute speed of the single-exponent model:
//!   - **MIG** (`alpha`): at a share `s` of the reference GPU's SMs, `s^alpha`;
//!   - **MPS** (`mps_exponent`, β): `n` clients of one MPS server share all of the device's SMs
//!     at once and each can use what the others leave idle, so a client is not held to `1/n` of
//!     the SMs as a MIG slice would be: `s^alpha × c^β`, `c = min(1/n, active-thread cap)`; β <
//!     `alpha` when co-located kernels fill each other's gaps, β = 1 when they only queue. The
//!     default (no MPS run to fit it on) is `alpha`.
//! - **time-slicing** (`timeslice_efficiency`, η): the device runs one context at a time, so the
//!   GPU part (bandwidth and compute) of each of `n ≥ 2` jobs takes `n/η` times as long; `1 − η`
//!   is the time lost to context switches (default 1).
//! - **MPS interference** (`mps_interference`, γ): co-located kernels evict each other's caches
//!   and contend for the memory system beyond their bandwidth shares; each of the `n − 1`
//!   co-runners adds γ to the GPU part: × `(1 + γ (n − 1))` (default 0).
//!
//! With `host_fraction`, `bandwidth_fraction` and `mps_interference` 0 (their defaults) the
//! speed is the single-exponent model's exactly, computed as before, so workload files without
//! the new terms give the same figures. A job alone on its device runs at the device's speed
//! whatever the mode. These functions are the simulator's physics; `migbench calibrate` fits
//! their parameters with the same functions.

use serde::{Deserialize, Serialize};

/// A workload's sharing parameters, resolved to one number each.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sharing {
    pub alpha: f64,
    pub mps_exponent: f64,
    pub timeslice_efficiency: f64,
    /// Part of the time alone on the reference GPU that the GPU does not speed up.
    #[serde(default)]
    pub host_fraction: f64,
    /// Part of the time alone on the reference GPU bound by memory bandwidth.
    #[serde(default)]
    pub bandwidth_fraction: f64,
    /// What each MPS co-runner adds to the GPU part of a client's time.
    #[serde(default)]
    pub mps_interference: f64,
}

/// How a device is shared at one moment, as a job on it sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Context {
    /// SMs of the device (the whole GPU, or a MIG compute instance).
    pub device_sm: u32,
    /// Active jobs on the device, this one included (at least 1).
    pub jobs: usize,
    /// `Some(cap)` when an MPS server shares the device: the active-thread fraction in (0, 1].
    pub mps: Option<f64>,
    /// The device's memory slices ÷ its GPU's (1 for a whole GPU).
    pub memory_share: f64,
    /// SMs of the whole GPU the device is on.
    pub gpu_sm: u32,
    /// Active jobs in the device's memory pool (its GPU instance, or the whole GPU), this one
    /// included: they share its bandwidth.
    pub pool_jobs: usize,
}

impl Context {
    /// A whole GPU of `sm` SMs (or a device of `sm` SMs with all its GPU's memory slices) with
    /// `jobs` on it.
    pub fn whole(sm: u32, jobs: usize, mps: Option<f64>) -> Context {
        Context {
            device_sm: sm,
            jobs,
            mps,
            memory_share: 1.0,
            gpu_sm: sm,
            pool_jobs: jobs,
        }
    }
}

impl Sharing {
    /// A workload's sharing parameters, with the documented defaults for those it does not give.
    pub fn of(profile: &crate::workload::SimProfile) -> Sharing {
        let mut s = Sharing::from_alpha(profile.alpha);
        if let Some(b) = profile.mps_exponent {
            s.mps_exponent = b;
        }
        if let Some(e) = profile.timeslice_efficiency {
            s.timeslice_efficiency = e;
        }
        s.host_fraction = profile.host_fraction.unwrap_or(0.0);
        s.bandwidth_fraction = profile.bandwidth_fraction.unwrap_or(0.0);
        s.mps_interference = profile.mps_interference.unwrap_or(0.0);
        s
    }

    /// The defaults for a workload with only its MIG exponent known.
    pub fn from_alpha(alpha: f64) -> Sharing {
        Sharing {
            alpha,
            mps_exponent: alpha,
            timeslice_efficiency: 1.0,
            host_fraction: 0.0,
            bandwidth_fraction: 0.0,
            mps_interference: 0.0,
        }
    }

    /// Whether the terms beyond the single-exponent model are all 0.
    fn single_exponent(&self) -> bool {
        self.host_fraction == 0.0 && self.bandwidth_fraction == 0.0 && self.mps_interference == 0.0
    }

    /// Work seconds (on the reference GPU alone) per simulated second in `ctx`.
    pub fn speed(&self, ctx: Context, reference_sm: u32) -> f64 {
        let device = (f64::from(ctx.device_sm) / f64::from(reference_sm)).powf(self.alpha);
        let n = ctx.jobs.max(1) as f64;
        let time_sliced = ctx.mps.is_none() && ctx.jobs > 1;
        if self.single_exponent() {
            return match ctx.mps {
                Some(cap) => device * cap.min(1.0 / n).powf(self.mps_exponent),
                None if ctx.jobs <= 1 => device,
                None => device * self.timeslice_efficiency / n,
            };
        }
        let compute = match ctx.mps {
            Some(cap) => device * cap.min(1.0 / n).powf(self.mps_exponent),
            None => device,
        };
        // Jobs drawing on the pool's bandwidth at once: time-sliced ones on this device take
        // turns, so they count as one.
        let at_once = if time_sliced {
            ctx.pool_jobs.max(ctx.jobs) - ctx.jobs + 1
        } else {
            ctx.pool_jobs.max(1)
        };
        // Another GPU model's bandwidth is not in the catalog: taken to scale as its SMs.
        let bandwidth =
            ctx.memory_share * f64::from(ctx.gpu_sm) / f64::from(reference_sm) / at_once as f64;
        let gpu_part = self.bandwidth_fraction / bandwidth
            + (1.0 - self.host_fraction - self.bandwidth_fraction) / compute;
        let stretch = match ctx.mps {
            Some(_) => 1.0 + self.mps_interference * (n - 1.0),
            None if time_sliced => n / self.timeslice_efficiency,
            None => 1.0,
        };
        1.0 / (self.host_fraction + gpu_part * stretch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(device_sm: u32, jobs: usize, mps: Option<f64>) -> Context {
        Context {
            gpu_sm: 132,
            ..Context::whole(device_sm, jobs, mps)
        }
    }

    #[test]
    fn each_mode_has_its_own_parameter() {
        let s = Sharing {
            mps_exponent: 0.8,
            timeslice_efficiency: 0.9,
            ..Sharing::from_alpha(0.5)
        };
        // MIG slice alone: (33/132)^0.5.
        assert!((s.speed(ctx(33, 1, None), 132) - 0.5).abs() < 1e-12);
        // Two MPS clients on the whole GPU: (1/2)^0.8, whatever alpha is.
        assert!((s.speed(ctx(132, 2, Some(1.0)), 132) - 0.5f64.powf(0.8)).abs() < 1e-12);
        // A thread cap below 1/n binds.
        assert!((s.speed(ctx(132, 2, Some(0.25)), 132) - 0.25f64.powf(0.8)).abs() < 1e-12);
        // Four time-sliced jobs: 0.9 / 4 each.
        assert!((s.speed(ctx(132, 4, None), 132) - 0.225).abs() < 1e-12);
        // Alone, the mode does not matter.
        assert_eq!(s.speed(ctx(132, 1, None), 132), 1.0);
        assert_eq!(s.speed(ctx(132, 1, Some(1.0)), 132), 1.0);
    }

    #[test]
    fn the_defaults_are_the_single_exponent_model() {
        // Before per-mode parameters, MPS used (sm * min(cap, 1/n) / ref)^alpha and
        // time-slicing (sm / ref)^alpha / n: the defaults keep both.
        let s = Sharing::from_alpha(0.669);
        for (sm, n, cap) in [(132, 3, 1.0), (60, 2, 0.4), (132, 1, 1.0)] {
            let old = (f64::from(sm) * f64::min(cap, 1.0 / n as f64) / 132.0).powf(0.669);
            let c = ctx(sm, n, Some(cap));
            assert!((s.speed(c, 132) - old).abs() < 1e-12);
            let ts = Context { mps: None, ..c };
            let old_ts = (f64::from(sm) / 132.0).powf(0.669) / n as f64;
            assert!((s.speed(ts, 132) - old_ts).abs() < 1e-12);
        }
    }

    /// The new terms at 0 give the single-exponent figures bit for bit, whatever the memory
    /// slices and pool: the shipped workloads (which give none of them) keep their figures.
    #[test]
    fn without_the_new_terms_memory_slices_change_nothing() {
        let s = Sharing {
            mps_exponent: 0.8,
            timeslice_efficiency: 0.9,
            ..Sharing::from_alpha(0.669)
        };
        for (sm, jobs, mps) in [
            (60, 1, None),
            (132, 3, Some(0.5)),
            (16, 2, None),
            (64, 2, Some(1.0)),
        ] {
            let plain = s.speed(ctx(sm, jobs, mps), 132);
            for (memory_share, pool_jobs) in [(0.5, 1), (0.125, 4), (1.0, 7)] {
                let c = Context {
                    memory_share,
                    pool_jobs,
                    ..ctx(sm, jobs, mps)
                };
                assert_eq!(s.speed(c, 132).to_bits(), plain.to_bits());
            }
        }
    }

    #[test]
    fn the_bandwidth_part_follows_memory_slices() {
        // A100 80GB: 108 SMs; 3g.40gb has 42 SMs and 4 of 8 memory slices, 1g.10gb 14 and 1.
        let a100 = |sm, memory_share, jobs, mps| Context {
            device_sm: sm,
            jobs,
            mps,
            memory_share,
            gpu_sm: 108,
            pool_jobs: jobs,
        };
        let bound = Sharing {
            bandwidth_fraction: 1.0,
            ..Sharing::from_alpha(1.0)
        };
        assert!((bound.speed(a100(42, 0.5, 1, None), 108) - 0.5).abs() < 1e-12);
        assert!((bound.speed(a100(14, 0.125, 1, None), 108) - 0.125).abs() < 1e-12);
        // Two MPS clients on the whole GPU share its bandwidth.
        assert!((bound.speed(a100(108, 1.0, 2, Some(1.0)), 108) - 0.5).abs() < 1e-12);
        // Half and half on 3g.40gb: 1 / (0.5 / 0.5 + 0.5 * 108 / 42).
        let half = Sharing {
            bandwidth_fraction: 0.5,
            ..Sharing::from_alpha(1.0)
        };
        let want = 1.0 / (1.0 + 0.5 * 108.0 / 42.0);
        assert!((half.speed(a100(42, 0.5, 1, None), 108) - want).abs() < 1e-12);
        // Two jobs in two CIs of one GI share the GI's bandwidth.
        let two_cis = Context {
            pool_jobs: 2,
            ..a100(42, 0.5, 1, None)
        };
        assert!((bound.speed(two_cis, 108) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn host_work_is_not_slowed_by_sharing() {
        let host = Sharing {
            host_fraction: 1.0,
            ..Sharing::from_alpha(1.0)
        };
        for c in [ctx(16, 1, None), ctx(132, 3, Some(1.0)), ctx(132, 3, None)] {
            assert!((host.speed(c, 132) - 1.0).abs() < 1e-12);
        }
        // Half host-bound, two time-sliced jobs: 0.5 + 0.5 * 2 = 1.5 seconds a work second.
        let half = Sharing {
            host_fraction: 0.5,
            ..Sharing::from_alpha(1.0)
        };
        assert!((half.speed(ctx(132, 2, None), 132) - 1.0 / 1.5).abs() < 1e-12);
        // ... and under MPS with beta = 1: the same, as the GPU part is halved either way.
        assert!((half.speed(ctx(132, 2, Some(1.0)), 132) - 1.0 / 1.5).abs() < 1e-12);
    }

    #[test]
    fn each_mps_co_runner_adds_its_interference() {
        let s = Sharing {
            mps_interference: 0.1,
            ..Sharing::from_alpha(1.0)
        };
        // Three clients: (1/3 of the SMs) and 2 co-runners at 10 % each.
        let want = 1.0 / (3.0 * 1.2);
        assert!((s.speed(ctx(132, 3, Some(1.0)), 132) - want).abs() < 1e-12);
        // Alone, or without MPS, there is no interference.
        assert_eq!(s.speed(ctx(132, 1, Some(1.0)), 132), 1.0);
        assert!((s.speed(ctx(132, 3, None), 132) - 1.0 / 3.0).abs() < 1e-12);
    }
}
