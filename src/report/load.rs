//! Finding run directories and reading their tables.
//!
//! Every directory holding a `manifest.json` below the given paths is a run (the walk does not
//! enter it further, nor follow symbolic links, so a `baseline` link in a history directory does
//! not count its runs twice). The tables of all runs are read with polars in one lazy scan per
//! table, each row tagged with the index of its run; the manifest's fields (backend, GPU) stay
//! with the [`Run`] and are joined in by that index. The small tables (jobs, variants, instances)
//! are collected into rows; the large one, samples, is only ever read through
//! [`Results::vram_traces`], which reduces it to a few hundred points per job before collecting.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::scenario::Scenario;

/// The manifest fields a report needs. Reading only these keeps run directories written by older
/// and newer versions of migbench readable.
#[derive(Debug, Clone, Deserialize)]
pub struct RunManifest {
    pub scenario: String,
    pub backend: String,
    /// True when the numbers come from the simulator.
    pub simulated: bool,
    pub gpu_model: String,
    pub gpu_name: String,
    pub started_at: String,
    #[serde(default)]
    pub status: String,
    /// The machine and the GPU on it (absent from manifests of old runs).
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub gpu_uuid: String,
    #[serde(default)]
    pub slurm: Option<crate::fleet::slurm::SlurmIds>,
}

/// Where results come from: which GPU, and whether a GPU measured them or the simulator made
/// them up. Results of different origins are never pooled.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Origin {
    /// Catalog key (`h100-80gb`).
    pub gpu_model: String,
    /// Device name (`H100 80GB HBM3`).
    pub gpu: String,
    /// `sim` or `nvml`.
    pub backend: String,
    /// True for simulator results: these are never presented as measured.
    pub simulated: bool,
}

impl Origin {
    /// `simulated (sim)` or `measured (nvml)`: how every table labels results.
    pub fn provenance(&self) -> String {
        let how = if self.simulated {
            "simulated"
        } else {
            "measured"
        };
        format!("{how} ({})", self.backend)
    }
}

impl RunManifest {
    pub fn origin(&self) -> Origin {
        Origin {
            gpu_model: self.gpu_model.clone(),
            gpu: self.gpu_name.clone(),
            backend: self.backend.clone(),
            simulated: self.simulated,
        }
    }
}

/// One run directory.
#[derive(Debug, Clone)]
pub struct Run {
    pub dir: PathBuf,
    pub manifest: RunManifest,
    /// The scenario as run (`scenario.toml`), when it can still be read: it gives the workloads
    /// for `plan` and the MIG layouts for the drawings.
    pub scenario: Option<Arc<Scenario>>,
}

/// One row of `jobs`.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub run: usize,
    pub variant: String,
    pub repetition: u32,
    pub job: u32,
    pub workload: String,
    pub unit: String,
    pub outcome: String,
    pub instance_uuid: Option<String>,
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub duration_s: Option<f64>,
    pub pid: Option<u32>,
    pub vram_peak_gib: Option<f64>,
    pub vram_constant_gib: Option<f64>,
}

/// One row of `variants`.
#[derive(Debug, Clone)]
pub struct VariantRow {
    pub run: usize,
    pub variant: String,
    pub repetition: u32,
    pub mode: String,
    pub layout: Option<String>,
    pub status: String,
    pub reason: Option<String>,
    pub jobs: u32,
    pub jobs_ok: u32,
    pub jobs_oom: u32,
    pub jobs_failed: u32,
    pub time_per_unit_s: Option<f64>,
    pub units_per_hour: Option<f64>,
    pub gpu_vram_peak_gib: Option<f64>,
}

/// One row of `instances`.
#[derive(Debug, Clone)]
pub struct InstanceRow {
    pub run: usize,
    pub variant: String,
    pub repetition: u32,
    pub instance: String,
    pub uuid: String,
    pub capacity_gib: Option<f64>,
    pub vram_peak_gib: f64,
}

