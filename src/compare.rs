//! `migbench compare`: which scenario variants got slower, hungrier for memory, or started
//! running out of memory between a baseline and a candidate.
//!
//! Variants are matched by scenario and variant name. A variant regressed when, beyond the
//! threshold, its time per unit grew, its units per hour fell or the whole GPU's peak VRAM grew,
//! when a larger share of its jobs ran out of memory, or when it completed nothing where the
//! baseline completed something; a variant with model servers also when its output throughput
//! fell or its median TTFT or median TPOT grew. Simulated results are never compared with measured
//! ones: the difference would be the simulator's error, not a regression. Nor, unless asked, are
//! results of different scenario files, backends or GPU models ([`differences`]).

mod differences;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::report::load::{Damaged, Origin};
use crate::report::serving::ServingSummary;
use crate::report::stats::Summary;
use crate::report::summary::VariantSummary;
use crate::report::table::{Column, Kind, Role, Table, Value};
use crate::report::{ReportData, RunEntry, REPORT_JSON};

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

/// How a variant found on both sides moved between baseline and candidate. (Not a
/// [`crate::backend::Change`], which is a change made to a GPU.)
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shift {
    pub scenario: String,
    pub variant: String,
    #[serde(flatten)]
    pub origin: Origin,
    pub time_per_unit_s: Delta,
    pub units_per_hour: Delta,
    pub gpu_vram_peak_gib: Delta,
    pub jobs_oom: (u32, u32),
    pub jobs: (u32, u32),
    /// For variants with model servers: the figures of [`SERVING_CHECKS`] by their vLLM keys.
    pub serving: BTreeMap<String, Delta>,
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
    /// What differs between the sides (scenario file, backend, GPU model), when they were
    /// compared anyway (`--allow-different`); empty for two runs of one experiment.
    pub differences: Vec<String>,
    /// One for each variant on both sides (`changes` in the JSON output).
    pub changes: Vec<Shift>,
    /// `scenario/variant` found on one side only.
    pub only_in_baseline: Vec<String>,
    pub only_in_candidate: Vec<String>,
}

impl Comparison {
    pub fn regressed(&self) -> Vec<&Shift> {
        self.changes
            .iter()
            .filter(|c| c.verdict == Verdict::Regressed)
            .collect()
    }
}

/// A serving figure that is compared, and its columns in the comparison table.
pub struct ServingCheck {
    /// `vllm bench serve`'s key.
    pub key: &'static str,
    pub words: &'static str,
    pub rise_is_bad: bool,
    header: &'static str,
    change_key: &'static str,
    change_header: &'static str,
    /// Whether the change is shown in the terminal.
    brief: bool,
    digits: usize,
}

/// The serving figures compared.
pub const SERVING_CHECKS: [ServingCheck; 3] = [
    ServingCheck {
        key: "output_throughput",
        words: "output throughput",
        rise_is_bad: false,
        header: "Output tok/s\nbase → new",
        change_key: "output_throughput_change",
        change_header: "Δ out\ntok/s",
        brief: true,
        digits: 0,
    },
    // The median, not the p99: with tens of requests per server the p99 is nearly the maximum,
    // and moved by ±17% between identical simulated runs, which would fail the gate at random.
    ServingCheck {
        key: "median_ttft_ms",
        words: "median TTFT",
        rise_is_bad: true,
        header: "TTFT median ms\nbase → new",
        change_key: "median_ttft_change",
        change_header: "Δ TTFT\nmedian",
        brief: false,
        digits: 0,
    },
    ServingCheck {
        key: "median_tpot_ms",
        words: "median TPOT",
        rise_is_bad: true,
        header: "TPOT median ms\nbase → new",
        change_key: "median_tpot_change",
        change_header: "Δ TPOT\nmedian",
        brief: false,
        digits: 1,
    },
];

/// One side of a comparison.
#[derive(Debug, Clone, Default)]
pub struct Side {
    /// How messages name it: its path.
    pub name: String,
    pub variants: Vec<VariantSummary>,
    /// The serving figures of the variants with model servers.
    pub serving: Vec<ServingSummary>,
    /// The runs that went in: their scenario files' sha256 tell experiments apart.
    pub runs: Vec<RunEntry>,
}

impl Side {
    fn serving_of(&self, v: &VariantSummary) -> Option<&ServingSummary> {
        self.serving
            .iter()
            .find(|s| s.scenario == v.scenario && s.variant == v.variant && s.origin == v.origin)
    }
}

