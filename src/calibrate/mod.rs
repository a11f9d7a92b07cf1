//! `migbench calibrate`: fits a workload's simulation profile on measured runs.
//!
//! Each figure is fitted on the jobs that identify it, with the simulator's own sharing model
//! ([`crate::backend::sim::sharing`]), in order:
//! 1. `timing.full_gpu_s`: jobs that ran alone on a whole GPU (mean duration);
//! 2. `sim.alpha`: jobs alone on a device with another SM count than the reference GPU (a MIG
//!    instance, or another GPU model);
//! 3. `sim.mps_exponent`: jobs that shared an MPS server with other jobs at some moment;
//! 4. `sim.timeslice_efficiency`: jobs time-sliced with others on one device, no MPS;
//! 5. `sim.power_share`: variant repetitions of its jobs alone with a power figure ([`power`]).
//!
//! A job's work is the integral of its speed over its run, with the number of jobs on its
//! device at each moment read from the jobs table; a parameter is the one that makes every job's
//! work equal `full_gpu_s` (least squares on the logarithm, a golden-section search: the work
//! is monotonic in each parameter). The memory trace is taken from the jobs that ran alone,
//! where progress is proportional to time.

mod observe;
mod power;
pub mod table;

use std::path::PathBuf;

use crate::backend::sim::sharing::Sharing;
use crate::error::{Error, Result};
use crate::report::load::{Damaged, Results, TracePick};
use crate::workload::{Calibration, Fitted, Timing, Workload};
use observe::Observed;

/// Buckets of a job's run that the memory trace is read in.
const TRACE_BUCKETS: u32 = 200;
/// Levels closer than this (GiB) to the previous point of the trace are merged into it.
const TRACE_STEP_GIB: f64 = 0.25;

/// Where a parameter is searched for; beyond it the model does not describe the runs.
const ALPHA_RANGE: (f64, f64) = (0.01, 5.0);
const EFFICIENCY_RANGE: (f64, f64) = (0.01, 5.0);

/// What `calibrate` produces: the workload file (none when a table's workload is not one
/// migbench ships, so has no command to write it with) and a short account for the terminal.
pub struct Calibrated {
    pub workload: Option<Workload>,
    pub summary: String,
}

/// Fits workload `name` on the table of figures at `path` ([`table`]): rows whose profile (or
/// mode) is in `held_out` are predicted, not fitted; `batch` picks one batch size's times.
pub fn calibrate_table(
    path: &std::path::Path,
    name: &str,
    held_out: &[String],
    batch: Option<u32>,
) -> Result<Calibrated> {
    let rows = table::read(path)?;
    let fit = table::fit(&rows, name, held_out, batch)?;
    let summary = table::summary(name, &fit);
    let Ok(base) = crate::workload::find(name) else {
        return Ok(Calibrated {
            workload: None,
            summary,
        });
    };
    let mut w = base.clone();
    let source = format!("migbench calibrate --table {}", path.display());
    w.timing = Some(Timing {
        reference_gpu: fit.reference.key.clone(),
        full_gpu_s: fit.full_gpu_s,
        source: format!("{source}: see [calibration]"),
    });
    let fitted = |key: &str| fit.fitted.iter().any(|f| f.key == key && f.how == "fitted");
    let s = fit.sharing;
    w.sim.alpha = s.alpha;
    w.sim.host_fraction = fitted("sim.host_fraction").then_some(s.host_fraction);
    w.sim.bandwidth_fraction = fitted("sim.bandwidth_fraction").then_some(s.bandwidth_fraction);
    w.sim.mps_exponent = fitted("sim.mps_exponent").then_some(s.mps_exponent);
    w.sim.mps_interference = fitted("sim.mps_interference").then_some(s.mps_interference);
    w.sim.timeslice_efficiency =
        fitted("sim.timeslice_efficiency").then_some(s.timeslice_efficiency);
    w.sim.source = format!("{source}: see [calibration]");
    finish(&mut w, vec![path.display().to_string()], fit.fitted)?;
    Ok(Calibrated {
        workload: Some(w),
        summary,
    })
}

