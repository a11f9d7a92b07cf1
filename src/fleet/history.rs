//! `migbench history DIR`: every night of a nightly history (`scripts/nightly.sh`'s layout,
//! `DIR/<UTC time>/report/report.json`), and per scenario variant the trend of its figures.
//!
//! The last night is judged against a robust baseline: per figure, the median of the k nights
//! before it that have the figure, so that one odd night (a busy node, a driver hiccup) neither
//! hides a regression nor raises a false one, as comparing with the last night alone would. A
//! figure regressed when it moved the bad way beyond the threshold, a variant when one of its
//! figures did, or when a larger share of its jobs ran out of memory than the baseline's median
//! share, or when it completed nothing where the baseline nights completed something.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::report::load::Origin;
use crate::report::plots::{self, Chart, TrendChart, TrendLine};
use crate::report::serving::ServingSummary;
use crate::report::stats::Summary;
use crate::report::summary::VariantSummary;
use crate::report::table::{Column, Kind, Role, Table, Value};
use crate::report::ReportData;

/// A figure followed over nights.
pub struct Figure {
    pub key: &'static str,
    pub title: &'static str,
    /// A rise is a regression (time, memory, latency); else a fall is (throughput).
    pub rise_is_bad: bool,
    /// Compared by share of jobs rather than by the threshold (out-of-memory jobs).
    pub share: bool,
    value: fn(&VariantSummary, Option<&ServingSummary>) -> Option<f64>,
}

fn mean(s: Option<Summary>) -> Option<f64> {
    s.map(|s| s.mean)
}

fn serving(s: Option<&ServingSummary>, key: &str) -> Option<f64> {
    mean(s?.figure(key))
}

/// The figures, in the order shown. Serving latencies are medians: with tens of requests per
/// server a p99 is nearly the maximum and too noisy to gate on (see `compare`).
pub const FIGURES: &[Figure] = &[
    Figure {
        key: "time_per_unit_s",
        title: "s per unit",
        rise_is_bad: true,
        share: false,
        value: |v, _| mean(v.time_per_unit_s),
    },
    Figure {
        key: "units_per_hour",
        title: "units per hour",
        rise_is_bad: false,
        share: false,
        value: |v, _| mean(v.units_per_hour),
    },
    Figure {
        key: "jobs_oom",
        title: "OOM jobs",
        rise_is_bad: true,
        share: true,
        value: |v, _| Some(f64::from(v.jobs_oom)),
    },
    Figure {
        key: "gpu_vram_peak_gib",
        title: "GPU peak GiB",
        rise_is_bad: true,
        share: false,
        value: |v, _| v.gpu_vram_peak_gib.map(|s| s.max),
    },
    Figure {
        key: "energy_per_unit_wh",
        title: "Wh per unit",
        rise_is_bad: true,
        share: false,
        value: |v, _| mean(v.energy_per_unit_wh),
    },
    Figure {
        key: "energy_per_kilotoken_j",
        title: "J per 1k output tok",
        rise_is_bad: true,
        share: false,
        value: |v, _| mean(v.energy_per_kilotoken_j),
    },
    Figure {
        key: "median_ttft_ms",
        title: "TTFT median ms",
        rise_is_bad: true,
        share: false,
        value: |_, s| serving(s, "median_ttft_ms"),
    },
    Figure {
        key: "median_tpot_ms",
        title: "TPOT median ms",
        rise_is_bad: true,
        share: false,
        value: |_, s| serving(s, "median_tpot_ms"),
    },
    Figure {
        key: "median_itl_ms",
        title: "ITL median ms",
        rise_is_bad: true,
        share: false,
        value: |_, s| serving(s, "median_itl_ms"),
    },
];

/// One night: its directory name (a UTC time) and its report.
pub struct Night {
    pub name: String,
    pub data: ReportData,
}

/// How to judge the last night.
#[derive(Debug, Clone, Copy)]
pub struct Judge {
    /// Nights before the last one whose median is the baseline.
    pub baseline_nights: usize,
    /// A change beyond this fraction regresses.
    pub threshold: f64,
    /// Nights shown in the table.
    pub shown: usize,
}

/// One scenario variant's figure over the nights.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trend {
    pub scenario: String,
    pub variant: String,
    #[serde(flatten)]
    pub origin: Origin,
    pub mode: String,
    pub figure: &'static str,
    /// One value per night, oldest first (`None` where the night lacks the variant or figure).
    pub values: Vec<Option<f64>>,
    /// Jobs per night, for out-of-memory shares.
    #[serde(skip)]
    jobs: Vec<Option<u32>>,
    /// The median of the previous nights' values, and over how many nights.
    pub baseline: Option<f64>,
    pub baseline_of: usize,
    pub last: Option<f64>,
    /// `(last − baseline) ÷ baseline`.
    pub change: Option<f64>,
    pub regressed: bool,
    /// Why it regressed, in words.
    pub reason: Option<String>,
}

