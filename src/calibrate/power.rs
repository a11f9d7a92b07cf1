//! `sim.power_share`: what a workload draws, fitted on variant repetitions whose jobs were all
//! of it and whose GPU power is recorded (`variants.mean_power_w`).
//!
//! The simulator's power is `idle_w + (board_w − idle_w) · power_share · s` (docs/energy.md),
//! with `s` the average share of the GPU's SMs at work over the repetition's window (first job's
//! start to last job's end): each device's SMs while a job runs on it, under MPS capped by the
//! active-thread fraction times its clients. With the catalog's `idle_w` and `board_w`, the
//! share is the least-squares slope through the points `(s · (board_w − idle_w), P − idle_w)`.
//! Where the points spread along `s` on one GPU model, a free line through them also gives the
//! idle and full power they imply, to compare with the catalog's (which migbench builds in and
//! `calibrate` does not change).

use std::collections::BTreeMap;

use super::observe::Observed;
use crate::catalog::GpuModel;
use crate::report::load::Results;
use crate::workload::Fitted;

/// Where the share is kept: above 0 (a job draws something), at most the whole dynamic range.
const SHARE_RANGE: (f64, f64) = (0.01, 1.0);
/// The spread of `s` below which a free line says nothing about idle power.
const MIN_SPREAD: f64 = 0.05;

/// One variant repetition with measured (or simulated) power.
struct Point {
    label: String,
    gpu: &'static GpuModel,
    /// Average share of the GPU's SMs at work over the window.
    busy: f64,
    power_w: f64,
}

/// The fitted share and its account; `None` when no repetition has a power figure.
pub fn fit(results: &Results, jobs: &[Observed]) -> Option<(f64, Fitted)> {
    let points = points(results, jobs);
    if points.is_empty() {
        return None;
    }
    // Least squares through the catalog's idle power: x = s · (board − idle), y = P − idle.
    let xy = |p: &Point| {
        let power = &p.gpu.power;
        (
            p.busy * (power.board_w - power.idle_w),
            p.power_w - power.idle_w,
        )
    };
    let (sxy, sxx) = points
        .iter()
        .map(xy)
        .fold((0.0, 0.0), |(sxy, sxx), (x, y)| (sxy + x * y, sxx + x * x));
    let raw = if sxx > 0.0 { sxy / sxx } else { 1.0 };
    let share = raw.clamp(SHARE_RANGE.0, SHARE_RANGE.1);
    let errors: Vec<f64> = points
        .iter()
        .map(|p| {
            let (x, y) = xy(p);
            (p.gpu.power.idle_w + share * x) / (p.gpu.power.idle_w + y) - 1.0
        })
        .collect();
    let n = errors.len() as f64;
    let mut note = format!(
        "{} variant repetitions with a power figure, whose jobs were all of this workload: mean power against the share of SMs at work, through the catalog's idle power",
        points.len()
    );
    if raw != share {
        note.push_str(&format!(
            "; the slope was {raw:.3}, outside what the model takes ({} to {}): check the catalog's [power] of {}",
            SHARE_RANGE.0,
            SHARE_RANGE.1,
            points[0].gpu.key
        ));
    }
    if let Some(line) = free_line(&points) {
        note.push_str(&format!("; {line}"));
    }
    Some((
        share,
        Fitted {
            key: "sim.power_share".into(),
            value: share,
            how: "fitted".into(),
            jobs: points.iter().map(|p| p.label.clone()).collect(),
            rms_residual: Some((errors.iter().map(|e| e * e).sum::<f64>() / n).sqrt()),
            max_residual: Some(errors.iter().fold(0.0, |m, e| m.max(e.abs()))),
            note,
        },
    ))
}

