//! What a run recorded only in its event log: the jobs of the variant it was running when it
//! was killed. The tables are written after each variant, but `events.jsonl` gets every
//! `job_end` as it happens, so a run killed during a variant (its first one included) keeps every
//! finished job there. Those jobs, and their variant as `interrupted`, are added to what the
//! tables hold, so that nothing recorded is lost.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;

use super::load::{JobRow, VariantRow};
use super::runs::Run;
use super::scan::Row;
use crate::mode::SharingMode;
use crate::results::schema::Named;
use crate::results::{JobRecord, Outcome, VariantEnergy, VariantRecord, VariantStatus};

/// The fields of the events read here; others are ignored.
#[derive(Debug, Deserialize)]
struct Event {
    event: String,
    #[serde(default)]
    variant: String,
    #[serde(default)]
    repetition: u32,
    #[serde(default)]
    job: u32,
    #[serde(default)]
    workload: String,
    #[serde(default)]
    instance: Option<String>,
    #[serde(default)]
    start: Option<f64>,
    #[serde(default)]
    end: Option<f64>,
    #[serde(default)]
    duration_s: Option<f64>,
    #[serde(default)]
    pid: Option<u32>,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    layout: Option<String>,
}

/// Whether the run's event log holds a finished job: then the run counts even without tables.
pub fn has_finished_jobs(dir: &Path) -> bool {
    events(dir).iter().any(|e| e.event == "job_end")
}

/// Adds to `jobs` and `variants` the finished jobs of run `run` that only its event log holds,
/// and a row for each variant repetition they belong to that has none. Returns how many jobs.
pub fn recover(
    run: usize,
    r: &Run,
    jobs: &mut Vec<JobRow>,
    variants: &mut Vec<VariantRow>,
) -> usize {
    let known: HashSet<(String, u32, u32)> = jobs
        .iter()
        .filter(|j| j.run == run)
        .map(|j| (j.variant.clone(), j.repetition, j.job))
        .collect();
    let has_row: HashSet<(String, u32)> = variants
        .iter()
        .filter(|v| v.run == run)
        .map(|v| (v.variant.clone(), v.repetition))
        .collect();
    let events = events(&r.dir);
    let mut recovered: Vec<JobRow> = Vec::new();
    for e in events.iter().filter(|e| e.event == "job_end") {
        if known.contains(&(e.variant.clone(), e.repetition, e.job)) {
            continue;
        }
        let unit = r
            .scenario
            .as_ref()
            .and_then(|s| s.workload(&e.workload).ok())
            .map_or_else(|| "unit".to_string(), |w| w.unit.clone());
        // Its variant's start names the mode; a job logged without one is not migbench's.
        let Some(mode) = events
            .iter()
            .filter(|s| s.event == "variant_start")
            .filter(|s| s.variant == e.variant && s.repetition == e.repetition)
            .find_map(|s| SharingMode::parse_name(&s.mode))
        else {
            continue;
        };
        let row = JobRecord {
            variant: e.variant.clone(),
            repetition: e.repetition,
            job: e.job,
            mode,
            workload: e.workload.clone(),
            unit,
            instance_profile: None,
            instance_uuid: e.instance.clone(),
            start_s: e.start,
            end_s: e.end,
            duration_s: e.duration_s,
            exit_code: None,
            pid: e.pid,
            outcome: Outcome::parse_name(&e.outcome).unwrap_or(Outcome::Failed),
            vram_peak_gib: None,
            vram_constant_gib: None,
            energy_j: None,
            reason: None,
            log: None,
        };
        recovered.push(Row { run, row });
    }
    for start in events.iter().filter(|e| e.event == "variant_start") {
        if has_row.contains(&(start.variant.clone(), start.repetition)) {
            continue;
        }
        let of_it: Vec<&JobRow> = recovered
            .iter()
            .filter(|j| j.variant == start.variant && j.repetition == start.repetition)
            .collect();
        if of_it.is_empty() {
            continue;
        }
        let Some(mode) = SharingMode::parse_name(&start.mode) else {
            continue;
        };
        let count = |o: Outcome| of_it.iter().filter(|j| j.outcome == o).count() as u32;
        let row = VariantRecord {
            variant: start.variant.clone(),
            repetition: start.repetition,
            mode,
            layout: start.layout.clone().filter(|l| !l.is_empty()),
            backend: r.manifest.backend,
            status: VariantStatus::Interrupted,
            reason: Some(format!(
                "the run stopped during this variant; {} finished job(s) recovered from events.jsonl",
                of_it.len()
            )),
            jobs: of_it.len() as u32,
            jobs_ok: count(Outcome::Ok),
            jobs_oom: count(Outcome::Oom),
            jobs_failed: count(Outcome::Failed),
            makespan_s: None,
            units: 0,
            time_per_unit_s: None,
            units_per_hour: None,
            gpu_vram_peak_gib: None,
            energy: VariantEnergy::default(),
        };
        variants.push(Row { run, row });
    }
    let n = recovered.len();
    jobs.extend(recovered);
    n
}

/// The events of a run that can be read; a line cut short by a crash is skipped.
fn events(dir: &Path) -> Vec<Event> {
    crate::input::read_to_string(&dir.join("events.jsonl"), crate::input::RECORDS)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
