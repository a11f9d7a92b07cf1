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
use crate::results::stream::table_files;
use crate::results::{
    InstanceRecord, JobRecord, RequestRow, SampleRecord, ServingRecord, ServingScope, VariantRecord,
};

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

/// What to do with a run whose files cannot be read: a report leaves it out with a warning and
/// goes on; `compare` and `calibrate` refuse it (bad input, exit 2), as a figure missing on one
/// side would otherwise read as a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damaged {
    Skip,
    Refuse,
}

/// The small tables of some runs, in the order [`Results`] keeps them.
type Tables = (
    Vec<JobRow>,
    Vec<VariantRow>,
    Vec<InstanceRow>,
    Vec<ServingRow>,
);

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
    /// Reads every run below `paths`; `damaged` says what becomes of a run that cannot be read.
    pub fn load(paths: &[PathBuf], damaged: Damaged) -> Result<Results> {
        let mut results = Results::default();
        let mut scenarios = ScenarioCache::default();
        for dir in find_run_dirs(paths)? {
            let run =
                Run::read(dir, &mut scenarios).and_then(|run| check_tables(&run.dir).map(|()| run));
            if let (Err(e), Damaged::Refuse) = (&run, damaged) {
                return Err(Error::Input(e.to_string()));
            }
            match run {
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
            return Err(no_runs(paths, &results.warnings));
        }
        results.runs.sort_by(|a, b| {
            (&a.manifest.scenario, &a.manifest.started_at, &a.dir).cmp(&(
                &b.manifest.scenario,
                &b.manifest.started_at,
                &b.dir,
            ))
        });
        let read = match tables(&results.runs) {
            Ok(read) => read,
            // A file whose footer reads but whose pages do not: find whose it is.
            Err(e) => {
                let mut kept = Vec::new();
                for run in std::mem::take(&mut results.runs) {
                    match tables(std::slice::from_ref(&run)) {
                        Ok(_) => kept.push(run),
                        Err(e) if damaged == Damaged::Refuse => {
                            return Err(damaged_tables(&run, &e))
                        }
                        Err(e) => results
                            .warnings
                            .push(format!("{}; left out", damaged_tables(&run, &e))),
                    }
                }
                results.runs = kept;
                if results.runs.is_empty() {
                    return Err(no_runs(paths, &results.warnings));
                }
                // No run fails alone (then this fails as before), or the damaged ones are out.
                tables(&results.runs).map_err(|_| e)?
            }
        };
        (
            results.jobs,
            results.variants,
            results.instances,
            results.serving,
        ) = read;
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

/// The small tables of `runs`.
fn tables(runs: &[Run]) -> Result<Tables> {
    let variant_rows = col("scope").eq(lit(ServingScope::Variant.as_str()));
    Ok((
        rows(runs, None)?,
        rows(runs, None)?,
        rows(runs, None)?,
        rows(runs, Some(variant_rows))?,
    ))
}

fn damaged_tables(run: &Run, e: &Error) -> Error {
    Error::Input(format!(
        "{}: its tables cannot be read ({})",
        run.dir.display(),
        crate::bounds::short(e.to_string().lines().next().unwrap_or_default())
    ))
}

/// Nothing to report, and why each directory was passed over.
fn no_runs(paths: &[PathBuf], warnings: &[String]) -> Error {
    let listed: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let mut message = format!(
        "no runs found below {}: a run is a directory with manifest.json and jobs.parquet, as `migbench run` writes",
        listed.join(", ")
    );
    for w in warnings {
        message.push_str(&format!("\n  {w}"));
    }
    Error::Input(message)
}

/// Each Parquet file of a run is a regular file whose footer (its schema and row groups) reads:
/// a garbage, cut or empty file is named here rather than failing a scan of every run.
fn check_tables(dir: &std::path::Path) -> Result<()> {
    let tables = [
        JobRecord::NAME,
        VariantRecord::NAME,
        InstanceRecord::NAME,
        SampleRecord::NAME,
        ServingRecord::NAME,
        RequestRow::NAME,
    ];
    let files = tables
        .iter()
        .flat_map(|&table| table_files(dir, table).into_iter().map(move |f| (table, f)));
    for (table, path) in files {
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(Error::Input(format!(
                    "{}: cannot read: {e}",
                    path.display()
                )))
            }
        };
        let why = if !meta.is_file() {
            "not a regular file".to_string()
        } else {
            match std::fs::File::open(&path)
                .map_err(|e| e.to_string())
                .and_then(|f| ParquetReader::new(f).schema().map_err(|e| e.to_string()))
            {
                Ok(_) => continue,
                Err(e) => crate::bounds::short(e.lines().next().unwrap_or_default()),
            }
        };
        return Err(Error::Input(format!(
            "{}: not a readable Parquet file ({why}); the run's {table} table is damaged",
            path.display()
        )));
    }
    Ok(())
}