/// One variant row (`scope = variant`) of `serving`: all of a variant repetition's servers.
#[derive(Debug, Clone)]
pub struct ServingRow {
    pub run: usize,
    pub variant: String,
    pub repetition: u32,
    /// Servers whose load is counted.
    pub servers: u32,
    pub completed: u64,
    pub failed: u64,
    /// The figures of [`SERVING_FIGURES`], in that order, under `vllm bench serve`'s keys.
    pub figures: Vec<Option<f64>>,
    /// Why the figures may be off (a simulated server that fell behind its clock).
    pub note: Option<String>,
}

/// The figures of `serving` a report reads, by `vllm bench serve`'s keys.
pub const SERVING_FIGURES: &[&str] = &[
    "request_throughput",
    "request_goodput",
    "output_throughput",
    "total_token_throughput",
    "median_ttft_ms",
    "p99_ttft_ms",
    "median_tpot_ms",
    "p99_tpot_ms",
    "median_itl_ms",
    "median_e2el_ms",
    "cost_per_million_output_tokens",
];

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

/// One variant repetition whose VRAM samples are wanted, over `[t0, t1]` (run seconds).
#[derive(Debug, Clone)]
pub struct TracePick {
    pub run: usize,
    pub variant: String,
    pub repetition: u32,
    pub t0: f64,
    pub t1: f64,
}

/// Memory over time of one process (a job) or of the whole GPU, reduced to the largest level in
/// each of a fixed number of time buckets, so that no peak is lost.
#[derive(Debug, Clone)]
pub struct Trace {
    /// Index into the picks passed to [`Results::vram_traces`].
    pub pick: usize,
    /// `process` or `gpu`.
    pub scope: String,
    /// The PID for a process, the UUID for the GPU.
    pub id: String,
    /// `(seconds since the pick's t0, GiB)`, in time order.
    pub points: Vec<(f64, f64)>,
}

