//! The `jobs`, `samples`, `variants` and `instances` tables (samples streamed: [`super::stream`]) (and, for runs with servers, those of
//! [`super::serving`]): each defined once, written as CSV and Parquet with polars, read back by
//! `report` through the same definition.

use std::path::Path;

use polars::prelude::*;

#[cfg(test)]
use super::serving::RequestRow;
use super::serving::ServingRecord;
use super::{EnergySource, EnergySplit, Outcome, VariantStatus};
use crate::backend::{BackendKind, SampleRow, Scope};
use crate::error::{Error, Result};
use crate::mode::SharingMode;
use crate::{columns, table};

use super::schema::{csv_columns, Table};

table! {
    /// One row of `jobs`: one job of one variant repetition.
    pub struct JobRecord in "jobs" {
        pub variant: String,
        pub repetition: u32,
        /// The job's number within its variant, from 0.
        pub job: u32,
        pub mode: SharingMode,
        pub workload: String,
        pub unit: String,
        pub instance_profile: Option<String>,
        pub instance_uuid: Option<String>,
        /// Seconds since the run started, on the backend's clock.
        pub start_s: Option<f64>,
        pub end_s: Option<f64>,
        pub duration_s: Option<f64>,
        pub exit_code: Option<i32>,
        /// Process ID of the job (its process group leader).
        pub pid: Option<u32>,
        pub outcome: Outcome,
        pub vram_peak_gib: Option<f64>,
        /// The level the job held for most of its run (the word T uses: "constant").
        pub vram_constant_gib: Option<f64>,
        /// The job's share of the whole GPU's energy over the variant, in joules, idle power
        /// included, as `variants.energy_split` says: in proportion to SM-seconds (the SMs of
        /// the device each ran on, times its run time), or by the measured SM activity of each
        /// MIG instance. Under MIG and MPS the GPU has one counter, so this is an attribution,
        /// not a measurement of the job alone.
        pub energy_j: Option<f64>,
        pub reason: Option<String>,
        pub log: Option<String>,
    }
}

table! {
    /// One row of `samples`: memory in use at one moment, at one scope.
    pub struct SampleRecord in "samples" {
        /// Seconds since the run started, on the backend's clock.
        pub t_s: f64,
        pub variant: String,
        pub repetition: u32,
        pub scope: Scope,
        /// GPU or MIG UUID, or the PID for a process.
        pub id: String,
        pub label: String,
        pub used_gib: f64,
        pub capacity_gib: Option<f64>,
        /// GPU utilization in percent (a MIG instance's: its SMs busy, from GPM), where the
        /// backend reports it.
        pub utilization_pct: Option<f64>,
        /// The whole GPU's power in watts, on its `gpu` row, where the backend reports it.
        pub power_w: Option<f64>,
    }
}

table! {
    /// One row of `variants`: one repetition of one variant.
    pub struct VariantRecord in "variants" {
        pub variant: String,
        pub repetition: u32,
        pub mode: SharingMode,
        pub layout: Option<String>,
        pub backend: BackendKind,
        pub status: VariantStatus,
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
        /// The whole GPU's energy and what follows from it (its last columns).
        pub energy: VariantEnergy,
    }
}

columns! {
    /// A variant's energy figures, columns of `variants` (docs/energy.md); all absent where the
    /// GPU reports neither an energy counter nor its power, or nothing ran.
    pub struct VariantEnergy {
        /// The whole GPU's energy from the first job's start to the last job's end, in joules.
        pub energy_j: Option<f64>,
        pub energy_source: Option<EnergySource>,
        /// How `energy_j` is shared among the jobs (`jobs.energy_j`).
        pub energy_split: Option<EnergySplit>,
        /// `energy_j` over that window's length.
        pub mean_power_w: Option<f64>,
        /// `energy_j` divided by the units completed (batch jobs).
        pub energy_per_unit_j: Option<f64>,
        /// `energy_j` per 1,000 output tokens of the measured requests (servers).
        pub energy_per_kilotoken_j: Option<f64>,
    }
}

table! {
    /// One row of `instances`: the peak of one MIG instance (or the whole GPU) in one variant.
    pub struct InstanceRecord in "instances" {
        pub variant: String,
        pub repetition: u32,
        /// `GPU` or the instance, e.g. `3g.40gb@4`.
        pub instance: String,
        pub uuid: String,
        pub capacity_gib: Option<f64>,
        pub vram_peak_gib: f64,
    }
}

impl SampleRecord {
    /// The row of `sample`, taken at `t` (run seconds) in repetition `repetition` of `variant`.
    pub fn of(t: f64, variant: &str, repetition: u32, sample: &SampleRow) -> SampleRecord {
        SampleRecord {
            t_s: t,
            variant: variant.to_string(),
            repetition,
            scope: sample.scope,
            id: sample.id.clone(),
            label: sample.label.clone(),
            used_gib: sample.used_gib,
            capacity_gib: sample.capacity_gib,
            utilization_pct: sample.utilization_pct,
            power_w: sample.power_w,
        }
    }
}

