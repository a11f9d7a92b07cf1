//! `migbench compare`: which scenario variants got slower, hungrier for memory, or started
//! running out of memory between a baseline and a candidate.
//!
//! Variants are matched by scenario and variant name. A variant regressed when, beyond the
//! threshold, its time per unit grew, its units per hour fell or the whole GPU's peak VRAM grew,
//! when a larger share of its jobs ran out of memory, or when it completed nothing where the
//! baseline completed something. Simulated results are never compared with measured ones: the
//! difference would be the simulator's error, not a regression.

use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::report::load::Origin;
use crate::report::stats::Summary;
use crate::report::summary::VariantSummary;
use crate::report::table::{Column, Kind, Role, Table, Value};
use crate::report::{ReportData, REPORT_JSON};

/// One metric on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Delta {
    pub baseline: Option<f64>,
    pub candidate: Option<f64>,
    /// `(candidate − baseline) ÷ baseline`.
    pub change: Option<f64>,
}

impl Delta {
    fn of(baseline: Option<f64>, candidate: Option<f64>) -> Delta {
        let change = match (baseline, candidate) {
            (Some(b), Some(c)) if b != 0.0 => Some((c - b) / b),
            _ => None,
        };
        Delta {
            baseline,
            candidate,
            change,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Regressed,
    Improved,
    Unchanged,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Regressed => "regressed",
            Verdict::Improved => "improved",
            Verdict::Unchanged => "unchanged",
        }
    }
}

/// A variant found on both sides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub scenario: String,
    pub variant: String,
    #[serde(flatten)]
    pub origin: Origin,
    pub time_per_unit_s: Delta,
    pub units_per_hour: Delta,
    pub gpu_vram_peak_gib: Delta,
    pub jobs_oom: (u32, u32),
    pub jobs: (u32, u32),
    pub verdict: Verdict,
    /// What regressed, or improved, in words.
    pub reasons: Vec<String>,
}

/// The outcome of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub baseline: String,
    pub candidate: String,
    pub threshold: f64,
    pub changes: Vec<Change>,
    /// `scenario/variant` found on one side only.
    pub only_in_baseline: Vec<String>,
    pub only_in_candidate: Vec<String>,
}

impl Comparison {
    pub fn regressed(&self) -> Vec<&Change> {
        self.changes
            .iter()
            .filter(|c| c.verdict == Verdict::Regressed)
            .collect()
    }
}

/// The variants of one side: a report directory (with `report.json`), a run directory, or a
/// directory of runs. `which` names the side in messages.
pub fn read_side(which: &str, path: &Path) -> Result<Vec<VariantSummary>> {
    if !path.is_dir() {
        return Err(Error::Input(format!(
            "{which} {}: no such directory; expected a run directory, a directory of runs, or a report directory",
            path.display()
        )));
    }
    let data = if path.join(REPORT_JSON).is_file() {
        ReportData::read(path)?
    } else {
        ReportData::from_runs(&[path.to_path_buf()])
            .map_err(|e| match e {
                Error::Input(m) => Error::Input(format!("{which}: {m}")),
                other => other,
            })?
            .0
    };
    if data.variants.is_empty() {
        return Err(Error::Input(format!(
            "{which} {}: holds no variants",
            path.display()
        )));
    }
    Ok(data.variants)
}

/// Compares `candidate` with `baseline`; `threshold` is a fraction (0.05 for 5%).
pub fn compare(
    baseline: (&str, &[VariantSummary]),
    candidate: (&str, &[VariantSummary]),
    threshold: f64,
) -> Result<Comparison> {
    let key = |v: &VariantSummary| format!("{}/{}", v.scenario, v.variant);
    for (side, rows) in [baseline, candidate] {
        for (i, a) in rows.iter().enumerate() {
            if rows[..i].iter().any(|b| key(b) == key(a)) {
                return Err(Error::Input(format!(
                    "{side} holds {} more than once (on several GPUs or backends); compare one kind of result at a time",
                    key(a)
                )));
            }
        }
    }
    let mut comparison = Comparison {
        baseline: baseline.0.to_string(),
        candidate: candidate.0.to_string(),
        threshold,
        changes: Vec::new(),
        only_in_baseline: Vec::new(),
        only_in_candidate: Vec::new(),
    };
    let mut mixed = Vec::new();
    for b in baseline.1 {
        let Some(c) = candidate.1.iter().find(|c| key(c) == key(b)) else {
            comparison.only_in_baseline.push(key(b));
            continue;
        };
        if b.origin.simulated != c.origin.simulated {
            mixed.push(format!(
                "{}: baseline {}, candidate {}",
                key(b),
                b.origin.provenance(),
                c.origin.provenance()
            ));
            continue;
        }
        comparison.changes.push(change(b, c, threshold));
    }
    if !mixed.is_empty() {
        return Err(Error::Input(format!(
            "refusing to compare simulated results with measured ones (the difference would be the simulator's error, not a regression):\n  {}",
            mixed.join("\n  ")
        )));
    }
    comparison.only_in_candidate = candidate
        .1
        .iter()
        .filter(|c| !baseline.1.iter().any(|b| key(b) == key(c)))
        .map(key)
        .collect();
    if comparison.changes.is_empty() {
        return Err(Error::Input(format!(
            "no variant in common between {} and {}: variants are matched by scenario and variant name",
            baseline.0, candidate.0
        )));
    }
    Ok(comparison)
}