impl Results {
    /// Reads every run below `paths`.
    pub fn load(paths: &[PathBuf]) -> Result<Results> {
        let mut results = Results::default();
        let mut scenarios: HashMap<String, Option<Arc<Scenario>>> = HashMap::new();
        for dir in find_run_dirs(paths)? {
            match read_manifest(&dir) {
                Ok(manifest) => {
                    if !dir.join("jobs.parquet").is_file()
                        && !super::recover::has_finished_jobs(&dir)
                    {
                        results.warnings.push(format!(
                            "{}: no jobs.parquet and no finished job in events.jsonl (the run stopped before its first job ended); left out",
                            dir.display()
                        ));
                        continue;
                    }
                    let scenario = read_scenario(&dir, &mut scenarios);
                    results.runs.push(Run {
                        dir,
                        manifest,
                        scenario,
                    });
                }
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
        results.jobs = job_rows(&collect(scan(&results.runs, "jobs", JOB_COLUMNS)?)?)?;
        results.variants =
            variant_rows(&collect(scan(&results.runs, "variants", VARIANT_COLUMNS)?)?)?;
        results.instances = instance_rows(&collect(scan(
            &results.runs,
            "instances",
            INSTANCE_COLUMNS,
        )?)?)?;
        let serving = scan(&results.runs, "serving", &serving_columns())?
            .filter(col("scope").eq(lit("variant")));
        results.serving = serving_rows(&collect(serving)?)?;
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

    /// Job and GPU memory over time for each pick, `buckets` points per line at most.
    pub fn vram_traces(&self, picks: &[TracePick], buckets: u32) -> Result<Vec<Trace>> {
        if picks.is_empty() {
            return Ok(Vec::new());
        }
        // One scan per run file (polars reads them in parallel), each row tagged with its pick
        // by a chain of conditions: far cheaper than joining ten million rows on strings.
        let mut runs: Vec<usize> = picks.iter().map(|p| p.run).collect();
        runs.sort_unstable();
        runs.dedup();
        let mut scans = Vec::new();
        for run in runs {
            let file = self.runs[run].dir.join("samples.parquet");
            if !file.is_file() {
                continue;
            }
            // The pick of each row by the variant's name (a string comparison per pick), then
            // its bucket by the pick (a number comparison per pick).
            let (mut pick, mut bucket) = (lit(NULL), lit(NULL));
            for (i, p) in picks.iter().enumerate().filter(|(_, p)| p.run == run) {
                let this = col("variant")
                    .eq(lit(p.variant.as_str()))
                    .and(col("repetition").eq(lit(p.repetition)));
                pick = when(this).then(lit(i as u32)).otherwise(pick);
                let width = ((p.t1 - p.t0) / f64::from(buckets)).max(1e-9);
                bucket = when(col("pick").eq(lit(i as u32)))
                    .then((col("t") - lit(p.t0)) / lit(width))
                    .otherwise(bucket);
            }
            let scan = LazyFrame::scan_parquet(&file, ScanArgsParquet::default())
                .map_err(polars_error)?
                .select([
                    col("variant"),
                    col("repetition"),
                    col("scope"),
                    col("id"),
                    col("t"),
                    col("used_gib"),
                ])
                .filter(col("scope").neq(lit("instance")))
                .with_column(pick.alias("pick"))
                .filter(col("pick").is_not_null())
                .with_column(bucket.alias("bucket"))
                .filter(
                    col("bucket")
                        .gt_eq(lit(0.0))
                        .and(col("bucket").lt_eq(lit(f64::from(buckets)))),
                )
                .select([
                    col("pick"),
                    col("scope"),
                    col("id"),
                    // Non-negative here, so truncating is flooring.
                    col("bucket").cast(DataType::Int64),
                    col("t"),
                    col("used_gib"),
                ]);
            scans.push(scan);
        }
        if scans.is_empty() {
            return Ok(Vec::new());
        }
        let union = UnionArgs {
            parallel: true,
            rechunk: false,
            ..Default::default()
        };
        let reduced = concat(scans, union)
            .map_err(polars_error)?
            .group_by([col("pick"), col("id"), col("bucket")])
            .agg([col("scope").first(), col("t").min(), col("used_gib").max()])
            .sort(["pick", "scope", "id", "t"], SortMultipleOptions::default())
            .select([
                col("pick").cast(DataType::UInt32),
                col("scope"),
                col("id"),
                col("t"),
                col("used_gib"),
            ]);
        let df = collect(reduced)?;
        let table = Columns::new(&df, "samples");
        let (pick, scope, id, t, used) = (
            table.u32("pick")?,
            table.str("scope")?,
            table.str("id")?,
            table.f64("t")?,
            table.f64("used_gib")?,
        );
        let mut traces: Vec<Trace> = Vec::new();
        for i in 0..df.height() {
            let key = (
                pick.get(i).unwrap_or_default() as usize,
                scope.get(i).unwrap_or_default(),
                id.get(i).unwrap_or_default(),
            );
            let point = (
                t.get(i).unwrap_or_default() - picks[key.0].t0,
                used.get(i).unwrap_or_default(),
            );
            match traces.last_mut() {
                Some(last) if (last.pick, last.scope.as_str(), last.id.as_str()) == key => {
                    last.points.push(point)
                }
                _ => traces.push(Trace {
                    pick: key.0,
                    scope: key.1.to_string(),
                    id: key.2.to_string(),
                    points: vec![point],
                }),
            }
        }
        Ok(traces)
    }
}

/// Directories with a `manifest.json` below `paths` (a path may be a run directory itself).
pub fn find_run_dirs(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for path in paths {
        if !path.is_dir() {
            return Err(Error::Input(format!(
                "{}: not a directory; expected a run directory or a directory of runs",
                path.display()
            )));
        }
        walk(path, &mut found).map_err(|e| {
            Error::Harness(format!(
                "cannot read the directories below {}: {e}",
                path.display()
            ))
        })?;
    }
    found.sort();
    found.dedup();
    Ok(found)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if dir.join("manifest.json").is_file() {
        found.push(dir.to_path_buf());
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), found)?;
        }
    }
    Ok(())
}

