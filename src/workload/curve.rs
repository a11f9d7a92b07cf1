//! A job's memory over its progress, as the simulator replays it: the constant-and-peak profile,
//! or a trace measured on a real run (`migbench calibrate`). `migbench synth` and `advise` both
//! read memory from here, so a simulated run and an advised one hold the same memory at the same
//! point of their work.

use serde::{Deserialize, Serialize};

/// Memory (GiB) as a step function of the fraction of the run done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MemoryCurve {
    /// `constant` all run, `peak` during `[peak_at, peak_at + peak_for)`.
    Levels {
        constant: f64,
        peak: f64,
        peak_at: f64,
        peak_for: f64,
    },
    /// `(fraction, GiB)` in ascending fractions from 0: each level holds until the next point.
    Trace(Vec<(f64, f64)>),
}

impl MemoryCurve {
    /// The memory held at `fraction` of the run.
    pub fn at(&self, fraction: f64) -> f64 {
        match self {
            MemoryCurve::Levels {
                constant,
                peak,
                peak_at,
                peak_for,
            } => {
                if fraction >= *peak_at && fraction < peak_at + peak_for {
                    *peak
                } else {
                    *constant
                }
            }
            MemoryCurve::Trace(points) => points
                .iter()
                .take_while(|(f, _)| *f <= fraction)
                .last()
                .or(points.first())
                .map_or(0.0, |(_, gib)| *gib),
        }
    }

    /// The first fraction after `fraction` where the level may change, if any before the end.
    pub fn next_change(&self, fraction: f64) -> Option<f64> {
        let points: Vec<f64> = match self {
            MemoryCurve::Levels {
                peak_at, peak_for, ..
            } => vec![*peak_at, peak_at + peak_for],
            MemoryCurve::Trace(points) => points.iter().map(|(f, _)| *f).collect(),
        };
        points
            .into_iter()
            .filter(|&f| f > fraction && f < 1.0)
            .min_by(f64::total_cmp)
    }

    /// The largest level anywhere in the run.
    pub fn peak(&self) -> f64 {
        match self {
            MemoryCurve::Levels { constant, peak, .. } => constant.max(*peak),
            MemoryCurve::Trace(points) => points.iter().map(|(_, g)| *g).fold(0.0, f64::max),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_is_a_step_function_of_progress() {
        let c = MemoryCurve::Trace(vec![(0.0, 2.0), (0.1, 21.0), (0.9, 33.0), (0.95, 21.0)]);
        assert_eq!(c.at(0.0), 2.0);
        assert_eq!(c.at(0.5), 21.0);
        assert_eq!(c.at(0.9), 33.0);
        assert_eq!(c.at(0.99), 21.0);
        assert_eq!(c.next_change(0.0), Some(0.1));
        assert_eq!(c.next_change(0.9), Some(0.95));
        assert_eq!(c.next_change(0.95), None);
        assert_eq!(c.peak(), 33.0);
    }

    #[test]
    fn levels_peak_in_their_window() {
        let c = MemoryCurve::Levels {
            constant: 21.0,
            peak: 33.0,
            peak_at: 0.92,
            peak_for: 0.06,
        };
        assert_eq!(c.at(0.5), 21.0);
        assert_eq!(c.at(0.93), 33.0);
        assert_eq!(c.at(0.98), 21.0);
        assert_eq!(c.next_change(0.5), Some(0.92));
    }
}