/// Fits workload `name` on the runs below `dirs`.
pub fn calibrate(dirs: &[PathBuf], name: &str) -> Result<Calibrated> {
    let results = Results::load(dirs, Damaged::Refuse)?;
    let jobs = observe::jobs(&results, name)?;
    let base = base_workload(&results, name)?;

    // 1. The whole-GPU time, on the GPU model of the first job that ran alone on one.
    let alone: Vec<&Observed> = jobs
        .iter()
        .filter(|j| j.ok && j.whole_gpu && j.max_neighbours() == 1)
        .collect();
    let Some(first) = alone.first() else {
        return Err(Error::Input(format!(
            "cannot identify timing.full_gpu_s of {name}: no job of it ran alone on a whole GPU in {}; add a run with a variant of mode = \"full\"",
            listed(dirs)
        )));
    };
    let reference = first.gpu;
    let alone: Vec<&Observed> = alone
        .into_iter()
        .filter(|j| j.gpu.key == reference.key)
        .collect();
    let full_s = alone.iter().map(|j| j.duration()).sum::<f64>() / alone.len() as f64;
    let mut fitted = vec![with_residuals(
        Fitted {
            key: "timing.full_gpu_s".into(),
            value: full_s,
            how: "fitted".into(),
            jobs: alone.iter().map(|j| j.label.clone()).collect(),
            rms_residual: None,
            max_residual: None,
            note: format!("mean duration alone on a whole {}", reference.name),
        },
        &alone,
        Sharing::from_alpha(1.0),
        reference.sm_count,
        full_s,
    )];

    // 2. alpha, on jobs alone on a device of another size.
    let sliced: Vec<&Observed> = jobs
        .iter()
        .filter(|j| {
            j.ok && j.mps_cap.is_none()
                && j.max_neighbours() == 1
                && j.device_sm != reference.sm_count
        })
        .collect();
    if sliced.is_empty() {
        return Err(Error::Input(format!(
            "cannot identify sim.alpha of {name}: no job of it ran alone on part of a GPU in {}; add a run with a variant of mode = \"mig\" on instances smaller than the GPU (for instance layout = [\"3g.40gb\", \"3g.40gb\"] on an H100)",
            listed(dirs)
        )));
    }
    let ref_sm = reference.sm_count;
    let alpha = fit(&sliced, ALPHA_RANGE, full_s, ref_sm, "sim.alpha", |a| {
        Sharing::from_alpha(a)
    })?;
    let mut sharing = Sharing::from_alpha(alpha);
    fitted.push(with_residuals(
        fitted_entry(
            "sim.alpha",
            alpha,
            &sliced,
            "alone on MIG instances (or GPUs) of other SM counts",
        ),
        &sliced,
        sharing,
        ref_sm,
        full_s,
    ));

    // 3. and 4.: MPS and time-slicing, each on the jobs that shared their device that way.
    let mps_runs = jobs.iter().any(|j| j.mps_cap.is_some());
    let mps: Vec<&Observed> = jobs
        .iter()
        .filter(|j| j.ok && j.mps_cap.is_some() && j.shared())
        .collect();
    let mps_exponent = if mps.is_empty() {
        if mps_runs {
            return Err(Error::Input(format!(
                "cannot identify sim.mps_exponent of {name}: its MPS jobs in {} never ran beside another job; add an MPS variant whose jobs start together",
                listed(dirs)
            )));
        }
        fitted.push(default_entry(
            "sim.mps_exponent",
            alpha,
            "no MPS run: the default, alpha (an MPS client at a share c of the SMs runs as on a MIG slice of that share); a run with an MPS variant of two or more jobs at once would fit it",
        ));
        None
    } else {
        let b = fit(&mps, ALPHA_RANGE, full_s, ref_sm, "sim.mps_exponent", |b| {
            Sharing {
                mps_exponent: b,
                ..sharing
            }
        })?;
        sharing.mps_exponent = b;
        fitted.push(with_residuals(
            fitted_entry(
                "sim.mps_exponent",
                b,
                &mps,
                "beside other clients of one MPS server",
            ),
            &mps,
            sharing,
            ref_sm,
            full_s,
        ));
        Some(b)
    };
    let sliced_time: Vec<&Observed> = jobs
        .iter()
        .filter(|j| j.ok && j.mps_cap.is_none() && j.shared())
        .collect();
    let efficiency = if sliced_time.is_empty() {
        fitted.push(default_entry(
            "sim.timeslice_efficiency",
            1.0,
            "no time-sliced run: the default, 1 (context switches cost nothing); a run with a variant of mode = \"timeslice\" and two or more jobs would fit it",
        ));
        None
    } else {
        let e = fit(
            &sliced_time,
            EFFICIENCY_RANGE,
            full_s,
            ref_sm,
            "sim.timeslice_efficiency",
            |e| Sharing {
                timeslice_efficiency: e,
                ..sharing
            },
        )?;
        sharing.timeslice_efficiency = e;
        fitted.push(with_residuals(
            fitted_entry(
                "sim.timeslice_efficiency",
                e,
                &sliced_time,
                "time-sliced with other jobs on one device",
            ),
            &sliced_time,
            sharing,
            ref_sm,
            full_s,
        ));
        Some(e)
    };

    // 5. What it draws, on repetitions with a power figure.
    let power_share = match power::fit(&results, &jobs) {
        Some((share, entry)) => {
            fitted.push(entry);
            Some(share)
        }
        None => {
            fitted.push(default_entry(
                "sim.power_share",
                1.0,
                "no repetition of only this workload's jobs has a power figure (a GPU with neither an energy counter nor power readings): the default, 1 (the board's whole dynamic power at every SM busy)",
            ));
            None
        }
    };

    // Memory: levels from every job that finished, the trace from those alone.
    let ok: Vec<&Observed> = jobs.iter().filter(|j| j.ok).collect();
    let peak = ok
        .iter()
        .filter_map(|j| j.vram_peak_gib)
        .fold(0.0, f64::max);
    let constant = median(ok.iter().filter_map(|j| j.vram_constant_gib).collect());
    let trace = memory_trace(&results, &alone, peak)?;

    let mut w = base.clone();
    let sources = format!("migbench calibrate on {}", listed(dirs));
    if peak > 0.0 {
        w.memory.peak_gib = peak;
        w.memory.constant_gib = constant.unwrap_or(peak).min(peak);
        w.memory.source = format!(
            "{sources}: peak and most frequent level of {} jobs",
            ok.len()
        );
    }
    w.timing = Some(Timing {
        reference_gpu: reference.key.clone(),
        full_gpu_s: full_s,
        source: format!("{sources}: see [calibration]"),
    });
    w.sim.alpha = alpha;
    w.sim.mps_exponent = mps_exponent;
    w.sim.timeslice_efficiency = efficiency;
    w.sim.power_share = power_share;
    if let Some(trace) = trace {
        // The peak window of the constant-and-peak profile, for readers without the trace.
        let top = trace.iter().map(|p| p.1).fold(0.0, f64::max);
        if let Some(i) = trace.iter().position(|p| p.1 >= top - TRACE_STEP_GIB) {
            let end = trace.get(i + 1).map_or(1.0, |p| p.0);
            w.sim.peak_at = trace[i].0;
            w.sim.peak_for = end - trace[i].0;
        }
        fitted.push(Fitted {
            key: "sim.memory_trace".into(),
            value: trace.len() as f64,
            how: "fitted".into(),
            jobs: alone.iter().map(|j| j.label.clone()).collect(),
            rms_residual: None,
            max_residual: None,
            note: format!(
                "points: the largest level of those jobs in each of {TRACE_BUCKETS} parts of their run, merged where within {TRACE_STEP_GIB} GiB"
            ),
        });
        w.sim.memory_trace = Some(trace);
    }
    w.sim.source = "calibrated by migbench calibrate: see [calibration]".into();
    finish(
        &mut w,
        dirs.iter().map(|d| d.display().to_string()).collect(),
        fitted,
    )?;
    let summary = summary(&w);
    Ok(Calibrated {
        workload: Some(w),
        summary,
    })
}