fn read_manifest(dir: &Path) -> Result<RunManifest> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Input(format!("{}: cannot read: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        Error::Input(format!(
            "{}: not a migbench manifest ({e}); expected scenario, backend, simulated, gpu_model, gpu_name and started_at",
            path.display()
        ))
    })
}

/// Parses a run's `scenario.toml`, once per distinct text.
fn read_scenario(
    dir: &Path,
    cache: &mut HashMap<String, Option<Arc<Scenario>>>,
) -> Option<Arc<Scenario>> {
    let path = dir.join("scenario.toml");
    let text = std::fs::read_to_string(&path).ok()?;
    cache
        .entry(text.clone())
        .or_insert_with(|| Scenario::parse(&path, text).ok().map(Arc::new))
        .clone()
}

/// The columns read from each table, with the types the rows below expect.
const JOB_COLUMNS: &[(&str, DataType)] = &[
    ("variant", DataType::String),
    ("repetition", DataType::UInt32),
    ("job", DataType::UInt32),
    ("workload", DataType::String),
    ("unit", DataType::String),
    ("outcome", DataType::String),
    ("instance_uuid", DataType::String),
    ("start", DataType::Float64),
    ("end", DataType::Float64),
    ("duration_s", DataType::Float64),
    ("pid", DataType::UInt32),
    ("vram_peak_gib", DataType::Float64),
    ("vram_constant_gib", DataType::Float64),
];

const VARIANT_COLUMNS: &[(&str, DataType)] = &[
    ("variant", DataType::String),
    ("repetition", DataType::UInt32),
    ("mode", DataType::String),
    ("layout", DataType::String),
    ("status", DataType::String),
    ("reason", DataType::String),
    ("jobs", DataType::UInt32),
    ("jobs_ok", DataType::UInt32),
    ("jobs_oom", DataType::UInt32),
    ("jobs_failed", DataType::UInt32),
    ("time_per_unit_s", DataType::Float64),
    ("units_per_hour", DataType::Float64),
    ("gpu_vram_peak_gib", DataType::Float64),
];

const INSTANCE_COLUMNS: &[(&str, DataType)] = &[
    ("variant", DataType::String),
    ("repetition", DataType::UInt32),
    ("instance", DataType::String),
    ("uuid", DataType::String),
    ("capacity_gib", DataType::Float64),
    ("vram_peak_gib", DataType::Float64),
];

/// The columns read from `serving`: who, then [`SERVING_FIGURES`].
fn serving_columns() -> Vec<(&'static str, DataType)> {
    let mut columns = vec![
        ("variant", DataType::String),
        ("repetition", DataType::UInt32),
        ("scope", DataType::String),
        ("servers", DataType::UInt32),
        ("completed", DataType::UInt64),
        ("failed", DataType::UInt64),
        ("note", DataType::String),
    ];
    columns.extend(SERVING_FIGURES.iter().map(|f| (*f, DataType::Float64)));
    columns
}

/// One lazy scan of `<table>.parquet` in every run that has it, with a `run` column (the index
/// into `runs`) and the given columns cast to the given types, rows in run order and, within a
/// run, in the order written.
fn scan(runs: &[Run], table: &str, columns: &[(&str, DataType)]) -> Result<LazyFrame> {
    let name = format!("{table}.parquet");
    let (files, index): (Vec<PathBuf>, Vec<u32>) = runs
        .iter()
        .enumerate()
        .map(|(i, r)| (r.dir.join(&name), i as u32))
        .filter(|(f, _)| f.is_file())
        .unzip();
    let mut select = vec![col("run")];
    select.extend(columns.iter().map(|(c, dtype)| col(*c).cast(dtype.clone())));
    if files.is_empty() {
        // No run has this table (older runs): an empty frame of the right shape.
        let empty: Vec<Column> = std::iter::once(("run", DataType::UInt32))
            .chain(columns.iter().map(|(c, d)| (*c, d.clone())))
            .map(|(c, d)| Column::new_empty(c.into(), &d))
            .collect();
        return Ok(DataFrame::new(empty).map_err(polars_error)?.lazy());
    }
    let runs_by_file = df!(
        "file" => files.iter().map(|f| f.to_string_lossy().into_owned()).collect::<Vec<_>>(),
        "run" => index,
    )
    .map_err(polars_error)?;
    let args = ScanArgsParquet {
        include_file_paths: Some("file".into()),
        row_index: Some(polars::io::RowIndex {
            name: "row".into(),
            offset: 0,
        }),
        allow_missing_columns: true,
        ..Default::default()
    };
    Ok(LazyFrame::scan_parquet_files(files.into(), args)
        .map_err(polars_error)?
        .join(
            runs_by_file.lazy(),
            [col("file")],
            [col("file")],
            JoinArgs::new(JoinType::Inner),
        )
        .sort(["row"], SortMultipleOptions::default())
        .select(select))
}

