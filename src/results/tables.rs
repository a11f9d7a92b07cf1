//! The `jobs`, `samples`, `variants` and `instances` tables (and, for runs with servers, those of
//! [`super::serving`]), written as CSV and Parquet with polars.

use std::path::Path;

use polars::prelude::*;

use super::serving::{RequestRow, ServingRecord};
use crate::error::{Error, Result};

/// One row of `jobs`.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub variant: String,
    pub repetition: u32,
    pub job: usize,
    pub mode: String,
    pub workload: String,
    pub unit: String,
    pub instance_profile: Option<String>,
    pub instance_uuid: Option<String>,
    /// Seconds since the run started, on the backend's clock.
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub duration_s: Option<f64>,
    pub exit_code: Option<i32>,
    /// Process ID of the job (its process group leader).
    pub pid: Option<u32>,
    pub outcome: String,
    pub vram_peak_gib: Option<f64>,
    pub vram_constant_gib: Option<f64>,
    pub reason: Option<String>,
    pub log: Option<String>,
}

/// One row of `samples`.
#[derive(Debug, Clone)]
pub struct SampleRecord {
    pub t: f64,
    pub variant: String,
    pub repetition: u32,
    pub scope: String,
    pub id: String,
    pub label: String,
    pub used_gib: f64,
    pub capacity_gib: Option<f64>,
    /// GPU utilization in percent, where the backend reports it.
    pub utilization_pct: Option<f64>,
}

/// One row of `variants`.
#[derive(Debug, Clone)]
pub struct VariantRecord {
    pub variant: String,
    pub repetition: u32,
    pub mode: String,
    pub layout: Option<String>,
    pub backend: String,
    /// `ran`, `infeasible` or `interrupted`.
    pub status: String,
    pub reason: Option<String>,
    pub jobs: u32,
    pub jobs_ok: u32,
    pub jobs_oom: u32,
    pub jobs_failed: u32,
    pub makespan_s: Option<f64>,
    pub units: u32,
    /// Makespan divided by the units completed.
    pub time_per_unit_s: Option<f64>,
    pub units_per_hour: Option<f64>,
    pub gpu_vram_peak_gib: Option<f64>,
}

/// One row of `instances`: the peak of one MIG instance (or the whole GPU) in one variant.
#[derive(Debug, Clone)]
pub struct InstanceRecord {
    pub variant: String,
    pub repetition: u32,
    /// `GPU` or the instance, e.g. `3g.40gb@4`.
    pub instance: String,
    pub uuid: String,
    pub capacity_gib: Option<f64>,
    pub vram_peak_gib: f64,
}

/// Everything a run records, as rows.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    pub jobs: Vec<JobRecord>,
    pub samples: Vec<SampleRecord>,
    pub variants: Vec<VariantRecord>,
    pub instances: Vec<InstanceRecord>,
    /// Runs with model servers only.
    pub requests: Vec<RequestRow>,
    pub serving: Vec<ServingRecord>,
}

impl Tables {
    /// Writes every table as `<name>.csv` and `<name>.parquet` in `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        crate::fault::write("tables").map_err(|e| {
            Error::Harness(format!("cannot write the tables in {}: {e}", dir.display()))
        })?;
        write(dir, "jobs", &mut jobs_frame(&self.jobs)?)?;
        write(dir, "samples", &mut samples_frame(&self.samples)?)?;
        write(dir, "variants", &mut variants_frame(&self.variants)?)?;
        write(dir, "instances", &mut instances_frame(&self.instances)?)?;
        super::serving::write_all(dir, &self.requests, &self.serving)
    }
}

fn instances_frame(rows: &[InstanceRecord]) -> Result<DataFrame> {
    frame(vec![
        strs("variant", rows, |r| Some(&r.variant)),
        u32s("repetition", rows, |r| r.repetition),
        strs("instance", rows, |r| Some(&r.instance)),
        strs("uuid", rows, |r| Some(&r.uuid)),
        floats("capacity_gib", rows, |r| r.capacity_gib),
        floats("vram_peak_gib", rows, |r| Some(r.vram_peak_gib)),
    ])
}

pub(super) fn strs<T>(name: &str, rows: &[T], f: impl Fn(&T) -> Option<&str>) -> Column {
    Series::new(
        name.into(),
        rows.iter().map(f).collect::<Vec<Option<&str>>>(),
    )
    .into()
}

pub(super) fn floats<T>(name: &str, rows: &[T], f: impl Fn(&T) -> Option<f64>) -> Column {
    Series::new(
        name.into(),
        rows.iter().map(f).collect::<Vec<Option<f64>>>(),
    )
    .into()
}

