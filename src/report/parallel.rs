//! "How many in parallel": per GPU, sharing mode and workload mix, how many jobs ran at once
//! with and without running out of memory, beside what `migbench plan` predicts.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::load::{JobRow, Origin, Results};
use super::runs::Run;
use super::table::{Column, Kind, Role, Table, Value};
use crate::catalog::Catalog;
use crate::mode::SharingMode;
use crate::overlap;
use crate::plan::{self, PlanRequest};
use crate::results::VariantStatus;
use crate::workload::{self, Workload};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParallelRow {
    #[serde(flatten)]
    pub origin: Origin,
    pub mode: String,
    /// The workloads of the jobs, sorted, joined by ` + `.
    pub workloads: String,
    /// The most jobs that ran at once in a repetition in which no job ran out of memory.
    pub most_without_oom: Option<u32>,
    /// The fewest jobs that ran at once in a repetition in which a job ran out of memory.
    pub fewest_with_oom: Option<u32>,
    /// What `plan` predicts, in jobs at once: every job may peak at the same moment, or starts
    /// are staggered so that one peaks at a time. Absent when the workloads are not known.
    pub plan_together: Option<u32>,
    pub plan_staggered: Option<u32>,
    /// What the four counts count: `jobs`, or for a mix of workloads (beyond `full`, which runs
    /// one job at a time) `copies of the mix`, one job of each workload, as `plan` counts: a
    /// mixed variant of one Qwen3-14B and two Qwen3-4B at once is one copy of the mix, not
    /// three jobs against a plan of two.
    #[serde(default = "jobs")]
    pub counted_in: String,
    /// How the runs compare with the plan.
    pub verdict: String,
    /// `scenario/variant` of the runs counted.
    pub variants: Vec<String>,
}

fn jobs() -> String {
    JOBS.into()
}

const JOBS: &str = "jobs";
const COPIES: &str = "copies of the mix";

/// Whether a mode and mix are counted in copies of the mix rather than in jobs.
fn in_copies(mode: SharingMode, workloads: &[String]) -> bool {
    workloads.len() > 1 && mode != SharingMode::Full
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    origin: Origin,
    mode: String,
    workloads: Vec<String>,
}

/// One row per GPU × backend × mode × workload mix, sorted by them.
pub fn parallel(results: &Results) -> Vec<ParallelRow> {
    let mut jobs_of: HashMap<(usize, &str, u32), Vec<&JobRow>> = HashMap::new();
    for j in &results.jobs {
        jobs_of
            .entry((j.run, j.variant.as_str(), j.repetition))
            .or_default()
            .push(j);
    }
    let mut rows: HashMap<Key, ParallelRow> = HashMap::new();
    for v in results
        .variants
        .iter()
        .filter(|v| v.status == VariantStatus::Ran)
    {
        let run = &results.runs[v.run];
        let Some(jobs) = jobs_of.get(&(v.run, v.variant.as_str(), v.repetition)) else {
            continue;
        };
        let mut workloads: Vec<String> = jobs.iter().map(|j| j.workload.clone()).collect();
        workloads.sort();
        workloads.dedup();
        let key = Key {
            origin: run.manifest.origin(),
            mode: v.mode.as_str().to_string(),
            workloads: workloads.clone(),
        };
        let copies = in_copies(v.mode, &workloads);
        let row = rows.entry(key).or_insert_with(|| {
            let (plan_together, plan_staggered) = planned(run, v.mode, &workloads).unzip();
            ParallelRow {
                origin: run.manifest.origin(),
                mode: v.mode.as_str().to_string(),
                workloads: workloads.join(" + "),
                most_without_oom: None,
                fewest_with_oom: None,
                plan_together,
                plan_staggered,
                counted_in: if copies { COPIES } else { JOBS }.into(),
                verdict: String::new(),
                variants: Vec::new(),
            }
        });
        let at_once = if copies {
            most_copies_at_once(jobs, &workloads)
        } else {
            // Jobs running at the same moment (one ending as another starts does not overlap).
            overlap::most_at_once(jobs.iter().filter_map(|j| Some((j.start_s?, j.end_s?)))) as u32
        };
        if at_once == 0 {
            continue;
        }
        if v.jobs_oom > 0 {
            row.fewest_with_oom = Some(row.fewest_with_oom.map_or(at_once, |n| n.min(at_once)));
        } else {
            row.most_without_oom = Some(row.most_without_oom.map_or(at_once, |n| n.max(at_once)));
        }
        let name = format!("{}/{}", run.manifest.scenario, v.variant);
        if !row.variants.contains(&name) {
            row.variants.push(name);
        }
    }
    let mut sorted: Vec<(Key, ParallelRow)> = rows.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    sorted
        .into_iter()
        .map(|(_, mut row)| {
            row.verdict = verdict(&row).to_string();
            row
        })
        .collect()
}