fn collect(frame: LazyFrame) -> Result<DataFrame> {
    frame.collect().map_err(polars_error)
}

fn polars_error(e: PolarsError) -> Error {
    Error::Harness(format!("cannot read the results tables: {e}"))
}

/// Typed access to a collected table's columns, with errors that name the table.
struct Columns<'a> {
    df: &'a DataFrame,
    table: &'static str,
}

impl<'a> Columns<'a> {
    fn new(df: &'a DataFrame, table: &'static str) -> Self {
        Columns { df, table }
    }

    fn column(&self, name: &str) -> Result<&'a Column> {
        self.df.column(name).map_err(|_| {
            Error::Input(format!(
                "{}.parquet has no column '{name}': not a migbench results table",
                self.table
            ))
        })
    }

    fn wrong_type(&self, name: &str, e: PolarsError) -> Error {
        Error::Input(format!(
            "{}.parquet: column '{name}' has an unexpected type: {e}",
            self.table
        ))
    }

    fn str(&self, name: &str) -> Result<&'a StringChunked> {
        self.column(name)?
            .str()
            .map_err(|e| self.wrong_type(name, e))
    }

    fn f64(&self, name: &str) -> Result<&'a Float64Chunked> {
        self.column(name)?
            .f64()
            .map_err(|e| self.wrong_type(name, e))
    }

    fn u32(&self, name: &str) -> Result<&'a UInt32Chunked> {
        self.column(name)?
            .u32()
            .map_err(|e| self.wrong_type(name, e))
    }

    fn u64(&self, name: &str) -> Result<&'a UInt64Chunked> {
        self.column(name)?
            .u64()
            .map_err(|e| self.wrong_type(name, e))
    }
}

fn job_rows(df: &DataFrame) -> Result<Vec<JobRow>> {
    let t = Columns::new(df, "jobs");
    let (run, variant, repetition, job) = (
        t.u32("run")?,
        t.str("variant")?,
        t.u32("repetition")?,
        t.u32("job")?,
    );
    let (workload, unit, outcome, uuid) = (
        t.str("workload")?,
        t.str("unit")?,
        t.str("outcome")?,
        t.str("instance_uuid")?,
    );
    let (start, end, duration, pid) = (
        t.f64("start")?,
        t.f64("end")?,
        t.f64("duration_s")?,
        t.u32("pid")?,
    );
    let (peak, constant) = (t.f64("vram_peak_gib")?, t.f64("vram_constant_gib")?);
    Ok((0..df.height())
        .map(|i| JobRow {
            run: run.get(i).unwrap_or_default() as usize,
            variant: variant.get(i).unwrap_or_default().to_string(),
            repetition: repetition.get(i).unwrap_or(1),
            job: job.get(i).unwrap_or_default(),
            workload: workload.get(i).unwrap_or_default().to_string(),
            unit: unit.get(i).unwrap_or_default().to_string(),
            outcome: outcome.get(i).unwrap_or_default().to_string(),
            instance_uuid: uuid.get(i).map(str::to_string),
            start: start.get(i),
            end: end.get(i),
            duration_s: duration.get(i),
            pid: pid.get(i),
            vram_peak_gib: peak.get(i),
            vram_constant_gib: constant.get(i),
        })
        .collect())
}

