//! The main table's data: one row per scenario variant, over every run and repetition of it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::load::{JobRow, Origin, Results, VariantRow};
use super::stats::Summary;
use super::table::{Column, Kind, Role, Shown, Table, Value};
use crate::mode::SharingMode;
use crate::results::{EnergySource, Outcome, VariantStatus};

/// A scenario variant on one GPU model and backend, over all its runs and repetitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantSummary {
    pub scenario: String,
    pub variant: String,
    #[serde(flatten)]
    pub origin: Origin,
    pub mode: String,
    pub layout: Option<String>,
    pub isolation: String,
    /// Run directories and variant runs (repetitions over all of them) that went in.
    pub runs: usize,
    pub repetitions: usize,
    /// What one job produces (`video`).
    pub unit: String,
    pub jobs: u32,
    pub jobs_ok: u32,
    pub jobs_oom: u32,
    /// Failed or timed out.
    pub jobs_failed: u32,
    /// The level each job held most of its run, over jobs with samples; absent when the jobs
    /// run different workloads, whose levels are never averaged together (see
    /// `job_vram_by_workload`).
    pub job_vram_constant_gib: Option<Summary>,
    pub job_vram_peak_gib: Option<Summary>,
    /// The same per workload, in name order; absent from reports written before it.
    #[serde(default)]
    pub job_vram_by_workload: Vec<WorkloadVram>,
    /// The whole GPU's peak, one value per repetition.
    pub gpu_vram_peak_gib: Option<Summary>,
    /// Start to end of each job that finished, over jobs and repetitions.
    pub time_per_job_s: Option<Summary>,
    /// Makespan ÷ units completed, one value per repetition.
    pub time_per_unit_s: Option<Summary>,
    pub units_per_hour: Option<Summary>,
    /// The whole GPU's energy per unit completed, in Wh, one value per repetition (absent
    /// from reports written before energy was recorded, and where the GPU reports none).
    #[serde(default)]
    pub energy_per_unit_wh: Option<Summary>,
    /// Per 1,000 output tokens of the measured requests, in J (servers).
    #[serde(default)]
    pub energy_per_kilotoken_j: Option<Summary>,
    /// The GPU's mean power over the jobs, in W.
    #[serde(default)]
    pub mean_power_w: Option<Summary>,
    /// Where the energy figures come from: `simulated`, `energy counter` or `power samples`.
    #[serde(default)]
    pub energy_from: Option<String>,
    /// The energy per unit at the scenario's `price_per_kwh`, in `energy_currency`, one value
    /// per repetition; absent without a price.
    #[serde(default)]
    pub energy_cost_per_unit: Option<Summary>,
    /// The same per million output tokens (servers).
    #[serde(default)]
    pub energy_cost_per_million_output_tokens: Option<Summary>,
    /// The scenario's currency, where there is an energy cost.
    #[serde(default)]
    pub energy_currency: Option<String>,
    /// `ran`, or what kept repetitions from running (`infeasible: ...`, `interrupted`).
    pub status: String,
}

/// What the jobs of one workload held and peaked at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadVram {
    pub workload: String,
    pub constant_gib: Option<Summary>,
    pub peak_gib: Option<Summary>,
}

impl VariantSummary {
    /// `h100-3x-ti2v · H100 80GB HBM3 · simulated`: the heading rows are grouped under.
    pub fn heading(&self) -> String {
        heading(&self.scenario, &self.origin)
    }
}

/// The heading of a scenario's rows on one GPU model and backend, in every table and chart.
pub fn heading(scenario: &str, origin: &Origin) -> String {
    format!("{scenario} · {} · {}", origin.gpu, origin.provenance())
}

/// The sharing mode a table names, if migbench knows it.
pub fn parse_mode(text: &str) -> Option<SharingMode> {
    SharingMode::ALL.into_iter().find(|m| m.as_str() == text)
}

/// What identifies a row: scenario, variant and origin.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    scenario: String,
    variant: String,
    origin: Origin,
}

