//! Results on disk: one directory per run.
//!
//! ```text
//! results/<scenario>-<UTC timestamp>/
//!   manifest.json     scenario hash, migbench version, backend, GPU, host, start and end
//!   scenario.toml     the scenario as run
//!   events.jsonl      append-only log written as the run goes (changes, job starts and ends)
//!   logs/<variant>/r<rep>-j<job>.log   each job's stdout and stderr
//!   mps/<variant>/...                   MPS pipe and log directories
//!   jobs.{csv,parquet} variants.{csv,parquet} instances.{csv,parquet}
//!   samples/part-NNNNN.parquet        VRAM samples, written as they are taken (stream.rs)
//!   samples.csv                       with `run --samples-csv` only
//!   requests/part-NNNNN.parquet requests.csv   one row per request, as done (runs with servers)
//!   serving.{csv,parquet} serving.json             (runs with model servers)
//! ```
//! The samples and the requests stream to disk as they are taken (at most
//! [`stream::FLUSH_EVERY`] behind; the requests' CSV copy gets each full part, and the last at
//! the run's end); the other tables are rewritten after every variant, so a run that dies keeps every finished
//! variant's tables, and the event log keeps every finished job.

pub mod schema;
mod serving;
pub mod stream;
mod tables;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
use sha2::{Digest, Sha256};

pub use serving::{RequestPlace, RequestRow, RequestTable, ServingRecord, ServingScope};
#[cfg(test)]
pub(crate) use tables::write_for_tests;
pub use tables::{InstanceRecord, JobRecord, SampleRecord, Tables, VariantEnergy, VariantRecord};

use crate::error::{Error, Result};

/// What a job's run came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    /// Ran out of GPU memory: exited non-zero with an OOM message in its log.
    Oom,
    /// Exited non-zero for another reason.
    Failed,
    /// Killed after its timeout.
    Timeout,
    /// Not run: it cannot fit anywhere the variant could place it.
    Infeasible,
    /// Stopped by Ctrl-C or SIGTERM.
    Interrupted,
    /// A server that did not answer its readiness checks in time; migbench stopped it.
    NotReady,
    /// Not run: setting the GPU up for its variant failed (the variant's reason says why).
    NotRun,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Oom => "oom",
            Outcome::Failed => "failed",
            Outcome::Timeout => "timeout",
            Outcome::Infeasible => "infeasible",
            Outcome::Interrupted => "interrupted",
            Outcome::NotReady => "not_ready",
            Outcome::NotRun => "not_run",
        }
    }
}

crate::named!(Outcome: Ok, Oom, Failed, Timeout, Infeasible, Interrupted, NotReady, NotRun);

/// What came of a variant repetition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VariantStatus {
    /// Its jobs ran (each job's outcome says how that went).
    Ran,
    /// Not run: its jobs cannot fit where the variant would place them.
    Infeasible,
    /// Not run: setting the GPU up for it failed.
    SetupFailed,
    /// Stopped by Ctrl-C or SIGTERM.
    Interrupted,
    /// The harness failed while it ran (a table or the journal could not be written).
    Failed,
}

impl VariantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VariantStatus::Ran => "ran",
            VariantStatus::Infeasible => "infeasible",
            VariantStatus::SetupFailed => "setup_failed",
            VariantStatus::Interrupted => "interrupted",
            VariantStatus::Failed => "failed",
        }
    }
}

crate::named!(VariantStatus: Ran, Infeasible, SetupFailed, Interrupted, Failed);

/// Where a variant's energy figure comes from (docs/energy.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnergySource {
    /// The GPU's total-energy counter, read at the first job's start and after the last job's
    /// end (NVML's `nvmlDeviceGetTotalEnergyConsumption`).
    Counter,
    /// The power samples integrated over the same window, where the GPU has no counter.
    PowerSamples,
    /// The simulator's power model (the catalog's board and idle power): simulated, not measured.
    Model,
}

impl EnergySource {
    pub fn as_str(self) -> &'static str {
        match self {
            EnergySource::Counter => "counter",
            EnergySource::PowerSamples => "power_samples",
            EnergySource::Model => "model",
        }
    }
}

crate::named!(EnergySource: Counter, PowerSamples, Model);

/// How a variant's energy is shared among its jobs (`jobs.energy_j`; docs/energy.md): the GPU
/// has one energy counter, under MIG and MPS too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnergySplit {
    /// In proportion to SM-seconds: the SMs of each job's device times its run time.
    SmSeconds,
    /// Among MIG instances by their measured SM activity (NVML's GPM, Hopper and later), then
    /// among the jobs of an instance by SM-seconds.
    SmActivity,
}

impl EnergySplit {
    pub fn as_str(self) -> &'static str {
        match self {
            EnergySplit::SmSeconds => "sm_seconds",
            EnergySplit::SmActivity => "sm_activity",
        }
    }
}

crate::named!(EnergySplit: SmSeconds, SmActivity);

/// The version of the tables' columns this migbench writes (`manifest.json`'s
/// `schema_version`). 1, implied when the key is missing: `start`, `end` and `t` before they
/// carried their unit. `report` reads both (see [`schema::renamed_since`]).
pub const SCHEMA_VERSION: u32 = 2;