/// Rounds the written figures to what the fit can tell apart (six significant digits): the
/// golden-section search stops far below that, so the digits beyond are noise.
fn round_figures(w: &mut Workload) {
    let r = round6;
    if let Some(t) = &mut w.timing {
        t.full_gpu_s = r(t.full_gpu_s);
    }
    w.sim.alpha = r(w.sim.alpha);
    w.sim.mps_exponent = w.sim.mps_exponent.map(r);
    w.sim.timeslice_efficiency = w.sim.timeslice_efficiency.map(r);
    w.sim.host_fraction = w.sim.host_fraction.map(r);
    w.sim.bandwidth_fraction = w.sim.bandwidth_fraction.map(r);
    w.sim.mps_interference = w.sim.mps_interference.map(r);
    w.sim.power_share = w.sim.power_share.map(r);
    w.sim.peak_at = r(w.sim.peak_at);
    w.sim.peak_for = r(w.sim.peak_for).min(1.0 - w.sim.peak_at);
    if let Some(c) = &mut w.calibration {
        for f in &mut c.fitted {
            f.value = r(f.value);
            f.rms_residual = f.rms_residual.map(r);
            f.max_residual = f.max_residual.map(r);
        }
    }
}

/// `v` to six significant digits.
fn round6(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let scale = 10f64.powi(5 - v.abs().log10().floor() as i32);
    (v * scale).round() / scale
}