fn change(b: &VariantSummary, c: &VariantSummary, threshold: f64) -> Change {
    let mean = |s: Option<Summary>| s.map(|s| s.mean);
    let max = |s: Option<Summary>| s.map(|s| s.max);
    let time = Delta::of(mean(b.time_per_unit_s), mean(c.time_per_unit_s));
    let rate = Delta::of(mean(b.units_per_hour), mean(c.units_per_hour));
    let peak = Delta::of(max(b.gpu_vram_peak_gib), max(c.gpu_vram_peak_gib));
    let pct = percent;
    let mut worse = Vec::new();
    let mut better = Vec::new();
    // (delta, what, true when a rise is bad)
    for (delta, what, rise_is_bad) in [
        (time, "time per unit", true),
        (rate, "units per hour", false),
        (peak, "peak VRAM", true),
    ] {
        let Some(x) = delta.change else { continue };
        let bad = if rise_is_bad { x } else { -x };
        if bad > threshold {
            worse.push(format!("{what} {}", pct(x)));
        } else if -bad > threshold {
            better.push(format!("{what} {}", pct(x)));
        }
    }
    if time.baseline.is_some() && time.candidate.is_none() {
        worse.push("completed nothing".into());
    }
    let share = |oom: u32, jobs: u32| f64::from(oom) / f64::from(jobs.max(1));
    let (oom_b, oom_c) = (share(b.jobs_oom, b.jobs), share(c.jobs_oom, c.jobs));
    if oom_c > oom_b {
        worse.push(format!("OOMs {} → {}", b.jobs_oom, c.jobs_oom));
    } else if oom_c < oom_b {
        better.push(format!("OOMs {} → {}", b.jobs_oom, c.jobs_oom));
    }
    let (verdict, reasons) = if !worse.is_empty() {
        (Verdict::Regressed, worse)
    } else if !better.is_empty() {
        (Verdict::Improved, better)
    } else {
        (Verdict::Unchanged, Vec::new())
    };
    Change {
        scenario: c.scenario.clone(),
        variant: c.variant.clone(),
        origin: c.origin.clone(),
        time_per_unit_s: time,
        units_per_hour: rate,
        gpu_vram_peak_gib: peak,
        jobs_oom: (b.jobs_oom, c.jobs_oom),
        jobs: (b.jobs, c.jobs),
        verdict,
        reasons,
    }
}

/// `+4.2%`; a change that rounds to nothing is `0.0%`, not `-0.0%`.
fn percent(change: f64) -> String {
    let x = (change * 1000.0).round() / 10.0;
    if x == 0.0 {
        "0.0%".into()
    } else {
        format!("{x:+.1}%")
    }
}