/// Everything a run records, as rows, but its samples and requests (which go to disk as they
/// are taken: [`super::stream`]).
#[derive(Debug, Clone, Default)]
pub struct Tables {
    pub jobs: Vec<JobRecord>,
    pub variants: Vec<VariantRecord>,
    pub instances: Vec<InstanceRecord>,
    /// Runs with model servers only.
    pub serving: Vec<ServingRecord>,
}

impl Tables {
    /// Writes every table as `<name>.csv` and `<name>.parquet` in `dir` (and `serving.json`,
    /// from the requests already on disk).
    pub fn write(&self, dir: &Path) -> Result<()> {
        crate::fault::write("tables").map_err(|e| {
            Error::Harness(format!("cannot write the tables in {}: {e}", dir.display()))
        })?;
        write(dir, &self.jobs)?;
        write(dir, &self.variants)?;
        write(dir, &self.instances)?;
        super::serving::write_all(dir, &self.serving)
    }
}

/// Writes one table as `<NAME>.csv` and `<NAME>.parquet` in `dir`.
pub(super) fn write<T: Table>(dir: &Path, rows: &[T]) -> Result<()> {
    let name = T::NAME;
    let mut df = T::to_frame(rows)?;
    let fail = |e: &dyn std::fmt::Display| {
        Error::Harness(format!("cannot write {name} in {}: {e}", dir.display()))
    };
    let csv = std::fs::File::create(dir.join(format!("{name}.csv"))).map_err(|e| fail(&e))?;
    CsvWriter::new(csv)
        .finish(&mut csv_columns(&df))
        .map_err(|e| fail(&e))?;
    let parquet =
        std::fs::File::create(dir.join(format!("{name}.parquet"))).map_err(|e| fail(&e))?;
    ParquetWriter::new(parquet)
        .finish(&mut df)
        .map_err(|e| fail(&e))?;
    Ok(())
}

/// [`write`], for tests elsewhere in the crate.
#[cfg(test)]
pub(crate) fn write_for_tests<T: Table>(dir: &Path, rows: &[T]) {
    write(dir, rows).unwrap()
}

#[cfg(test)]
mod tests {
    use std::fmt::Debug;

    use super::*;
    use crate::loadgen::metrics::ServingMetrics;
    use crate::loadgen::stats::Summary;
    use crate::loadgen::TokenCount;
    use crate::results::ServingScope;