/// What `history` found.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    pub dir: String,
    pub nights: Vec<String>,
    pub baseline_nights: usize,
    pub threshold: f64,
    pub trends: Vec<Trend>,
    pub warnings: Vec<String>,
}

impl Trend {
    /// A figure's values over the nights, not judged yet.
    fn new(
        key: &Key,
        mode: &str,
        figure: &'static str,
        values: Vec<Option<f64>>,
        jobs: Vec<Option<u32>>,
    ) -> Trend {
        Trend {
            scenario: key.0.clone(),
            variant: key.1.clone(),
            origin: key.2.clone(),
            mode: mode.to_string(),
            figure,
            values,
            jobs,
            baseline: None,
            baseline_of: 0,
            last: None,
            change: None,
            regressed: false,
            reason: None,
        }
    }
}

impl History {
    pub fn regressed(&self) -> Vec<&Trend> {
        self.trends.iter().filter(|t| t.regressed).collect()
    }
}

/// Every night below `dir`, oldest first: each subdirectory (not a link: `baseline` is one)
/// with `report/report.json`. Others are passed over with a warning.
pub fn read_nights(dir: &Path) -> Result<(Vec<Night>, Vec<String>)> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::Input(format!(
            "{}: cannot read ({e}); expected a nightly history directory, as scripts/nightly.sh writes",
            dir.display()
        ))
    })?;
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::Harness(format!("{}: {e}", dir.display())))?;
        let kind = entry
            .file_type()
            .map_err(|e| Error::Harness(format!("{}: {e}", entry.path().display())))?;
        if kind.is_dir() {
            paths.push(entry.path());
        }
    }
    paths.sort();
    let (mut nights, mut warnings) = (Vec::new(), Vec::new());
    // Why the newest night could not be read, if it could not: the gate judges the last night,
    // and judging the one before in its place would pass a night nobody looked at.
    let mut last_unread = None;
    for path in paths {
        let report = path.join("report");
        if !report.join(crate::report::REPORT_JSON).is_file() {
            if path.join("runs").is_dir() {
                let why = format!(
                    "{}: no report/report.json (the night did not finish its report)",
                    path.display()
                );
                warnings.push(format!("{why}; left out"));
                last_unread = Some(why);
            }
            continue;
        }
        match ReportData::read(&report) {
            Ok(data) => {
                nights.push(Night {
                    name: path
                        .file_name()
                        .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                    data,
                });
                last_unread = None;
            }
            Err(e) => {
                warnings.push(format!("{e}; left out"));
                last_unread = Some(e.to_string());
            }
        }
    }
    if let Some(why) = last_unread {
        return Err(Error::Input(format!(
            "the last night cannot be judged: {why}; the gate fails rather than judge an \
             earlier night in its place"
        )));
    }
    if nights.is_empty() {
        return Err(Error::Input(format!(
            "{}: no nights found: a night is a directory with report/report.json, as scripts/nightly.sh writes",
            dir.display()
        )));
    }
    Ok((nights, warnings))
}

type Key = (String, String, Origin);

/// The trends of every scenario variant over `nights`, the last night judged.
pub fn history(dir: &Path, nights: &[Night], judge: Judge) -> History {
    let mut keys: Vec<(Key, String)> = Vec::new();
    for night in nights {
        for v in &night.data.variants {
            let key = (v.scenario.clone(), v.variant.clone(), v.origin.clone());
            if !keys.iter().any(|(k, _)| *k == key) {
                keys.push((key, v.mode.clone()));
            }
        }
    }
    let mut trends = Vec::new();
    let mut warnings = Vec::new();
    let last_night = nights.len() - 1;
    for ((scenario, variant, origin), mode) in keys {
        let found: Vec<Option<(&VariantSummary, Option<&ServingSummary>)>> = nights
            .iter()
            .map(|n| {
                let v = n.data.variants.iter().find(|v| {
                    v.scenario == scenario && v.variant == variant && v.origin == origin
                })?;
                let s =
                    n.data.serving.iter().find(|s| {
                        s.scenario == scenario && s.variant == variant && s.origin == origin
                    });
                Some((v, s))
            })
            .collect();
        if found[last_night].is_none() && nights.len() > 1 {
            warnings.push(format!(
                "{scenario} · {} · {variant}: not in the last night ({})",
                origin.provenance(),
                nights[last_night].name
            ));
        }
        for figure in FIGURES {
            let values: Vec<Option<f64>> = found
                .iter()
                .map(|f| f.and_then(|(v, s)| (figure.value)(v, s)))
                .collect();
            if values.iter().all(Option::is_none) {
                continue;
            }
            let jobs = found.iter().map(|f| f.map(|(v, _)| v.jobs)).collect();
            let key = (scenario.clone(), variant.clone(), origin.clone());
            let mut trend = Trend::new(&key, &mode, figure.key, values, jobs);
            judge_last(&mut trend, figure, judge, found[last_night].is_some());
            trends.push(trend);
        }
    }
    History {
        dir: dir.display().to_string(),
        nights: nights.iter().map(|n| n.name.clone()).collect(),
        baseline_nights: judge.baseline_nights,
        threshold: judge.threshold,
        trends,
        warnings,
    }
}