pub(super) fn u32s<T>(name: &str, rows: &[T], f: impl Fn(&T) -> u32) -> Column {
    Series::new(name.into(), rows.iter().map(f).collect::<Vec<u32>>()).into()
}

fn jobs_frame(rows: &[JobRecord]) -> Result<DataFrame> {
    frame(vec![
        strs("variant", rows, |r| Some(&r.variant)),
        u32s("repetition", rows, |r| r.repetition),
        u32s("job", rows, |r| r.job as u32),
        strs("mode", rows, |r| Some(&r.mode)),
        strs("workload", rows, |r| Some(&r.workload)),
        strs("unit", rows, |r| Some(&r.unit)),
        strs("instance_profile", rows, |r| r.instance_profile.as_deref()),
        strs("instance_uuid", rows, |r| r.instance_uuid.as_deref()),
        floats("start", rows, |r| r.start),
        floats("end", rows, |r| r.end),
        floats("duration_s", rows, |r| r.duration_s),
        Series::new(
            "exit_code".into(),
            rows.iter()
                .map(|r| r.exit_code)
                .collect::<Vec<Option<i32>>>(),
        )
        .into(),
        Series::new(
            "pid".into(),
            rows.iter().map(|r| r.pid).collect::<Vec<Option<u32>>>(),
        )
        .into(),
        strs("outcome", rows, |r| Some(&r.outcome)),
        floats("vram_peak_gib", rows, |r| r.vram_peak_gib),
        floats("vram_constant_gib", rows, |r| r.vram_constant_gib),
        strs("reason", rows, |r| r.reason.as_deref()),
        strs("log", rows, |r| r.log.as_deref()),
    ])
}

fn samples_frame(rows: &[SampleRecord]) -> Result<DataFrame> {
    frame(vec![
        floats("t", rows, |r| Some(r.t)),
        strs("variant", rows, |r| Some(&r.variant)),
        u32s("repetition", rows, |r| r.repetition),
        strs("scope", rows, |r| Some(&r.scope)),
        strs("id", rows, |r| Some(&r.id)),
        strs("label", rows, |r| Some(&r.label)),
        floats("used_gib", rows, |r| Some(r.used_gib)),
        floats("capacity_gib", rows, |r| r.capacity_gib),
        floats("utilization_pct", rows, |r| r.utilization_pct),
    ])
}

fn variants_frame(rows: &[VariantRecord]) -> Result<DataFrame> {
    frame(vec![
        strs("variant", rows, |r| Some(&r.variant)),
        u32s("repetition", rows, |r| r.repetition),
        strs("mode", rows, |r| Some(&r.mode)),
        strs("layout", rows, |r| r.layout.as_deref()),
        strs("backend", rows, |r| Some(&r.backend)),
        strs("status", rows, |r| Some(&r.status)),
        strs("reason", rows, |r| r.reason.as_deref()),
        u32s("jobs", rows, |r| r.jobs),
        u32s("jobs_ok", rows, |r| r.jobs_ok),
        u32s("jobs_oom", rows, |r| r.jobs_oom),
        u32s("jobs_failed", rows, |r| r.jobs_failed),
        floats("makespan_s", rows, |r| r.makespan_s),
        u32s("units", rows, |r| r.units),
        floats("time_per_unit_s", rows, |r| r.time_per_unit_s),
        floats("units_per_hour", rows, |r| r.units_per_hour),
        floats("gpu_vram_peak_gib", rows, |r| r.gpu_vram_peak_gib),
    ])
}

pub(super) fn frame(columns: Vec<Column>) -> Result<DataFrame> {
    DataFrame::new(columns)
        .map_err(|e| Error::Harness(format!("cannot build a results table: {e}")))
}

pub(super) fn write(dir: &Path, name: &str, df: &mut DataFrame) -> Result<()> {
    let fail = |e: &dyn std::fmt::Display| {
        Error::Harness(format!("cannot write {name} in {}: {e}", dir.display()))
    };
    let csv = std::fs::File::create(dir.join(format!("{name}.csv"))).map_err(|e| fail(&e))?;
    CsvWriter::new(csv).finish(df).map_err(|e| fail(&e))?;
    let parquet =
        std::fs::File::create(dir.join(format!("{name}.parquet"))).map_err(|e| fail(&e))?;
    ParquetWriter::new(parquet)
        .finish(df)
        .map_err(|e| fail(&e))?;
    Ok(())
}