    /// Writes `rows` as the run does and reads them back as `report` does (from Parquet), and
    /// checks that the file's columns are the schema's, type for type.
    fn round_trip<T: Table + PartialEq + Debug>(rows: &[T]) -> Vec<T> {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), rows).unwrap();
        let file = std::fs::File::open(dir.path().join(format!("{}.parquet", T::NAME))).unwrap();
        let df = ParquetReader::new(file).finish().unwrap();
        let written: Vec<(String, DataType)> = df
            .get_columns()
            .iter()
            .map(|c| (c.name().to_string(), c.dtype().clone()))
            .collect();
        assert_eq!(written, T::schema(), "{}", T::NAME);
        assert!(dir.path().join(format!("{}.csv", T::NAME)).is_file());
        T::from_frame(&df).unwrap()
    }

    fn job(outcome: Outcome, start: Option<f64>) -> JobRecord {
        JobRecord {
            variant: "mig-2x3g".into(),
            repetition: 2,
            job: 1,
            mode: SharingMode::MigMps,
            workload: "ti2v-5b".into(),
            unit: "video".into(),
            instance_profile: Some("3g.40gb".into()),
            instance_uuid: None,
            start_s: start,
            end_s: start.map(|s| s + 410.25),
            duration_s: Some(410.25),
            exit_code: Some(-9),
            pid: Some(4242),
            outcome,
            vram_peak_gib: Some(33.0),
            vram_constant_gib: None,
            energy_j: None,
            reason: Some("killed".into()),
            log: None,
        }
    }

    #[test]
    fn every_table_reads_back_what_was_written_with_the_schemas_columns() {
        let jobs = vec![job(Outcome::Oom, Some(12.5)), job(Outcome::NotReady, None)];
        assert_eq!(round_trip(&jobs), jobs);
        let samples = vec![SampleRecord {
            t_s: 0.125,
            variant: "v".into(),
            repetition: 1,
            scope: Scope::Instance,
            id: "MIG-1".into(),
            label: "3g.40gb@4".into(),
            used_gib: 20.5,
            capacity_gib: Some(39.5),
            utilization_pct: None,
            power_w: Some(412.5),
        }];
        assert_eq!(round_trip(&samples), samples);
        let variants = vec![VariantRecord {
            variant: "v".into(),
            repetition: 3,
            mode: SharingMode::Timeslice,
            layout: None,
            backend: BackendKind::Nvml,
            status: VariantStatus::SetupFailed,
            reason: Some("nvidia-smi said no".into()),
            jobs: 3,
            jobs_ok: 1,
            jobs_oom: 1,
            jobs_failed: 1,
            makespan_s: Some(99.5),
            units: 1,
            time_per_unit_s: Some(99.5),
            units_per_hour: None,
            gpu_vram_peak_gib: Some(70.0),
            energy: VariantEnergy::default(),
        }];
        assert_eq!(round_trip(&variants), variants);
        let instances = vec![InstanceRecord {
            variant: "v".into(),
            repetition: 1,
            instance: "GPU".into(),
            uuid: "GPU-1".into(),
            capacity_gib: None,
            vram_peak_gib: 79.25,
        }];
        assert_eq!(round_trip(&instances), instances);
    }

    #[test]
    fn the_serving_tables_read_back_their_metrics_and_each_request_s_gaps() {
        let request = RequestRow {
            variant: "v".into(),
            repetition: 1,
            job: 0,
            workload: "qwen3-4b".into(),
            instance: "GPU".into(),
            round: 1,
            point: Some(3),
            request: 7,
            warmup: true,
            sent_s: 30.5,
            due_s: 30.25,
            ttft_ms: Some(21.5),
            tpot_ms: None,
            e2el_ms: Some(800.0),
            chunks: 3,
            itls_ms: vec![7.0, 8.0],
            input_tokens: 286,
            output_tokens: 148,
            tokens_from: TokenCount::Chunks,
            error: None,
        };
        // A request with no gaps (one chunk, or failed) reads back an empty list.
        let mut single = request.clone();
        (single.request, single.itls_ms) = (8, Vec::new());
        let rows = vec![request, single];
        assert_eq!(round_trip(&rows), rows);
        // The CSV copy leaves the list column out (a list does not fit a cell).
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &rows).unwrap();
        let csv = std::fs::read_to_string(dir.path().join("requests.csv")).unwrap();
        assert!(
            csv.starts_with("variant,") && !csv.contains("itls_ms"),
            "{csv}"
        );
        assert_eq!(csv.lines().count(), 3);

        let summary = |x: f64| Some(Summary::from_values([x, x + 1.0, 0.5, x + 2.0, x + 3.0]));
        let metrics = ServingMetrics {
            duration: 5.25,
            completed: 32,
            failed: 1,
            total_input_tokens: 8417,
            total_output_tokens: 4082,
            request_throughput: 6.0,
            request_goodput: None,
            output_throughput: 774.0,
            total_token_throughput: 2370.0,
            max_concurrent_requests: 8,
            ttft_ms: summary(55.0),
            tpot_ms: None,
            itl_ms: summary(9.0),
            e2el_ms: summary(1100.0),
        };
        let serving = vec![ServingRecord {
            variant: "v".into(),
            repetition: 1,
            mode: SharingMode::Mig,
            backend: BackendKind::Sim,
            scope: ServingScope::Variant,
            point: Some(2),
            job: None,
            workload: None,
            model: Some("Qwen/Qwen3-4B".into()),
            instance: None,
            server_outcome: Some(Outcome::Oom),
            servers: 2,
            rounds: 1,
            endpoint: "/v1/chat/completions".into(),
            request_rate: None,
            max_concurrency: Some(8),
            metrics,
            slo_attainment: Some(0.875),
            price_per_hour: Some(1.89),
            cost_per_million_output_tokens: Some(0.5),
            note: None,
        }];
        let back = round_trip(&serving);
        assert_eq!(back, serving);
        assert_eq!(back[0].figure("p99_ttft_ms"), Some(58.0));
        assert_eq!(back[0].figure("completed"), Some(32.0));
        assert_eq!(back[0].figure("cost_per_million_output_tokens"), Some(0.5));
        assert_eq!(back[0].figure("median_tpot_ms"), None);
    }

    #[test]
    fn a_name_outside_its_set_is_refused_with_what_is_allowed() {
        let mut df = JobRecord::to_frame(&[job(Outcome::Ok, None)]).unwrap();
        df.with_column(Series::new("outcome".into(), ["exploded"]))
            .unwrap();
        let e = JobRecord::from_frame(&df).unwrap_err().to_string();
        assert!(
            e.contains("jobs.parquet: column 'outcome' holds 'exploded'"),
            "{e}"
        );
        assert!(e.contains("allowed: ok, oom, failed"), "{e}");
    }
}