/// The main table's rows, in scenario order, variants in the order they first ran.
pub fn summarize(results: &Results) -> Vec<VariantSummary> {
    let mut jobs_of: HashMap<(usize, &str, u32), Vec<&JobRow>> = HashMap::new();
    for j in &results.jobs {
        jobs_of
            .entry((j.run, j.variant.as_str(), j.repetition))
            .or_default()
            .push(j);
    }
    let energy_prices: Vec<EnergyPrice> = results
        .runs
        .iter()
        .map(|r| {
            let gpu = &r.scenario.as_ref()?.file.gpu;
            Some((gpu.price_per_kwh.as_ref()?.amount, gpu.currency()))
        })
        .collect();
    let mut order: Vec<Key> = Vec::new();
    let mut members: HashMap<Key, Vec<&VariantRow>> = HashMap::new();
    for v in &results.variants {
        let m = &results.runs[v.run].manifest;
        let key = Key {
            scenario: m.scenario.clone(),
            variant: v.variant.clone(),
            origin: m.origin(),
        };
        let entry = members.entry(key.clone()).or_default();
        if entry.is_empty() {
            order.push(key);
        }
        entry.push(v);
    }
    order
        .into_iter()
        .map(|key| {
            let reps = &members[&key];
            let jobs: Vec<&JobRow> = reps
                .iter()
                .flat_map(|v| {
                    jobs_of
                        .get(&(v.run, v.variant.as_str(), v.repetition))
                        .into_iter()
                        .flatten()
                        .copied()
                })
                .collect();
            summarize_variant(key, reps, &jobs, &energy_prices)
        })
        .collect()
}

/// A run's price per kWh and its currency, where its scenario gives one.
type EnergyPrice<'r> = Option<(f64, &'r str)>;

/// Joules per kWh.
const J_PER_KWH: f64 = 3.6e6;

fn summarize_variant(
    key: Key,
    reps: &[&VariantRow],
    jobs: &[&JobRow],
    energy_prices: &[EnergyPrice],
) -> VariantSummary {
    let latest = reps
        .iter()
        .max_by_key(|v| v.run)
        .expect("a group has a member");
    let mut runs: Vec<usize> = reps.iter().map(|v| v.run).collect();
    runs.dedup();
    let ok: Vec<&&JobRow> = jobs.iter().filter(|j| j.outcome == Outcome::Ok).collect();
    let durations: Vec<f64> = ok
        .iter()
        .filter_map(|j| j.duration_s.or_else(|| Some(j.end_s? - j.start_s?)))
        .collect();
    let values = |f: fn(&VariantRow) -> Option<f64>| -> Option<Summary> {
        Summary::of(&reps.iter().filter_map(|v| f(v)).collect::<Vec<_>>())
    };
    let mut units: Vec<&str> = jobs.iter().map(|j| j.unit.as_str()).collect();
    units.sort_unstable();
    units.dedup();
    let sum = |f: fn(&VariantRow) -> u32| reps.iter().map(|v| f(v)).sum::<u32>();
    let by_workload = vram_by_workload(jobs);
    // Energy at each run's price: J ÷ 3.6 MJ per kWh × price per kWh.
    let priced = |f: fn(&VariantRow) -> Option<f64>, per: f64| {
        let costs: Vec<f64> = reps
            .iter()
            .filter_map(|v| Some(f(v)? / J_PER_KWH * per * energy_prices.get(v.run)?.as_ref()?.0))
            .collect();
        Summary::of(&costs)
    };
    let energy_cost_per_unit = priced(|v| v.energy.energy_per_unit_j, 1.0);
    let energy_cost_per_million_output_tokens = priced(|v| v.energy.energy_per_kilotoken_j, 1000.0);
    let priced_any =
        energy_cost_per_unit.is_some() || energy_cost_per_million_output_tokens.is_some();
    let energy_currency = super::cost::pooled_currency(
        reps.iter()
            .filter_map(|v| Some(energy_prices.get(v.run)?.as_ref()?.1)),
    )
    .filter(|_| priced_any);
    let one_workload = match by_workload.as_slice() {
        [one] => Some((one.constant_gib, one.peak_gib)),
        _ => None,
    };
    VariantSummary {
        isolation: latest.mode.isolation().to_string(),
        mode: latest.mode.as_str().to_string(),
        layout: latest.layout.clone(),
        runs: runs.len(),
        repetitions: reps.len(),
        unit: if units.is_empty() {
            "unit".into()
        } else {
            units.join("+")
        },
        jobs: sum(|v| v.jobs),
        jobs_ok: sum(|v| v.jobs_ok),
        jobs_oom: sum(|v| v.jobs_oom),
        jobs_failed: sum(|v| v.jobs_failed),
        job_vram_constant_gib: one_workload.and_then(|w| w.0),
        job_vram_peak_gib: one_workload.and_then(|w| w.1),
        job_vram_by_workload: by_workload,
        gpu_vram_peak_gib: values(|v| v.gpu_vram_peak_gib),
        time_per_job_s: Summary::of(&durations),
        time_per_unit_s: values(|v| v.time_per_unit_s),
        units_per_hour: values(|v| v.units_per_hour),
        energy_per_unit_wh: values(|v| v.energy.energy_per_unit_j.map(|j| j / 3600.0)),
        energy_per_kilotoken_j: values(|v| v.energy.energy_per_kilotoken_j),
        mean_power_w: values(|v| v.energy.mean_power_w),
        energy_from: latest
            .energy
            .energy_source
            .map(|s| energy_from(s).to_string()),
        energy_currency,
        energy_cost_per_unit,
        energy_cost_per_million_output_tokens,
        status: status(reps),
        scenario: key.scenario,
        variant: key.variant,
        origin: key.origin,
    }
}