/// The workload as the runs' scenario defined it (command, unit, ...), else the shipped one.
fn base_workload<'r>(results: &'r Results, name: &str) -> Result<&'r Workload> {
    results
        .runs
        .iter()
        .filter_map(|r| r.scenario.as_ref())
        .find_map(|s| s.workload(name).ok())
        .map_or_else(|| crate::workload::find(name), Ok)
}

fn listed(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| v[v.len() / 2])
}

fn fitted_entry(key: &str, value: f64, jobs: &[&Observed], note: &str) -> Fitted {
    Fitted {
        key: key.into(),
        value,
        how: "fitted".into(),
        jobs: jobs.iter().map(|j| j.label.clone()).collect(),
        rms_residual: None,
        max_residual: None,
        note: format!("{} jobs {note}", jobs.len()),
    }
}

/// Records where a calibrated profile came from (this migbench, `runs`, `fitted`), rounds its
/// figures and checks it: the last steps of every calibration.
fn finish(w: &mut Workload, runs: Vec<String>, fitted: Vec<Fitted>) -> Result<()> {
    w.calibration = Some(Calibration {
        migbench: crate::version::long()
            .lines()
            .next()
            .unwrap_or("")
            .to_string(),
        runs,
        fitted,
    });
    round_figures(w);
    w.check()
        .map_err(|e| Error::Harness(format!("the calibrated profile is invalid: {}", e.message)))
}

/// A term left at its default, saying why.
pub(super) fn default_entry(key: &str, value: f64, note: &str) -> Fitted {
    Fitted {
        key: key.into(),
        value,
        how: "default".into(),
        jobs: Vec::new(),
        rms_residual: None,
        max_residual: None,
        note: note.into(),
    }
}

/// Adds the residuals of the fitted model on `jobs`: each job's duration as the model predicts
/// it (with its neighbours as they were) relative to its measured one.
fn with_residuals(
    mut f: Fitted,
    jobs: &[&Observed],
    sharing: Sharing,
    ref_sm: u32,
    full_s: f64,
) -> Fitted {
    let errors: Vec<f64> = jobs
        .iter()
        .map(|j| j.predicted_duration(sharing, ref_sm, full_s) / j.duration() - 1.0)
        .collect();
    let n = errors.len().max(1) as f64;
    f.rms_residual = Some((errors.iter().map(|e| e * e).sum::<f64>() / n).sqrt());
    f.max_residual = Some(errors.iter().fold(0.0, |m, e| m.max(e.abs())));
    f
}

