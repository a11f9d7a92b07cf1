//! `migbench report`: what the runs below some directories add up to, as tables and plots.
//!
//! - [`load`]: finds run directories and reads their tables lazily with polars;
//! - [`stats`]: mean, standard deviation, median, min, max and MAD outliers;
//! - [`summary`]: the main table, one row per scenario variant;
//! - [`serving`]: the serving table, one row per scenario variant with model servers;
//! - [`parallel`]: how many jobs ran at once beside what `plan` predicts;
//! - [`table`]: the one table description every exporter renders;
//! - [`charts`] and [`plots`]: what is plotted, and the drawing;
//! - [`export`]: terminal, Markdown, HTML, CSV, JSON and plot files, behind one trait.
//!
//! A report directory holds `report.json` ([`ReportData`]), which `migbench compare` reads back.

pub mod charts;
pub mod cost;
pub mod export;
pub mod hosts;
pub mod load;
pub mod parallel;
pub mod plots;
pub mod recover;
pub mod runs;
pub mod scan;
pub mod sections;
pub mod serving;
pub mod stats;
pub mod summary;
pub mod sweep;
pub mod table;
pub mod traces;
pub mod verdict;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use load::{Damaged, Results};
use parallel::ParallelRow;
use plots::Plot;
use serving::ServingSummary;
use summary::VariantSummary;
use table::{Column, Kind, Role, Table, Value};

/// Said at the top of every report that holds simulator results.
pub const SIMULATED_NOTE: &str = "Simulated results (backend sim): times are simulated seconds and memory is the simulator's model, not measurements of a GPU.";

/// The file in a report directory that holds its data.
pub const REPORT_JSON: &str = "report.json";

/// What a report says, as `report.json` holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportData {
    pub migbench_version: String,
    pub generated_at: String,
    pub runs: Vec<RunEntry>,
    pub variants: Vec<VariantSummary>,
    /// The variants with model servers; absent from reports written before it.
    #[serde(default)]
    pub serving: Vec<ServingSummary>,
    pub parallel: Vec<ParallelRow>,
    /// Each scenario variant on each machine (host and GPU); absent from older reports.
    #[serde(default)]
    pub hosts: Vec<hosts::HostRow>,
    /// Each point of each load sweep, and each swept variant's capacity within its SLO;
    /// absent from reports written before them.
    #[serde(default)]
    pub sweep: Vec<sweep::SweepPoint>,
    #[serde(default)]
    pub capacity: Vec<sweep::Capacity>,
    /// The answer first: per scenario and GPU; absent from reports written before it.
    #[serde(default)]
    pub verdicts: Vec<verdict::ScenarioVerdict>,
    pub warnings: Vec<String>,
}

/// A run that went into the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEntry {
    pub dir: String,
    pub scenario: String,
    /// The scenario file's sha256 (`manifest.json`); empty in reports written before it.
    #[serde(default)]
    pub scenario_sha256: String,
    #[serde(flatten)]
    pub origin: load::Origin,
    pub started_at: String,
    pub status: String,
    /// The machine and GPU it ran on, and its Slurm job (`120_3` for an array task).
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub gpu_uuid: String,
    #[serde(default)]
    pub slurm_job: Option<String>,
}

/// A report: its data, the tables made of it, and the plots.
#[derive(Debug, Clone)]
pub struct Report {
    pub data: ReportData,
    /// The main table first.
    pub tables: Vec<Table>,
    pub plots: Vec<Plot>,
}