/// The manifest: what ran, where, and with what. Written by `run`, read by `report`; keys that
/// older versions did not write read as their defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// The version of the tables' columns ([`SCHEMA_VERSION`]).
    #[serde(default = "first_schema")]
    pub schema_version: u32,
    pub scenario: String,
    #[serde(default)]
    pub scenario_file: String,
    #[serde(default)]
    pub scenario_sha256: String,
    #[serde(default)]
    pub migbench_version: String,
    /// The git commit migbench was built from, or "unknown".
    #[serde(default)]
    pub migbench_commit: String,
    /// Whether the tree it was built from had uncommitted changes; `None` when unknown.
    #[serde(default)]
    pub migbench_dirty: Option<bool>,
    pub backend: BackendKind,
    /// True when the numbers come from the simulator, not from a GPU.
    pub simulated: bool,
    /// `simulated` (time that advances by events) or `monotonic` (the wall clock).
    #[serde(default)]
    pub clock: String,
    /// With `--pace`: at most this many simulated seconds passed per real second.
    #[serde(default)]
    pub pace: Option<f64>,
    pub gpu_model: String,
    pub gpu_name: String,
    #[serde(default)]
    pub gpu_uuid: String,
    #[serde(default)]
    pub driver: Option<String>,
    #[serde(default)]
    pub cuda: Option<String>,
    #[serde(default)]
    pub host: String,
    /// The Slurm job the run ran in (job and array IDs), when it ran under Slurm.
    #[serde(default)]
    pub slurm: Option<crate::fleet::slurm::SlurmIds>,
    #[serde(default)]
    pub command: Vec<String>,
    pub started_at: String,
    #[serde(default)]
    pub ended_at: Option<String>,
    /// `running`, `complete`, `interrupted` or `failed`.
    #[serde(default)]
    pub status: String,
    /// The tool whose result files `migbench import` made this run of (`vllm bench serve`);
    /// absent for runs migbench made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_from: Option<String>,
}

fn first_schema() -> u32 {
    1
}

/// A run directory being written.
pub struct RunDir {
    pub path: PathBuf,
    events: File,
    /// Also told every event: the `/metrics` endpoint of `run --metrics-listen`.
    observer: Option<std::sync::Arc<crate::fleet::live::Live>>,
    /// The `requests` table (its first part is made with the first request).
    requests: RequestTable,
}

impl RunDir {
    /// Creates `<out>/<scenario>-<UTC timestamp>` (with a suffix if that exists already); its
    /// path is absolute.
    pub fn create(out: &Path, scenario: &str) -> Result<RunDir> {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let mut path = out.join(format!("{scenario}-{stamp}"));
        let mut n = 1;
        while path.exists() {
            n += 1;
            path = out.join(format!("{scenario}-{stamp}-{n}"));
        }
        std::fs::create_dir_all(path.join("logs")).map_err(|e| io_error(&path, e))?;
        // Absolute, so that what the journal records (MPS directories, the journal's own path
        // in the GPU lock) names the same place for a restore run from another directory.
        let path = path.canonicalize().map_err(|e| io_error(&path, e))?;
        let events = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path.join("events.jsonl"))
            .map_err(|e| io_error(&path, e))?;
        Ok(RunDir {
            requests: std::sync::Arc::new(std::sync::Mutex::new(
                stream::PartWriter::create(&path, true).part_rows(stream::REQUEST_PART_ROWS),
            )),
            path,
            events,
            observer: None,
        })
    }

    /// The `requests` table, for the load generator's sinks.
    pub fn requests(&self) -> RequestTable {
        std::sync::Arc::clone(&self.requests)
    }

    /// Ends the `requests` table's CSV copy with its last part: the end of the run.
    pub fn finish_requests(&self) -> Result<()> {
        crate::clock::lock(&self.requests).finish()
    }

    /// Tells `live` every event from now on.
    pub fn observe(&mut self, live: std::sync::Arc<crate::fleet::live::Live>) {
        self.observer = Some(live);
    }

    pub fn write_file(&self, name: &str, contents: &[u8]) -> Result<()> {
        let p = self.path.join(name);
        std::fs::write(&p, contents).map_err(|e| io_error(&p, e))
    }

    /// Writes a file that must not exist yet: a copy of an input never replaces anything the
    /// run wrote.
    pub fn write_new_file(&self, name: &Path, contents: &[u8]) -> Result<()> {
        let p = self.path.join(name);
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
            .and_then(|mut f| f.write_all(contents))
            .map_err(|e| io_error(&p, e))
    }

    pub fn write_manifest(&self, manifest: &Manifest) -> Result<()> {
        let text =
            serde_json::to_vec_pretty(manifest).map_err(|e| Error::Harness(e.to_string()))?;
        let p = self.path.join("manifest.json");
        crate::fault::write("manifest").map_err(|e| io_error(&p, e))?;
        self.write_file("manifest.json", &text)
    }

    /// Appends one event, flushed to disk before returning.
    pub fn event(&mut self, t: f64, kind: &str, fields: serde_json::Value) -> Result<()> {
        let mut obj = serde_json::json!({
            "t": (t * 1000.0).round() / 1000.0,
            "wall": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "event": kind,
        });
        if let Some(live) = &self.observer {
            live.event(t, kind, &fields);
        }
        if let (Some(o), serde_json::Value::Object(f)) = (obj.as_object_mut(), fields) {
            o.extend(f);
        }
        let p = self.path.join("events.jsonl");
        // One write per line: a crash leaves at most one torn last line.
        crate::fault::write("events")
            .and_then(|()| self.events.write_all(format!("{obj}\n").as_bytes()))
            .and_then(|()| self.events.sync_data())
            .map_err(|e| io_error(&p, e))
    }

    /// Path of a job's log, its directory created.
    pub fn job_log(&self, variant: &str, repetition: u32, job: usize) -> Result<PathBuf> {
        let dir = self.path.join("logs").join(variant);
        std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
        Ok(dir.join(format!("r{repetition}-j{job}.log")))
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::Harness(format!("cannot write {}: {e}", path.display()))
}
