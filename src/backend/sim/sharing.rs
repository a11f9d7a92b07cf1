//! How fast a simulated job runs beside its neighbours: one model per way of sharing, each with
//! its own parameter, because the modes share differently.
//!
//! - **MIG** (`alpha`): a job owns its instance's slices of SMs and memory bandwidth. At a share
//!   `s` of the reference GPU's SMs it runs at `s^alpha` of its whole-GPU speed.
//! - **MPS** (`mps_exponent`, β): `n` clients of one MPS server share all of the device's SMs and
//!   memory bandwidth at once and each can use what the others leave idle, so a client is not
//!   held to `1/n` of the SMs as a MIG slice would be. Each runs at `c^β` of the device's speed,
//!   with `c = min(1/n, active-thread cap)`: β < `alpha` when co-located kernels fill each
//!   other's gaps, β = 1 when they only queue. The default (no MPS run to fit it on) is `alpha`,
//!   the speed a job would have on a MIG slice of the same share.
//! - **Time-slicing** (`timeslice_efficiency`, η): the device runs one context at a time, all SMs
//!   to it, so each of `n ≥ 2` jobs gets `η/n` of its speed on the device; `1 − η` is the time
//!   lost to context switches. The default (no time-sliced run to fit it on) is 1: switches cost
//!   nothing.
//!
//! A job alone on its device runs at the device's speed whatever the mode. These functions are
//! the simulator's physics; `migbench calibrate` fits their parameters with the same functions.

use serde::{Deserialize, Serialize};

/// A workload's sharing parameters, resolved to one number each.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sharing {
    pub alpha: f64,
    pub mps_exponent: f64,
    pub timeslice_efficiency: f64,
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
        s
    }

    /// The defaults for a workload with only its MIG exponent known.
    pub fn from_alpha(alpha: f64) -> Sharing {
        Sharing {
            alpha,
            mps_exponent: alpha,
            timeslice_efficiency: 1.0,
        }
    }

    /// Work seconds (on the reference GPU alone) per simulated second in `ctx`.
    pub fn speed(&self, ctx: Context, reference_sm: u32) -> f64 {
        let device = (f64::from(ctx.device_sm) / f64::from(reference_sm)).powf(self.alpha);
        let n = ctx.jobs.max(1) as f64;
        match ctx.mps {
            Some(cap) => device * cap.min(1.0 / n).powf(self.mps_exponent),
            None if ctx.jobs <= 1 => device,
            None => device * self.timeslice_efficiency / n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_has_its_own_parameter() {
        let s = Sharing {
            alpha: 0.5,
            mps_exponent: 0.8,
            timeslice_efficiency: 0.9,
        };
        let ctx = |device_sm, jobs, mps| Context {
            device_sm,
            jobs,
            mps,
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
            let ctx = Context {
                device_sm: sm,
                jobs: n,
                mps: Some(cap),
            };
            assert!((s.speed(ctx, 132) - old).abs() < 1e-12);
            let ts = Context { mps: None, ..ctx };
            let old_ts = (f64::from(sm) / 132.0).powf(0.669) / n as f64;
            assert!((s.speed(ts, 132) - old_ts).abs() < 1e-12);
        }
    }
}