/// Fills the baseline (the median of up to k previous nights with a value) and the verdict.
fn judge_last(trend: &mut Trend, figure: &Figure, judge: Judge, in_last: bool) {
    let n = trend.values.len();
    let before: Vec<usize> = (0..n - 1)
        .rev()
        .filter(|&i| trend.values[i].is_some())
        .take(judge.baseline_nights)
        .collect();
    let median = |xs: Vec<f64>| Summary::of(&xs).map(|s| s.median);
    let baseline = median(before.iter().filter_map(|&i| trend.values[i]).collect());
    trend.baseline = baseline;
    trend.baseline_of = before.len();
    trend.last = trend.values[n - 1];
    trend.change = match (baseline, trend.last) {
        (Some(b), Some(l)) if b != 0.0 => Some((l - b) / b),
        _ => None,
    };
    let (Some(base), true) = (baseline, in_last) else {
        return;
    };
    let Some(last) = trend.last else {
        // Completed nothing where the baseline nights completed something.
        if figure.key == "time_per_unit_s" {
            trend.regressed = true;
            trend.reason = Some(format!(
                "completed nothing; the median of the {} nights before: {base:.1}",
                before.len()
            ));
        }
        return;
    };
    if figure.share {
        let share = |i: usize| {
            let jobs = f64::from(trend.jobs[i].unwrap_or(0).max(1));
            trend.values[i].map(|v| v / jobs)
        };
        let base_share = median(before.iter().filter_map(|&i| share(i)).collect());
        if let (Some(now), Some(then)) = (share(n - 1), base_share) {
            if now > then {
                trend.regressed = true;
                trend.reason = Some(format!(
                    "{} {last:.0} of {} jobs, a larger share than the median of the {} nights before ({:.0}%)",
                    figure.title,
                    trend.jobs[n - 1].unwrap_or(0),
                    before.len(),
                    then * 100.0
                ));
            }
        }
        return;
    }
    if let Some(change) = trend.change {
        let bad = if figure.rise_is_bad { change } else { -change };
        if bad > judge.threshold {
            trend.regressed = true;
            trend.reason = Some(format!(
                "{} {last:.1} against {base:.1}, the median of the {} nights before ({:+.1}%)",
                figure.title,
                before.len(),
                change * 100.0
            ));
        }
    }
}

/// The table: per scenario variant and figure, the last nights' values, the baseline and the
/// verdict.
pub fn table(history: &History, shown: usize) -> Table {
    use Kind::*;
    use Role::*;
    let from = history.nights.len().saturating_sub(shown);
    let fmt = |x: Option<f64>| x.map_or_else(|| "-".into(), |x| format!("{x:.1}"));
    let rows = history
        .trends
        .iter()
        .map(|t| {
            let title = FIGURES
                .iter()
                .find(|f| f.key == t.figure)
                .map_or(t.figure, |f| f.title);
            let values: Vec<String> = t.values[from..].iter().map(|v| fmt(*v)).collect();
            vec![
                Value::Text(t.scenario.clone()),
                Value::Text(t.origin.gpu.clone()),
                Value::Text(t.origin.provenance()),
                Value::Text(t.variant.clone()),
                Value::Text(t.mode.clone()),
                Value::Text(title.to_string()),
                Value::Text(values.join("  ")),
                Value::Number(t.baseline),
                Value::Number(t.last),
                Value::Text(
                    t.change
                        .map_or_else(|| "-".into(), |c| format!("{:+.1}%", c * 100.0)),
                ),
                Value::Text(if t.regressed { "regressed" } else { "ok" }.into()),
                Value::Text(t.reason.clone().unwrap_or_default()),
            ]
        })
        .collect();
    Table {
        name: "history",
        title: "History".into(),
        columns: vec![
            Column::new("scenario", "Scenario", Text, Group),
            Column::new("gpu", "GPU", Text, Group),
            Column::new("backend", "Backend", Text, Group),
            Column::new("variant", "Variant", Text, Brief),
            Column::new("mode", "Mode", Mode, Detail),
            Column::new("figure", "Figure", Text, Brief),
            Column::new("nights", "Last nights\noldest → newest", Text, Brief),
            Column::new("baseline", "Baseline\n(median)", Number { digits: 1 }, Brief),
            Column::new("last", "Last", Number { digits: 1 }, Detail),
            Column::new("change", "Change", Text, Brief),
            Column::new("verdict", "Verdict", Text, Brief),
            Column::new("reason", "Why", Text, Detail),
        ],
        rows,
        notes: vec![format!(
            "{} nights, {} shown: {} to {}. Baseline: the median of up to {} nights before the last one; a change beyond {:.1}% the bad way regresses, as does a larger share of OOM jobs.",
            history.nights.len(),
            history.nights.len() - from,
            history.nights[from],
            history.nights[history.nights.len() - 1],
            history.baseline_nights,
            history.threshold * 100.0
        )],
        terminal: true,
    }
}