/// The most complete copies of a mix (one job of each of `workloads`) running at the same
/// moment.
pub fn most_copies_at_once(jobs: &[&JobRow], workloads: &[String]) -> u32 {
    let mut edges: Vec<(f64, i32, usize)> = jobs
        .iter()
        .filter_map(|j| {
            let w = workloads.iter().position(|w| *w == j.workload)?;
            Some([(j.start_s?, 1, w), (j.end_s?, -1, w)])
        })
        .flatten()
        .collect();
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut running = vec![0i32; workloads.len()];
    let mut most = 0;
    for (_, step, w) in edges {
        running[w] += step;
        most = most.max(running.iter().copied().min().unwrap_or(0));
    }
    most.max(0) as u32
}

/// `plan`'s answer for this mode and mix, in jobs at once (together, staggered), or for a mix
/// beyond `full` in copies of the mix ([`in_copies`]). A copy of a mix
/// is one job of each workload; under `full` jobs run one at a time whatever the mix.
fn planned(run: &Run, mode: SharingMode, workloads: &[String]) -> Option<(u32, u32)> {
    let gpu = Catalog::builtin().gpu(&run.manifest.gpu_model).ok()?;
    let mix: Vec<&Workload> = workloads
        .iter()
        .map(|name| match &run.scenario {
            Some(s) => s.workload(name).ok(),
            None => workload::find(name).ok(),
        })
        .collect::<Option<_>>()?;
    let request = PlanRequest {
        gpu,
        mix,
        headroom: 0.0,
    };
    let plans = plan::plan(&request);
    let p = plans.iter().find(|p| p.mode == mode)?;
    let jobs = |copies: usize| -> u32 {
        if mode == SharingMode::Full {
            copies.min(1) as u32
        } else if in_copies(mode, workloads) {
            copies as u32
        } else {
            (copies * workloads.len()) as u32
        }
    };
    Some((jobs(p.max_together), jobs(p.max_staggered)))
}

fn verdict(row: &ParallelRow) -> &'static str {
    match (row.plan_together, row.plan_staggered) {
        (Some(together), _) if row.fewest_with_oom.is_some_and(|n| n <= together) => {
            "ran out of memory where the plan fits"
        }
        (_, Some(staggered)) if row.most_without_oom.is_some_and(|n| n > staggered) => {
            "ran more than the plan allows"
        }
        (Some(_), Some(_)) => "as planned",
        _ => "no plan (unknown workload)",
    }
}

/// The "how many in parallel" table.
pub fn table(rows: &[ParallelRow]) -> Table {
    use Kind::*;
    use Role::*;
    let columns = vec![
        Column::new("gpu", "GPU", Text, Group),
        Column::new("backend", "Backend", Text, Group),
        Column::new("mode", "Mode", Mode, Brief),
        Column::new("workloads", "Workloads", Text, Brief),
        Column::new(
            "most_without_oom",
            "Ran at once\nno OOM",
            Number { digits: 0 },
            Brief,
        ),
        Column::new(
            "fewest_with_oom",
            "Ran at once\nwith OOM",
            Number { digits: 0 },
            Brief,
        ),
        Column::new(
            "plan_together",
            "Plan\ntogether",
            Number { digits: 0 },
            Brief,
        ),
        Column::new(
            "plan_staggered",
            "Plan\nstaggered",
            Number { digits: 0 },
            Brief,
        ),
        Column::new("counted_in", "Counted in", Text, Brief),
        Column::new("verdict", "Runs vs plan", Text, Detail),
        Column::new("variants", "Variants", Text, Detail),
    ];
    let count = |n: Option<u32>| Value::Number(n.map(f64::from));
    let rows = rows
        .iter()
        .map(|r| {
            vec![
                Value::Text(r.origin.gpu.clone()),
                Value::Text(r.origin.provenance()),
                Value::Text(r.mode.clone()),
                Value::Text(r.workloads.clone()),
                count(r.most_without_oom),
                count(r.fewest_with_oom),
                count(r.plan_together),
                count(r.plan_staggered),
                Value::Text(r.counted_in.clone()),
                Value::Text(r.verdict.clone()),
                Value::Text(r.variants.join(", ")),
            ]
        })
        .collect();
    Table {
        name: "parallel",
        title: "How many in parallel".into(),
        columns,
        rows,
        notes: vec![
            "Ran at once: the most jobs running at the same moment in a repetition without an out-of-memory error, and the fewest in one with such an error.".into(),
            "Counted in: jobs, or for a mix of workloads (beyond full, one job at a time) complete copies of the mix, one job of each workload, as `migbench plan` counts them.".into(),
            "Plan: what `migbench plan` predicts, in jobs (or copies) at once, when every job may peak at the same moment (together) or starts are spread so one peaks at a time (staggered).".into(),
        ],
        terminal: false,
    }
}