/// The repetitions with a mean power whose every job (with a start and an end) is in `jobs`.
fn points(results: &Results, jobs: &[Observed]) -> Vec<Point> {
    let mut groups: BTreeMap<(usize, &str, u32), Vec<&Observed>> = BTreeMap::new();
    for j in jobs {
        groups
            .entry((j.run, j.variant.as_str(), j.repetition))
            .or_default()
            .push(j);
    }
    groups
        .into_iter()
        .filter_map(|((run, variant, repetition), mine)| {
            let row = results
                .variants
                .iter()
                .find(|v| v.run == run && v.variant == variant && v.repetition == repetition)?;
            let power_w = row.energy.mean_power_w?;
            let all = results
                .jobs
                .iter()
                .filter(|j| j.run == run && j.variant == variant && j.repetition == repetition)
                .filter(|j| j.start_s.is_some() && j.end_s.is_some())
                .count();
            if all != mine.len() {
                return None;
            }
            let start = mine.iter().map(|j| j.start).fold(f64::INFINITY, f64::min);
            let end = mine.iter().map(|j| j.end).fold(f64::NEG_INFINITY, f64::max);
            let gpu = mine[0].gpu;
            if end <= start || !power_w.is_finite() {
                return None;
            }
            // Each job's part of its device's busy SM-seconds: the device's SMs (capped under
            // MPS) shared among the jobs on it at each moment.
            let busy_sm_s: f64 = mine
                .iter()
                .flat_map(|j| {
                    let cap = j.mps_cap.unwrap_or(1.0);
                    j.segments.iter().map(move |&(dt, n)| {
                        dt * f64::from(j.device_sm) * (cap * n as f64).min(1.0) / n as f64
                    })
                })
                .sum();
            let busy = (busy_sm_s / ((end - start) * f64::from(gpu.sm_count))).clamp(0.0, 1.0);
            Some(Point {
                label: format!("{}:{variant}#{repetition}", results.runs[run].dir.display()),
                gpu,
                busy,
                power_w,
            })
        })
        .collect()
}

/// A free line through the points of the GPU model with the most of them, where they spread
/// along `s`: the idle and full power it implies, beside the catalog's.
fn free_line(points: &[Point]) -> Option<String> {
    let mut by_gpu: BTreeMap<&str, Vec<&Point>> = BTreeMap::new();
    for p in points {
        by_gpu.entry(p.gpu.key.as_str()).or_default().push(p);
    }
    let (_, mine) = by_gpu.into_iter().max_by_key(|(_, v)| v.len())?;
    let n = mine.len() as f64;
    let mean_s = mine.iter().map(|p| p.busy).sum::<f64>() / n;
    let mean_p = mine.iter().map(|p| p.power_w).sum::<f64>() / n;
    let sxx: f64 = mine.iter().map(|p| (p.busy - mean_s).powi(2)).sum();
    let spread = mine
        .iter()
        .map(|p| p.busy)
        .fold(f64::NEG_INFINITY, f64::max)
        - mine.iter().map(|p| p.busy).fold(f64::INFINITY, f64::min);
    if mine.len() < 2 || spread < MIN_SPREAD {
        return None;
    }
    let slope = mine
        .iter()
        .map(|p| (p.busy - mean_s) * (p.power_w - mean_p))
        .sum::<f64>()
        / sxx;
    let idle = mean_p - slope * mean_s;
    let gpu = mine[0].gpu;
    Some(format!(
        "a free line through the {} points on {} gives {idle:.0} W with no SM at work and {:.0} W with all (the catalog: idle_w {}, board_w {})",
        mine.len(),
        gpu.key,
        idle + slope,
        gpu.power.idle_w,
        gpu.power.board_w
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn point(busy: f64, power_w: f64) -> Point {
        Point {
            label: "p".into(),
            gpu: Catalog::builtin().gpu("h100-80gb").unwrap(),
            busy,
            power_w,
        }
    }

    #[test]
    fn a_free_line_gives_the_idle_and_full_power_of_points_that_spread() {
        // 100 W idle, 500 W at every SM: P = 100 + 400 s.
        let points = [point(0.25, 200.0), point(0.5, 300.0), point(1.0, 500.0)];
        let line = free_line(&points).unwrap();
        assert!(
            line.contains("100 W with no SM") && line.contains("500 W with all"),
            "{line}"
        );
        // Points at one share say nothing about idle power.
        assert!(free_line(&[point(0.5, 300.0), point(0.52, 310.0)]).is_none());
    }
}