/// How a report names where an energy figure comes from.
pub fn energy_from(source: EnergySource) -> &'static str {
    match source {
        EnergySource::Model => "simulated",
        EnergySource::Counter => "energy counter",
        EnergySource::PowerSamples => "power samples",
    }
}

/// Held and peak VRAM per workload: a mix's 14 GiB and 4 GiB jobs are two figures, not their
/// mean.
fn vram_by_workload(jobs: &[&JobRow]) -> Vec<WorkloadVram> {
    let mut names: Vec<&str> = jobs.iter().map(|j| j.workload.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let of = |f: fn(&JobRow) -> Option<f64>| {
                let values: Vec<f64> = jobs
                    .iter()
                    .filter(|j| j.workload == name)
                    .filter_map(|j| f(j))
                    .collect();
                Summary::of(&values)
            };
            WorkloadVram {
                workload: name.to_string(),
                constant_gib: of(|j| j.vram_constant_gib),
                peak_gib: of(|j| j.vram_peak_gib),
            }
        })
        .collect()
}

/// `qwen3-14b 35.0/35.3, qwen3-4b 8.5/8.6`: held (mean) and peak (max) per workload; the
/// workload names are left out when there is one.
fn held_and_peak(v: &VariantSummary) -> String {
    let one = |s: Option<Summary>, f: fn(&Summary) -> f64| {
        s.map_or("-".into(), |s| format!("{:.1}", f(&s)))
    };
    let figures = |w: &WorkloadVram| {
        format!(
            "{}/{}",
            one(w.constant_gib, |s| s.mean),
            one(w.peak_gib, |s| s.max)
        )
    };
    match v.job_vram_by_workload.as_slice() {
        [] => "-/-".into(),
        [w] => figures(w),
        all => all
            .iter()
            .map(|w| format!("{} {}", w.workload, figures(w)))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// `ran` when every repetition ran; otherwise what the others came to, with the first reason.
fn status(reps: &[&VariantRow]) -> String {
    let other: Vec<&&VariantRow> = reps
        .iter()
        .filter(|v| v.status != VariantStatus::Ran)
        .collect();
    match other.first() {
        None => "ran".into(),
        Some(first) => {
            let mut text = if other.len() == reps.len() {
                first.status.as_str().to_string()
            } else {
                format!(
                    "{} of {} {}",
                    other.len(),
                    reps.len(),
                    first.status.as_str()
                )
            };
            if let Some(reason) = &first.reason {
                text.push_str(&format!(": {reason}"));
            }
            text
        }
    }
}

/// Warnings in hyperfine's spirit: variants that ran once, and job times with outliers.
pub fn warnings(rows: &[VariantSummary]) -> Vec<String> {
    let mut out = Vec::new();
    let mut once: Vec<(String, Vec<&str>)> = Vec::new();
    for r in rows.iter().filter(|r| r.repetitions == 1) {
        match once.last_mut() {
            Some((heading, names)) if *heading == r.heading() => names.push(&r.variant),
            _ => once.push((r.heading(), vec![&r.variant])),
        }
    }
    for (heading, names) in once {
        out.push(format!(
            "{heading}: ran once ({}): no spread between repetitions; set repetitions in the scenario or run it again",
            names.join(", ")
        ));
    }
    for r in rows {
        if let Some(t) = r.time_per_job_s.filter(|t| t.outliers > 0) {
            out.push(format!(
                "{} · {}: {} of {} job times are statistical outliers (more than 10 standard deviations from the median, by the MAD, and more than {:.0}% of it); the GPU may have been busy with other work",
                r.heading(),
                r.variant,
                t.outliers,
                t.n,
                super::stats::OUTLIER_RELATIVE_FLOOR * 100.0
            ));
        }
    }
    out
}

/// The columns that say which scenario variant a row is, first in every table with one row per
/// scenario variant: rows are grouped by scenario, GPU and backend.
pub fn variant_columns() -> Vec<Column> {
    use Kind::*;
    use Role::*;
    vec![
        Column::new("scenario", "Scenario", Text, Group),
        Column::new("gpu", "GPU", Text, Group),
        Column::new("backend", "Backend", Text, Group),
        Column::new("variant", "Variant", Text, Brief),
        Column::new("mode", "Mode", Mode, Brief),
        Column::new("layout", "Layout", Text, Detail),
    ]
}

/// The values of [`variant_columns`].
pub fn variant_cells(
    scenario: &str,
    origin: &Origin,
    variant: &str,
    mode: &str,
    layout: Option<&str>,
) -> Vec<Value> {
    vec![
        Value::Text(scenario.to_string()),
        Value::Text(origin.gpu.clone()),
        Value::Text(origin.provenance()),
        Value::Text(variant.to_string()),
        Value::Text(mode.to_string()),
        Value::Text(layout.unwrap_or("-").to_string()),
    ]
}

/// The main table: one row per scenario variant.
pub fn table(rows: &[VariantSummary]) -> Table {
    use Kind::*;
    use Role::*;
    let stat = |shown, digits| Stat { shown, digits };
    let mut columns = variant_columns();
    columns.extend([
        Column::new("isolation", "Isolation", Text, Detail),
        Column::new("repetitions", "Runs", Count, Detail),
        Column::new("jobs", "Jobs", Count, Detail),
        Column::new("jobs_ok", "OK", Count, Detail),
        Column::new("jobs_oom", "OOM", Count, Detail),
        Column::new("jobs_failed", "Failed", Count, Detail),
        Column::new("jobs_summary", "Jobs\nok/OOM/fail", Text, Terminal),
        Column::new(
            "job_vram_constant_gib",
            "Job GiB constant",
            stat(Shown::Mean, 1),
            Detail,
        ),
        Column::new(
            "job_vram_peak_gib",
            "Job GiB peak",
            stat(Shown::Max, 1),
            Detail,
        ),
        Column::new("job_vram", "Job GiB\nconst/peak", Text, Terminal),
        Column::new(
            "job_vram_by_workload",
            "Job GiB constant/peak\nby workload",
            Text,
            Detail,
        ),
        Column::new(
            "gpu_vram_peak_gib",
            "GPU GiB\npeak",
            stat(Shown::Max, 1),
            Brief,
        ),
        Column::new(
            "time_per_job_s",
            "s per job\nmean ± sd",
            stat(Shown::MeanSd, 1),
            Brief,
        ),
        Column::new(
            "time_per_job_s",
            "s per job\nmin–max",
            stat(Shown::Range, 1),
            Detail,
        ),
        Column::new(
            "time_per_unit_s",
            "s per\nunit",
            stat(Shown::MeanSd, 1),
            Brief,
        ),
        Column::new(
            "units_per_hour",
            "Units\nper h",
            stat(Shown::MeanSd, 1),
            Brief,
        ),
        Column::new(
            "energy_per_unit_wh",
            "Wh per\nunit",
            stat(Shown::MeanSd, 1),
            Brief,
        ),
        Column::new(
            "energy_per_kilotoken_j",
            "J per 1k\noutput tok",
            stat(Shown::MeanSd, 1),
            Detail,
        ),
        Column::new("mean_power_w", "Mean W", stat(Shown::MeanSd, 0), Detail),
        Column::new("energy_from", "Energy from", Text, Detail),
    ]);
    let mut cells: Vec<Vec<Value>> = rows
        .iter()
        .map(|r| {
            let mut cells = variant_cells(
                &r.scenario,
                &r.origin,
                &r.variant,
                &r.mode,
                r.layout.as_deref(),
            );
            cells.extend([
                Value::Text(r.isolation.clone()),
                Value::Count(r.repetitions as u64),
                Value::Count(u64::from(r.jobs)),
                Value::Count(u64::from(r.jobs_ok)),
                Value::Count(u64::from(r.jobs_oom)),
                Value::Count(u64::from(r.jobs_failed)),
                Value::Text(format!(
                    "{}/{}/{} of {}",
                    r.jobs_ok, r.jobs_oom, r.jobs_failed, r.jobs
                )),
                Value::Stat(r.job_vram_constant_gib),
                Value::Stat(r.job_vram_peak_gib),
                Value::Text(held_and_peak(r)),
                Value::Text(held_and_peak(r)),
                Value::Stat(r.gpu_vram_peak_gib),
                Value::Stat(r.time_per_job_s),
                Value::Stat(r.time_per_job_s),
                Value::Stat(r.time_per_unit_s),
                Value::Stat(r.units_per_hour),
                Value::Stat(r.energy_per_unit_wh),
                Value::Stat(r.energy_per_kilotoken_j),
                Value::Stat(r.mean_power_w),
                Value::Text(r.energy_from.clone().unwrap_or_else(|| "-".into())),
            ]);
            cells
        })
        .collect();
    type Figure = fn(&VariantSummary) -> Option<Summary>;
    // (key, header, currency column, figure)
    let costs: [(&str, &str, &str, Figure); 2] = [
        (
            "energy_cost_per_unit",
            "Energy cost\nper unit",
            "energy_cost_per_unit_currency",
            |r| r.energy_cost_per_unit,
        ),
        (
            "energy_cost_per_million_output_tokens",
            "Energy cost per\nM output tok",
            "energy_cost_per_million_output_tokens_currency",
            |r| r.energy_cost_per_million_output_tokens,
        ),
    ];
    let mut notes: Vec<String> = vec![
            "Job GiB constant: the level a job held most of its run (T's word) (mean over jobs); peak: the largest sample of any job; a variant mixing workloads has these per workload only (different models' levels are never averaged). GPU GiB peak: the whole GPU's largest sample.".into(),
            "s per job: start to end of each job that finished, mean ± standard deviation over jobs and repetitions. s per unit: makespan ÷ units completed (mean over repetitions); units per h: units completed per hour of makespan, on one GPU.".into(),
            "Isolation: MIG guarantees each instance its memory and SMs; MPS and time-slicing do not.".into(),
            "Wh per unit: the whole GPU's energy from the first job's start to the last job's end ÷ units completed (mean over repetitions); J per 1k output tok likewise per 1,000 output tokens of the measured requests. Energy from: the GPU's energy counter (NVML), its power samples integrated where it has no counter, or under --sim the simulator's power model (the catalog's board and idle power, docs/energy.md). Under MIG and MPS the GPU has one counter: a job's share (jobs table, energy_j) is by its MIG instance's measured SM activity where NVML's GPM gives it, else by SM-seconds (variants table, energy_split).".into(),
    ];
    let notes_before_costs = notes.len();
    for (key, header, currency_key, value) in costs {
        if rows.iter().all(|r| value(r).is_none()) {
            continue;
        }
        if notes.len() == notes_before_costs {
            notes.push("Energy cost: that energy at the scenario's price_per_kwh, in its currency (the GPU's energy only: not the host's, nor cooling).".into());
        }
        let cost = super::cost::CostColumn {
            key,
            header,
            currency_key,
            kind: stat(Shown::MeanSd, 4),
            role: Brief,
            values: rows
                .iter()
                .map(|r| (value(r), r.energy_currency.as_deref()))
                .collect(),
        };
        super::cost::push(&mut columns, &mut cells, cost);
    }
    columns.push(Column::new("status", "Status", Text, Detail));
    for (row, r) in cells.iter_mut().zip(rows) {
        row.push(Value::Text(r.status.clone()));
    }
    Table {
        name: "variants",
        title: "Variants".into(),
        columns,
        rows: cells,
        notes,
        terminal: true,
    }
}

/// A variant of three jobs on a simulated H100, for other modules' tests: `oom` of them ran out
/// of memory, the rest took `per_unit` seconds a unit (none completed for `None`).
#[cfg(test)]
pub fn example(variant: &str, mode: &str, per_unit: Option<f64>, oom: u32) -> VariantSummary {
    VariantSummary {
        scenario: "s".into(),
        variant: variant.into(),
        origin: Origin {
            gpu_model: "h100-80gb".into(),
            gpu: "H100".into(),
            backend: "sim".into(),
            simulated: true,
        },
        mode: mode.into(),
        layout: None,
        isolation: parse_mode(mode).map_or("none", |m| m.isolation()).into(),
        runs: 1,
        repetitions: 1,
        unit: "video".into(),
        jobs: 3,
        jobs_ok: 3 - oom,
        jobs_oom: oom,
        jobs_failed: 0,
        job_vram_constant_gib: None,
        job_vram_peak_gib: None,
        job_vram_by_workload: Vec::new(),
        gpu_vram_peak_gib: None,
        time_per_job_s: None,
        time_per_unit_s: per_unit.and_then(|t| Summary::of(&[t])),
        units_per_hour: per_unit.and_then(|t| Summary::of(&[3600.0 / t])),
        energy_per_unit_wh: None,
        energy_per_kilotoken_j: None,
        mean_power_w: None,
        energy_from: None,
        energy_cost_per_unit: None,
        energy_cost_per_million_output_tokens: None,
        energy_currency: None,
        status: "ran".into(),
    }
}