impl ReportData {
    /// Reads and summarises every run below `paths`, without plots; `damaged` says what becomes
    /// of a run that cannot be read.
    pub fn from_runs(paths: &[PathBuf], damaged: Damaged) -> Result<(ReportData, Results)> {
        let results = Results::load(paths, damaged)?;
        let variants = summary::summarize(&results);
        let mut warnings = results.warnings.clone();
        warnings.extend(summary::warnings(&variants));
        warnings.extend(serving::warnings(&results));
        let hosts = hosts::breakdown(&results, &variants);
        warnings.extend(hosts::warnings(&hosts));
        let data = ReportData {
            migbench_version: env!("CARGO_PKG_VERSION").to_string(),
            generated_at: crate::results::now_rfc3339(),
            runs: results
                .runs
                .iter()
                .map(|r| RunEntry {
                    dir: r.dir.display().to_string(),
                    scenario: r.manifest.scenario.clone(),
                    scenario_sha256: r.manifest.scenario_sha256.clone(),
                    origin: r.manifest.origin(),
                    started_at: r.manifest.started_at.clone(),
                    status: r.manifest.status.clone(),
                    host: r.manifest.host.clone(),
                    gpu_uuid: r.manifest.gpu_uuid.clone(),
                    slurm_job: r.manifest.slurm.as_ref().map(|s| s.display()),
                })
                .collect(),
            parallel: parallel::parallel(&results),
            serving: serving::summarize(&results, &variants),
            sweep: sweep::points(&results),
            capacity: Vec::new(),
            verdicts: Vec::new(),
            variants,
            hosts,
            warnings,
        };
        let data = ReportData {
            capacity: sweep::capacities(&data.sweep),
            ..data
        };
        let data = ReportData {
            verdicts: verdict::verdicts(
                &data.variants,
                &data.serving,
                &data.capacity,
                &data.parallel,
            ),
            ..data
        };
        Ok((data, results))
    }

    /// Reads `report.json` from a report directory.
    pub fn read(dir: &Path) -> Result<ReportData> {
        let path = dir.join(REPORT_JSON);
        let text = crate::input::read_to_string(&path, crate::input::RECORDS)
            .map_err(|e| Error::Input(format!("{}: cannot read: {e}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::Input(format!(
                "{}: not a migbench report (line {} column {}: {}); write one with `migbench report`",
                path.display(),
                e.line(),
                e.column(),
                crate::location::json_error(&text, &e)
            ))
        })
    }

    /// True when every result is simulated; false when every one is measured; `None` for a mix.
    pub fn simulated(&self) -> Option<bool> {
        let sim = self.variants.iter().filter(|v| v.origin.simulated).count();
        match sim {
            0 => Some(false),
            n if n == self.variants.len() => Some(true),
            _ => None,
        }
    }
}

impl Report {
    /// The whole report of every run below `paths`: tables and plots.
    pub fn build(paths: &[PathBuf]) -> Result<Report> {
        let (mut data, results) = ReportData::from_runs(paths, Damaged::Skip)?;
        let (charts, warnings) =
            charts::charts(&results, &data.variants, &data.serving, &data.sweep)?;
        data.warnings.extend(warnings);
        let (sections, charts): (Vec<String>, Vec<_>) = charts.into_iter().unzip();
        let mut plots = plots::render_all(&charts)?;
        for (plot, section) in plots.iter_mut().zip(sections) {
            plot.section = section;
        }
        make_names_unique(&mut plots);
        // The answer first.
        let mut tables = vec![verdict::table(&data.verdicts)];
        tables.extend(verdict::across_gpus(&data.parallel));
        let mut main = summary::table(&data.variants);
        let mut serving_table = (!data.serving.is_empty()).then(|| serving::table(&data.serving));
        let pooled = hosts::machine_count(&data.hosts) > 1;
        if pooled {
            let variants = data.variants.iter();
            let keys = variants.map(|v| (v.scenario.as_str(), v.variant.as_str(), &v.origin));
            hosts::annotate(&mut main, keys, &data.hosts);
            if let Some(t) = &mut serving_table {
                let serving = data.serving.iter();
                let keys = serving.map(|v| (v.scenario.as_str(), v.variant.as_str(), &v.origin));
                hosts::annotate(t, keys, &data.hosts);
            }
        }
        tables.push(main);
        tables.extend(serving_table);
        if !data.sweep.is_empty() {
            tables.push(sweep::capacity_table(&data.capacity));
            tables.push(sweep::table(&data.sweep));
        }
        if pooled {
            tables.push(hosts::table(&data.hosts));
        }
        tables.push(parallel::table(&data.parallel));
        tables.push(runs_table(&data.runs));
        // Every exporter indexes a row by its columns: a table built wrong is migbench's fault,
        // said as such, never an index out of bounds in an exporter.
        for t in &tables {
            if let Some(r) = t.rows.iter().position(|r| r.len() != t.columns.len()) {
                return Err(Error::Harness(format!(
                    "report table {} has {} cells in row {r} for {} columns",
                    t.name,
                    t.rows[r].len(),
                    t.columns.len()
                )));
            }
        }
        Ok(Report {
            data,
            tables,
            plots,
        })
    }