/// The parameter in `range` that makes the jobs' work closest to `full_s` (least squares of the
/// log ratio), by golden-section search.
fn fit(
    jobs: &[&Observed],
    range: (f64, f64),
    full_s: f64,
    ref_sm: u32,
    key: &str,
    model: impl Fn(f64) -> Sharing,
) -> Result<f64> {
    let cost = |p: f64| -> f64 {
        let s = model(p);
        jobs.iter()
            .map(|j| (j.work(s, ref_sm) / full_s).ln().powi(2))
            .sum()
    };
    let p = golden_min(range, cost);
    let edge = (range.1 - range.0) * 1e-6;
    if p - range.0 < edge || range.1 - p < edge {
        return Err(Error::Input(format!(
            "cannot fit {key}: the jobs it is fitted on ({}) put it at the edge of {} to {}, where the model does not describe them",
            jobs.iter().map(|j| j.label.as_str()).collect::<Vec<_>>().join(", "),
            range.0,
            range.1
        )));
    }
    Ok(p)
}

/// The minimum of `cost` in `range` by golden-section search (`cost` has one minimum there).
fn golden_min(range: (f64, f64), cost: impl Fn(f64) -> f64) -> f64 {
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut a, mut b) = range;
    let mut c = b - g * (b - a);
    let mut d = a + g * (b - a);
    for _ in 0..80 {
        if cost(c) < cost(d) {
            b = d;
        } else {
            a = c;
        }
        c = b - g * (b - a);
        d = a + g * (b - a);
    }
    (a + b) / 2.0
}

/// Memory over progress of the jobs that ran alone: in each part of the run the largest level
/// any of them held, merged into steps.
fn memory_trace(
    results: &Results,
    alone: &[&Observed],
    peak: f64,
) -> Result<Option<Vec<(f64, f64)>>> {
    let picks: Vec<TracePick> = alone
        .iter()
        .map(|j| TracePick {
            run: j.run,
            variant: j.variant.clone(),
            repetition: j.repetition,
            t0: j.start,
            t1: j.end,
        })
        .collect();
    let (traces, _) = results.vram_traces(&picks, TRACE_BUCKETS, Damaged::Refuse)?;
    let mut levels = vec![f64::NAN; TRACE_BUCKETS as usize];
    for t in traces.iter().filter(|t| t.scope == "process") {
        let job = alone[t.pick];
        if job.pid.map(|p| p.to_string()).as_deref() != Some(t.id.as_str()) {
            continue;
        }
        for &(dt, gib) in &t.points {
            let f = (dt / job.duration()).clamp(0.0, 1.0);
            let b = ((f * f64::from(TRACE_BUCKETS)) as usize).min(levels.len() - 1);
            levels[b] = if levels[b].is_nan() {
                gib
            } else {
                levels[b].max(gib)
            };
        }
    }
    let mut trace: Vec<(f64, f64)> = Vec::new();
    for (b, &gib) in levels.iter().enumerate() {
        if gib.is_nan() {
            continue;
        }
        let gib = gib.clamp(0.0, peak);
        let f = b as f64 / f64::from(TRACE_BUCKETS);
        match trace.last() {
            Some(&(_, last)) if (gib - last).abs() < TRACE_STEP_GIB => {}
            _ => trace.push((if trace.is_empty() { 0.0 } else { f }, gib)),
        }
    }
    Ok((!trace.is_empty()).then_some(trace))
}

/// What was fitted, one line a figure.
fn summary(w: &Workload) -> String {
    let mut out = format!("{}: calibrated profile\n", w.name);
    let fitted = w.calibration.as_ref().map_or(&[][..], |c| &c.fitted[..]);
    for f in fitted {
        let residual = match (f.rms_residual, f.max_residual) {
            (Some(r), Some(m)) => {
                format!("  residual rms {:.1} %, max {:.1} %", r * 100.0, m * 100.0)
            }
            _ => String::new(),
        };
        // Power is fitted on variant repetitions, the rest on jobs.
        let inputs = if f.key == "sim.power_share" {
            "repetition(s)"
        } else {
            "job(s)"
        };
        out.push_str(&format!(
            "  {:<26} {:>10.4}  {:<8} {} {inputs}{residual}\n",
            f.key,
            f.value,
            f.how,
            f.jobs.len()
        ));
    }
    out
}