/// The comparison as a table: grouped by scenario, one row per variant.
pub fn table(comparison: &Comparison) -> Table {
    use Kind::Text;
    use Role::*;
    let both = |d: &Delta, digits: usize| {
        let v = |x: Option<f64>| x.map_or("-".into(), |x| format!("{x:.digits$}"));
        format!("{} → {}", v(d.baseline), v(d.candidate))
    };
    let pct = |d: &Delta| {
        d.change
            .map_or("-".into(), |x| format!("{:+.1}%", x * 100.0))
    };
    let rows = comparison
        .changes
        .iter()
        .map(|c| {
            vec![
                Value::Text(c.scenario.clone()),
                Value::Text(c.origin.gpu.clone()),
                Value::Text(c.origin.provenance()),
                Value::Text(c.variant.clone()),
                Value::Text(both(&c.time_per_unit_s, 1)),
                Value::Text(pct(&c.time_per_unit_s)),
                Value::Text(both(&c.units_per_hour, 1)),
                Value::Text(pct(&c.units_per_hour)),
                Value::Text(both(&c.gpu_vram_peak_gib, 1)),
                Value::Text(pct(&c.gpu_vram_peak_gib)),
                Value::Text(format!("{} → {}", c.jobs_oom.0, c.jobs_oom.1)),
                Value::Text(c.verdict.as_str().into()),
                Value::Text(c.reasons.join("; ")),
            ]
        })
        .collect();
    Table {
        name: "compare",
        title: "Comparison".into(),
        columns: vec![
            Column::new("scenario", "Scenario", Text, Group),
            Column::new("gpu", "GPU", Text, Group),
            Column::new("backend", "Backend", Text, Group),
            Column::new("variant", "Variant", Text, Brief),
            Column::new("time_per_unit_s", "s per unit\nbase → new", Text, Brief),
            Column::new("time_per_unit_change", "Δ s per\nunit", Text, Brief),
            Column::new("units_per_hour", "Units per h\nbase → new", Text, Detail),
            Column::new("units_per_hour_change", "Δ units\nper h", Text, Brief),
            Column::new("gpu_vram_peak_gib", "Peak GiB\nbase → new", Text, Brief),
            Column::new("gpu_vram_peak_change", "Δ peak", Text, Brief),
            Column::new("jobs_oom", "OOM", Text, Brief),
            Column::new("verdict", "Verdict", Text, Brief),
            Column::new("reasons", "Why", Text, Detail),
        ],
        rows,
        notes: vec![format!(
            "Baseline {}, candidate {}; a change beyond {:.1}% counts, as does a larger share of jobs out of memory.",
            comparison.baseline,
            comparison.candidate,
            comparison.threshold * 100.0
        )],
        terminal: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(variant: &str, per_unit: Option<f64>, peak: f64, oom: u32) -> VariantSummary {
        VariantSummary {
            scenario: "s".into(),
            variant: variant.into(),
            origin: Origin {
                gpu_model: "h100-80gb".into(),
                gpu: "H100".into(),
                backend: "sim".into(),
                simulated: true,
            },
            mode: "mps".into(),
            layout: None,
            isolation: "none".into(),
            runs: 1,
            repetitions: 1,
            unit: "video".into(),
            jobs: 3,
            jobs_ok: 3 - oom,
            jobs_oom: oom,
            jobs_failed: 0,
            job_vram_constant_gib: None,
            job_vram_peak_gib: None,
            gpu_vram_peak_gib: Summary::of(&[peak]),
            time_per_job_s: None,
            time_per_unit_s: per_unit.and_then(|t| Summary::of(&[t])),
            units_per_hour: per_unit.and_then(|t| Summary::of(&[3600.0 / t])),
            status: "ran".into(),
        }
    }

    fn verdicts(base: &[VariantSummary], cand: &[VariantSummary]) -> Vec<Verdict> {
        compare(("b", base), ("c", cand), 0.05)
            .unwrap()
            .changes
            .iter()
            .map(|c| c.verdict)
            .collect()
    }

    #[test]
    fn changes_within_the_threshold_are_unchanged() {
        let base = [row("a", Some(100.0), 60.0, 0)];
        assert_eq!(
            verdicts(&base, &[row("a", Some(104.0), 62.0, 0)]),
            [Verdict::Unchanged]
        );
    }

    #[test]
    fn slower_hungrier_or_oom_is_a_regression() {
        let base = [row("a", Some(100.0), 60.0, 0)];
        for cand in [
            row("a", Some(106.0), 60.0, 0),
            row("a", Some(100.0), 64.0, 0),
            row("a", Some(100.0), 60.0, 1),
            row("a", None, 60.0, 3),
        ] {
            assert_eq!(
                verdicts(&base, std::slice::from_ref(&cand)),
                [Verdict::Regressed],
                "{cand:?}"
            );
        }
        assert_eq!(
            verdicts(&base, &[row("a", Some(90.0), 60.0, 0)]),
            [Verdict::Improved]
        );
    }

    #[test]
    fn simulated_and_measured_are_not_compared() {
        let base = [row("a", Some(100.0), 60.0, 0)];
        let mut measured = row("a", Some(100.0), 60.0, 0);
        measured.origin.simulated = false;
        measured.origin.backend = "nvml".into();
        let err = compare(("b", &base), ("c", &[measured]), 0.05).unwrap_err();
        assert!(
            err.to_string().contains("refusing to compare simulated"),
            "{err}"
        );
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn nothing_in_common_is_bad_input() {
        let err = compare(
            ("b", &[row("a", Some(1.0), 1.0, 0)]),
            ("c", &[row("z", Some(1.0), 1.0, 0)]),
            0.05,
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