    /// Writes every export into `dir` (created if needed); returns the files written.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let fail = |p: &Path, e: std::io::Error| {
            Error::Harness(format!("cannot write {}: {e}", p.display()))
        };
        let mut written = Vec::new();
        for exporter in export::all() {
            for part in exporter.export(self)? {
                let path = dir.join(&part.path);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| fail(parent, e))?;
                }
                std::fs::write(&path, &part.bytes).map_err(|e| fail(&path, e))?;
                written.push(path);
            }
        }
        Ok(written)
    }
}

/// Two variants whose names slug alike (or one scenario on two backends) get `-2`, `-3`.
fn make_names_unique(plots: &mut [Plot]) {
    let mut seen = std::collections::HashMap::<String, usize>::new();
    for p in plots.iter_mut() {
        let n = seen.entry(p.name.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            p.name = format!("{}-{n}", p.name);
        }
    }
}

fn runs_table(runs: &[RunEntry]) -> Table {
    use Kind::Text;
    use Role::*;
    let mut table = Table {
        name: "runs",
        title: "Runs".into(),
        columns: vec![
            Column::new("dir", "Directory", Text, Brief),
            Column::new("scenario", "Scenario", Text, Brief),
            Column::new("backend", "Backend", Text, Brief),
            Column::new("gpu_model", "GPU", Text, Brief),
            Column::new("started_at", "Started", Text, Brief),
            Column::new("status", "Status", Text, Brief),
        ],
        rows: runs
            .iter()
            .map(|r| {
                vec![
                    Value::Text(r.dir.clone()),
                    Value::Text(r.scenario.clone()),
                    Value::Text(r.origin.provenance()),
                    Value::Text(r.origin.gpu.clone()),
                    Value::Text(r.started_at.clone()),
                    Value::Text(r.status.clone()),
                ]
            })
            .collect(),
        notes: Vec::new(),
        terminal: false,
    };
    // Where runs differ in them, the machine, the GPU and the Slurm job name each run.
    let differ = |f: fn(&RunEntry) -> &str| runs.iter().any(|r| f(r) != f(&runs[0]));
    type Cell = fn(&RunEntry) -> String;
    let extra: [(bool, Column, Cell); 3] = [
        (
            differ(|r| &r.host),
            Column::new("host", "Host", Text, Brief),
            |r| r.host.clone(),
        ),
        (
            differ(|r| &r.gpu_uuid),
            Column::new("gpu_uuid", "GPU UUID", Text, Brief),
            |r| r.gpu_uuid.clone(),
        ),
        (
            runs.iter().any(|r| r.slurm_job.is_some()),
            Column::new("slurm_job", "Slurm job", Text, Brief),
            |r| r.slurm_job.clone().unwrap_or_else(|| "-".into()),
        ),
    ];
    for (shown, column, value) in extra {
        if shown {
            table.columns.push(column);
            for (cells, run) in table.rows.iter_mut().zip(runs) {
                cells.push(Value::Text(value(run)));
            }
        }
    }
    table
}