/// The variants of one side: a report directory (with `report.json`), a run directory, or a
/// directory of runs. `which` names the side in messages.
pub fn read_side(which: &str, path: &Path) -> Result<Side> {
    if !path.is_dir() {
        return Err(Error::Input(format!(
            "{which} {}: no such directory; expected a run directory, a directory of runs, or a report directory",
            path.display()
        )));
    }
    let data = if path.join(REPORT_JSON).is_file() {
        ReportData::read(path)?
    } else {
        ReportData::from_runs(&[path.to_path_buf()], Damaged::Refuse)
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
    Ok(Side {
        name: path.display().to_string(),
        variants: data.variants,
        serving: data.serving,
        runs: data.runs,
    })
}

/// Compares `candidate` with `baseline`; `threshold` is a fraction (0.05 for 5%). Sides that
/// differ in scenario file, backend or GPU model are refused unless `allow_different`.
pub fn compare(
    baseline: &Side,
    candidate: &Side,
    threshold: f64,
    allow_different: bool,
) -> Result<Comparison> {
    let key = |v: &VariantSummary| format!("{}/{}", v.scenario, v.variant);
    for side in [baseline, candidate] {
        let rows = &side.variants;
        for (i, a) in rows.iter().enumerate() {
            if rows[..i].iter().any(|b| key(b) == key(a)) {
                return Err(Error::Input(format!(
                    "{} holds {} more than once (on several GPUs or backends); compare one kind of result at a time",
                    side.name,
                    key(a)
                )));
            }
        }
    }
    let mut comparison = Comparison {
        baseline: baseline.name.clone(),
        candidate: candidate.name.clone(),
        threshold,
        differences: Vec::new(),
        changes: Vec::new(),
        only_in_baseline: Vec::new(),
        only_in_candidate: Vec::new(),
    };
    let mut mixed = Vec::new();
    let mut pairs = Vec::new();
    for b in &baseline.variants {
        let Some(c) = candidate.variants.iter().find(|c| key(c) == key(b)) else {
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
        pairs.push((b, c));
        let serving = (baseline.serving_of(b), candidate.serving_of(c));
        comparison.changes.push(shift(b, c, serving, threshold));
    }
    if !mixed.is_empty() {
        return Err(Error::Input(format!(
            "refusing to compare simulated results with measured ones (the difference would be the simulator's error, not a regression):\n  {}",
            mixed.join("\n  ")
        )));
    }
    comparison.differences = differences::differences(&pairs, baseline, candidate);
    if !comparison.differences.is_empty() && !allow_different {
        return Err(Error::Input(format!(
            "refusing to compare different experiments (a change between them would be their difference, not a regression); pass --allow-different to compare them anyway:\n  {}",
            comparison.differences.join("\n  ")
        )));
    }
    comparison.only_in_candidate = candidate
        .variants
        .iter()
        .filter(|c| !baseline.variants.iter().any(|b| key(b) == key(c)))
        .map(key)
        .collect();
    if comparison.changes.is_empty() {
        return Err(Error::Input(format!(
            "no variant in common between {} and {}: variants are matched by scenario and variant name",
            baseline.name, candidate.name
        )));
    }
    Ok(comparison)
}

fn shift(
    b: &VariantSummary,
    c: &VariantSummary,
    (serving_b, serving_c): (Option<&ServingSummary>, Option<&ServingSummary>),
    threshold: f64,
) -> Shift {
    let mean = |s: Option<Summary>| s.map(|s| s.mean);
    let max = |s: Option<Summary>| s.map(|s| s.max);
    let time = Delta::of(mean(b.time_per_unit_s), mean(c.time_per_unit_s));
    let rate = Delta::of(mean(b.units_per_hour), mean(c.units_per_hour));
    let peak = Delta::of(max(b.gpu_vram_peak_gib), max(c.gpu_vram_peak_gib));
    let pct = percent;
    let mut worse = Vec::new();
    let mut better = Vec::new();
    // (delta, what, true when a rise is bad)
    let mut checks = vec![
        (time, "time per unit", true),
        (rate, "units per hour", false),
        (peak, "peak VRAM", true),
    ];
    let mut serving = BTreeMap::new();
    if serving_b.is_some() || serving_c.is_some() {
        let figure = |s: Option<&ServingSummary>, key: &str| mean(s?.figure(key));
        for check in &SERVING_CHECKS {
            let delta = Delta::of(figure(serving_b, check.key), figure(serving_c, check.key));
            serving.insert(check.key.to_string(), delta);
            checks.push((delta, check.words, check.rise_is_bad));
        }
    }
    for (delta, what, rise_is_bad) in checks {
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
    Shift {
        scenario: c.scenario.clone(),
        variant: c.variant.clone(),
        origin: c.origin.clone(),
        time_per_unit_s: time,
        units_per_hour: rate,
        gpu_vram_peak_gib: peak,
        jobs_oom: (b.jobs_oom, c.jobs_oom),
        jobs: (b.jobs, c.jobs),
        serving,
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
    // Serving columns only when a variant served.
    let checks: &[ServingCheck] = if comparison.changes.iter().any(|c| !c.serving.is_empty()) {
        &SERVING_CHECKS
    } else {
        &[]
    };
    let rows = comparison
        .changes
        .iter()
        .map(|c| {
            let mut cells = vec![
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
            ];
            for check in checks {
                let none = Delta::of(None, None);
                let d = c.serving.get(check.key).unwrap_or(&none);
                cells.push(Value::Text(both(d, check.digits)));
                cells.push(Value::Text(pct(d)));
            }
            cells.push(Value::Text(c.verdict.as_str().into()));
            cells.push(Value::Text(c.reasons.join("; ")));
            cells
        })
        .collect();
    let mut columns = vec![
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
    ];
    for check in checks {
        let role = if check.brief { Brief } else { Detail };
        columns.push(Column::new(check.key, check.header, Text, Detail));
        columns.push(Column::new(
            check.change_key,
            check.change_header,
            Text,
            role,
        ));
    }
    columns.push(Column::new("verdict", "Verdict", Text, Brief));
    columns.push(Column::new("reasons", "Why", Text, Detail));
    Table {
        name: "compare",
        title: "Comparison".into(),
        columns,
        rows,
        notes: vec![format!(
            "Baseline {}, candidate {}; a change beyond {:.1}% counts (for servers also lower output throughput, higher median TTFT or median TPOT), as does a larger share of jobs out of memory.",
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
            gpu_vram_peak_gib: Summary::of(&[peak]),
            ..crate::report::summary::example(variant, "mps", per_unit, oom)
        }
    }

    fn side(name: &str, variants: &[VariantSummary]) -> Side {
        Side {
            name: name.into(),
            variants: variants.to_vec(),
            serving: Vec::new(),
            runs: Vec::new(),
        }
    }

    fn verdicts(base: &[VariantSummary], cand: &[VariantSummary]) -> Vec<Verdict> {
        compare(&side("b", base), &side("c", cand), 0.05, false)
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
        let err = compare(&side("b", &base), &side("c", &[measured]), 0.05, false).unwrap_err();
        assert!(
            err.to_string().contains("refusing to compare simulated"),
            "{err}"
        );
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn nothing_in_common_is_bad_input() {
        let err = compare(
            &side("b", &[row("a", Some(1.0), 1.0, 0)]),
            &side("c", &[row("z", Some(1.0), 1.0, 0)]),
            0.05,
            false,
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    /// A side with one serving variant `a` (no units completed, as servers do).
    fn served(output: f64, median_ttft: f64, median_tpot: f64) -> Side {
        let v = row("a", None, 60.0, 0);
        let figures = [
            ("output_throughput", Some(output)),
            ("median_ttft_ms", Some(median_ttft)),
            ("median_tpot_ms", Some(median_tpot)),
        ];
        let serving = crate::report::serving::example("a", v.origin.clone(), &figures);
        Side {
            name: "s".into(),
            variants: vec![v],
            serving: vec![serving],
            runs: Vec::new(),
        }
    }

    #[test]
    fn serving_variants_regress_on_throughput_median_ttft_and_median_tpot() {
        let base = served(1000.0, 400.0, 20.0);
        let judge = |cand: Side| {
            let c = compare(&base, &cand, 0.05, false)
                .unwrap()
                .changes
                .remove(0);
            (c.verdict, c.reasons.join("; "))
        };
        assert_eq!(
            judge(served(940.0, 400.0, 20.0)),
            (Verdict::Regressed, "output throughput -6.0%".into())
        );
        assert_eq!(
            judge(served(1000.0, 430.0, 20.0)),
            (Verdict::Regressed, "median TTFT +7.5%".into())
        );
        assert_eq!(
            judge(served(1000.0, 400.0, 21.2)),
            (Verdict::Regressed, "median TPOT +6.0%".into())
        );
        assert_eq!(judge(served(1020.0, 410.0, 20.5)).0, Verdict::Unchanged);
        assert_eq!(
            judge(served(1100.0, 400.0, 20.0)),
            (Verdict::Improved, "output throughput +10.0%".into())
        );
        let c = compare(&base, &base, 0.05, false).unwrap();
        assert_eq!(c.changes[0].serving["median_tpot_ms"].candidate, Some(20.0));
        // A variant that never served has no serving figures to compare.
        let batch = side("b", &[row("a", Some(100.0), 60.0, 0)]);
        let c = compare(&batch, &batch, 0.05, false).unwrap();
        assert!(c.changes[0].serving.is_empty());
        assert!(!table(&c)
            .columns
            .iter()
            .any(|c| c.key == "output_throughput"));
    }
}