fn variant_rows(df: &DataFrame) -> Result<Vec<VariantRow>> {
    let t = Columns::new(df, "variants");
    let (run, variant, repetition, mode, layout) = (
        t.u32("run")?,
        t.str("variant")?,
        t.u32("repetition")?,
        t.str("mode")?,
        t.str("layout")?,
    );
    let (status, reason, jobs, ok, oom, failed) = (
        t.str("status")?,
        t.str("reason")?,
        t.u32("jobs")?,
        t.u32("jobs_ok")?,
        t.u32("jobs_oom")?,
        t.u32("jobs_failed")?,
    );
    let (per_unit, per_hour, peak) = (
        t.f64("time_per_unit_s")?,
        t.f64("units_per_hour")?,
        t.f64("gpu_vram_peak_gib")?,
    );
    Ok((0..df.height())
        .map(|i| VariantRow {
            run: run.get(i).unwrap_or_default() as usize,
            variant: variant.get(i).unwrap_or_default().to_string(),
            repetition: repetition.get(i).unwrap_or(1),
            mode: mode.get(i).unwrap_or_default().to_string(),
            layout: layout.get(i).map(str::to_string),
            status: status.get(i).unwrap_or_default().to_string(),
            reason: reason.get(i).map(str::to_string),
            jobs: jobs.get(i).unwrap_or_default(),
            jobs_ok: ok.get(i).unwrap_or_default(),
            jobs_oom: oom.get(i).unwrap_or_default(),
            jobs_failed: failed.get(i).unwrap_or_default(),
            time_per_unit_s: per_unit.get(i),
            units_per_hour: per_hour.get(i),
            gpu_vram_peak_gib: peak.get(i),
        })
        .collect())
}

fn instance_rows(df: &DataFrame) -> Result<Vec<InstanceRow>> {
    let t = Columns::new(df, "instances");
    let (run, variant, repetition, instance, uuid, capacity, peak) = (
        t.u32("run")?,
        t.str("variant")?,
        t.u32("repetition")?,
        t.str("instance")?,
        t.str("uuid")?,
        t.f64("capacity_gib")?,
        t.f64("vram_peak_gib")?,
    );
    Ok((0..df.height())
        .map(|i| InstanceRow {
            run: run.get(i).unwrap_or_default() as usize,
            variant: variant.get(i).unwrap_or_default().to_string(),
            repetition: repetition.get(i).unwrap_or(1),
            instance: instance.get(i).unwrap_or_default().to_string(),
            uuid: uuid.get(i).unwrap_or_default().to_string(),
            capacity_gib: capacity.get(i),
            vram_peak_gib: peak.get(i).unwrap_or_default(),
        })
        .collect())
}

fn serving_rows(df: &DataFrame) -> Result<Vec<ServingRow>> {
    let t = Columns::new(df, "serving");
    let (run, variant, repetition, servers) = (
        t.u32("run")?,
        t.str("variant")?,
        t.u32("repetition")?,
        t.u32("servers")?,
    );
    let (completed, failed, note) = (t.u64("completed")?, t.u64("failed")?, t.str("note")?);
    let figures = SERVING_FIGURES
        .iter()
        .map(|f| t.f64(f))
        .collect::<Result<Vec<_>>>()?;
    Ok((0..df.height())
        .map(|i| ServingRow {
            run: run.get(i).unwrap_or_default() as usize,
            variant: variant.get(i).unwrap_or_default().to_string(),
            repetition: repetition.get(i).unwrap_or(1),
            servers: servers.get(i).unwrap_or_default(),
            completed: completed.get(i).unwrap_or_default(),
            failed: failed.get(i).unwrap_or_default(),
            figures: figures.iter().map(|f| f.get(i)).collect(),
            note: note.get(i).map(str::to_string),
        })
        .collect())
}
