//! What the runs below some paths recorded: their manifests ([`super::runs`]) and the small
//! tables (jobs, variants, instances, the serving variants), read through each table's one
//! definition in [`crate::results`] ([`super::scan`]), plus what only an interrupted run's event
//! log holds ([`super::recover`]). The large table, samples, is only ever read reduced
//! ([`Results::vram_traces`]).

use std::path::PathBuf;

use polars::prelude::*;

use super::runs::{find_run_dirs, Run, ScenarioCache};
use super::scan::{rows, Row};
use crate::error::{Error, Result};
use crate::results::schema::{Named, Table};
use crate::results::{InstanceRecord, JobRecord, ServingRecord, ServingScope, VariantRecord};

pub use super::runs::Origin;
pub use super::traces::{Trace, TracePick};

/// One row of `jobs`, with its run.
pub type JobRow = Row<JobRecord>;
/// One row of `variants`, with its run.
pub type VariantRow = Row<VariantRecord>;
/// One row of `instances`, with its run.
pub type InstanceRow = Row<InstanceRecord>;
/// One variant row (`scope = variant`) of `serving`: all of a variant repetition's servers.
pub type ServingRow = Row<ServingRecord>;

/// What the runs below some paths recorded.
#[derive(Debug, Clone, Default)]
pub struct Results {
    /// Ordered by scenario, then start time.
    pub runs: Vec<Run>,
    pub jobs: Vec<JobRow>,
    pub variants: Vec<VariantRow>,
    pub instances: Vec<InstanceRow>,
    /// Runs with model servers only; empty for runs written before the serving table.
    pub serving: Vec<ServingRow>,
    /// Directories passed over, and why.
    pub warnings: Vec<String>,
}

impl Results {
    /// Reads every run below `paths`.
    pub fn load(paths: &[PathBuf]) -> Result<Results> {
        let mut results = Results::default();
        let mut scenarios = ScenarioCache::default();
        for dir in find_run_dirs(paths)? {
            match Run::read(dir, &mut scenarios) {
                Ok(run)
                    if !run.dir.join(format!("{}.parquet", JobRecord::NAME)).is_file()
                        && !super::recover::has_finished_jobs(&run.dir) =>
                {
                    results.warnings.push(format!(
                        "{}: no jobs.parquet and no finished job in events.jsonl (the run stopped before its first job ended); left out",
                        run.dir.display()
                    ))
                }
                Ok(run) => results.runs.push(run),
                Err(e) => results.warnings.push(format!("{e}; left out")),
            }
        }
        if results.runs.is_empty() {
            let listed: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            let mut message = format!(
                "no runs found below {}: a run is a directory with manifest.json and jobs.parquet, as `migbench run` writes",
                listed.join(", ")
            );
            for w in &results.warnings {
                message.push_str(&format!("\n  {w}"));
            }
            return Err(Error::Input(message));
        }
        results.runs.sort_by(|a, b| {
            (&a.manifest.scenario, &a.manifest.started_at, &a.dir).cmp(&(
                &b.manifest.scenario,
                &b.manifest.started_at,
                &b.dir,
            ))
        });
        results.jobs = rows(&results.runs, None)?;
        results.variants = rows(&results.runs, None)?;
        results.instances = rows(&results.runs, None)?;
        let variant_rows = col("scope").eq(lit(ServingScope::Variant.as_str()));
        results.serving = rows(&results.runs, Some(variant_rows))?;
        for (i, run) in results.runs.iter().enumerate() {
            let n = super::recover::recover(i, run, &mut results.jobs, &mut results.variants);
            if n > 0 {
                results.warnings.push(format!(
                    "{}: {n} finished job(s) of a variant the run did not finish are recovered from events.jsonl (no VRAM figures)",
                    run.dir.display()
                ));
            }
        }
        // Recovered rows go with their run; within a run, the order written stays.
        results.jobs.sort_by_key(|j| j.run);
        results.variants.sort_by_key(|v| v.run);
        Ok(results)
    }
}