/// One trend chart per scenario (on one GPU and backend) and figure, a line per variant.
pub fn charts(history: &History) -> Vec<Chart> {
    let mut groups: BTreeMap<(String, Origin, usize), Vec<&Trend>> = BTreeMap::new();
    for t in &history.trends {
        let figure = FIGURES.iter().position(|f| f.key == t.figure).unwrap_or(0);
        groups
            .entry((t.scenario.clone(), t.origin.clone(), figure))
            .or_default()
            .push(t);
    }
    let last = history.nights.len().saturating_sub(1);
    groups
        .into_iter()
        .map(|((scenario, origin, figure), trends)| {
            let f = &FIGURES[figure];
            Chart::Trend(TrendChart {
                name: format!(
                    "trend-{}-{}-{}",
                    plots::slug(&scenario),
                    plots::slug(&origin.gpu_model),
                    plots::slug(f.key)
                ),
                title: format!("{scenario} · {}: {}", origin.gpu, f.title),
                y_label: f.title.to_string(),
                nights: history.nights.clone(),
                lines: trends
                    .iter()
                    .map(|t| TrendLine {
                        label: t.variant.clone(),
                        mode: t.mode.clone(),
                        points: t
                            .values
                            .iter()
                            .enumerate()
                            .filter_map(|(i, v)| v.map(|v| (i, v)))
                            .collect(),
                        regressed: if t.regressed { vec![last] } else { Vec::new() },
                    })
                    .collect(),
                footnote: origin.provenance(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trend(values: &[Option<f64>], jobs: u32) -> Trend {
        let origin = Origin {
            gpu_model: "h100-80gb".into(),
            gpu: "H100".into(),
            backend: "sim".into(),
            simulated: true,
        };
        let key = ("s".into(), "v".into(), origin);
        let jobs = vec![Some(jobs); values.len()];
        Trend::new(&key, "full", "time_per_unit_s", values.to_vec(), jobs)
    }

    const JUDGE: Judge = Judge {
        baseline_nights: 3,
        threshold: 0.05,
        shown: 10,
    };

    fn judged(figure: usize, values: &[Option<f64>]) -> Trend {
        let mut t = trend(values, 3);
        judge_last(&mut t, &FIGURES[figure], JUDGE, true);
        t
    }

    #[test]
    fn one_odd_night_before_does_not_move_the_baseline() {
        // The night before was slow (300): against it the last night looks 17% faster; against
        // the median of three nights (100) it is 10% slower, a regression.
        let t = judged(0, &[Some(100.0), Some(100.0), Some(300.0), Some(110.0)]);
        assert_eq!(t.baseline, Some(100.0));
        assert_eq!(t.baseline_of, 3);
        assert!(t.regressed, "{t:?}");
        // Only k nights count: the oldest, fast one is outside the window of three.
        let t = judged(
            0,
            &[
                Some(50.0),
                Some(100.0),
                Some(100.0),
                Some(100.0),
                Some(104.0),
            ],
        );
        assert_eq!(t.baseline, Some(100.0));
        assert!(!t.regressed, "{t:?}");
    }

    #[test]
    fn direction_and_threshold_decide() {
        // Units per hour: a fall is bad.
        assert!(judged(1, &[Some(20.0), Some(20.0), Some(18.0)]).regressed);
        assert!(!judged(1, &[Some(20.0), Some(20.0), Some(22.0)]).regressed);
        assert!(!judged(0, &[Some(100.0), Some(104.9)]).regressed);
        // A first night has no baseline and cannot regress.
        let first = judged(0, &[Some(100.0)]);
        assert_eq!((first.baseline, first.regressed), (None, false));
        // Nothing completed where the nights before completed something.
        assert!(judged(0, &[Some(100.0), Some(100.0), None]).regressed);
    }

    #[test]
    fn more_out_of_memory_jobs_than_usual_regress() {
        assert!(judged(2, &[Some(0.0), Some(0.0), Some(1.0)]).regressed);
        assert!(!judged(2, &[Some(1.0), Some(0.0), Some(1.0), Some(1.0)]).regressed);
    }
}
