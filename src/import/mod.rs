//! `migbench import`: result files of `vllm bench serve --save-result` (or of vLLM's Rust
//! `vllm-bench`, which writes the same object) made into a run directory, written through the
//! same tables as a run's, so that `report` and `compare` show load measured with vLLM's tools
//! beside migbench's own runs.
//!
//! Each file is one load on one server (or, for the files migbench writes itself, on a variant's
//! `servers`). Files are grouped into variants (`--variant`, else each file's `label`, else its
//! name); within a variant, files at different loads (request rate, concurrency) are the points
//! of a sweep, in order of load, and files at the same load are repetitions. A detailed file
//! (`--save-detailed`) also gives each request, sent (`start_times`, on vLLM's monotonic clock)
//! counting from the file's first request.

pub mod vllm;

use std::path::{Path, PathBuf};

use crate::backend::BackendKind;
use crate::catalog::GpuModel;
use crate::error::{Error, Result};
use crate::loadgen::Endpoint;
use crate::mode::SharingMode;
use crate::results::{
    self, JobRecord, Manifest, Outcome, RequestPlace, RequestRow, RunDir, ServingRecord,
    ServingScope, Tables, VariantEnergy, VariantRecord, VariantStatus,
};
use vllm::ResultFile;

/// How the imported measurements were taken, as the command line gives it.
pub struct Options<'a> {
    pub gpu: &'a GpuModel,
    pub mode: SharingMode,
    /// Every file's variant; else each file's `label`, else its name.
    pub variant: Option<&'a str>,
    /// The scenario name the run is reported under.
    pub scenario: &'a str,
    /// `GPU` or the MIG profile the servers ran on.
    pub instance: &'a str,
    /// The command line, for the manifest.
    pub command: Vec<String>,
}

/// An import done: the run directory, and the tools whose files it holds (`vllm bench serve`,
/// `vllm-bench`, or both joined by a comma), as the manifest's `imported_from` names them.
pub struct Imported {
    pub dir: PathBuf,
    pub from: String,
}

/// Reads every file (any bad one stops the import before anything is written), then writes one
/// run directory below `out`.
pub fn import(files: &[PathBuf], out: &Path, options: &Options) -> Result<Imported> {
    crate::bounds::check_name("the scenario", options.scenario).map_err(Error::Input)?;
    let read: Vec<ResultFile> = files.iter().map(|f| vllm::read(f)).collect::<Result<_>>()?;
    let from = tools(&read);
    let mut variants: Vec<(String, Vec<ResultFile>)> = Vec::new();
    for file in read {
        let name = variant_name(&file, options.variant)?;
        match variants.iter_mut().find(|(n, _)| *n == name) {
            Some((_, files)) => files.push(file),
            None => variants.push((name, vec![file])),
        }
    }
    let mut tables = Tables::default();
    let mut requests: Vec<RequestRow> = Vec::new();
    for (name, files) in &mut variants {
        add_variant(&mut tables, &mut requests, name, files, options);
    }
    let dir = RunDir::create(out, options.scenario)?;
    let now = results::now_rfc3339();
    let manifest = Manifest {
        schema_version: results::SCHEMA_VERSION,
        scenario: options.scenario.to_string(),
        scenario_file: String::new(),
        scenario_sha256: String::new(),
        migbench_version: env!("CARGO_PKG_VERSION").to_string(),
        migbench_commit: crate::version::git_commit().to_string(),
        migbench_dirty: crate::version::git_dirty(),
        backend: BackendKind::Imported,
        simulated: false,
        clock: "monotonic".into(),
        pace: None,
        gpu_model: options.gpu.key.clone(),
        gpu_name: options.gpu.name.clone(),
        gpu_uuid: String::new(),
        driver: None,
        cuda: None,
        host: String::new(),
        slurm: None,
        command: options.command.clone(),
        started_at: now.clone(),
        ended_at: Some(now),
        status: "complete".into(),
        imported_from: Some(from.clone()),
    };
    dir.write_manifest(&manifest)?;
    tables.write(&dir.path)?;
    // Requests through the run's own requests table, as a run writes them.
    let table = dir.requests();
    for row in requests {
        crate::clock::lock(&table).push(row)?;
    }
    dir.finish_requests()?;
    Ok(Imported {
        dir: dir.path,
        from,
    })
}

/// The tools that wrote `files`, in name order, joined by a comma.
fn tools(files: &[ResultFile]) -> String {
    let mut tools: Vec<&str> = files.iter().map(|f| f.tool).collect();
    tools.sort_unstable();
    tools.dedup();
    tools.join(", ")
}

/// The variant `file` belongs to; a name that could not name a file is refused.
fn variant_name(file: &ResultFile, given: Option<&str>) -> Result<String> {
    let (name, from) = match (given, &file.label) {
        (Some(v), _) => (v.to_string(), "--variant"),
        (None, Some(label)) => (label.clone(), "its 'label'"),
        (None, None) => (
            file.path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            "its file name",
        ),
    };
    crate::bounds::check_name("the variant", &name).map_err(|e| {
        Error::Input(format!(
            "{}: {e}; named by {from} (give --variant NAME)",
            file.path.display()
        ))
    })?;
    Ok(name)
}

/// The load of a file, for ordering a variant's points: concurrency, then rate (`inf` last).
fn load_order(a: &ResultFile, b: &ResultFile) -> std::cmp::Ordering {
    let key = |f: &ResultFile| {
        (
            f.max_concurrency.unwrap_or(u32::MAX),
            f.request_rate.unwrap_or(f64::INFINITY),
        )
    };
    let (ka, kb) = (key(a), key(b));
    ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
}

/// One variant's rows: its points (one per distinct load, when there are several) and
/// repetitions (files at the same load).
fn add_variant(
    tables: &mut Tables,
    requests: &mut Vec<RequestRow>,
    name: &str,
    files: &mut [ResultFile],
    options: &Options,
) {
    files.sort_by(load_order);
    let mut loads: Vec<usize> = Vec::new(); // index of the first file of each distinct load
    for (i, f) in files.iter().enumerate() {
        if loads
            .last()
            .is_none_or(|&first| load_order(&files[first], f).is_ne())
        {
            loads.push(i);
        }
    }
    let sweep = loads.len() > 1;
    let from = tools(files);
    // Per repetition: servers and seconds of load, for the jobs and variants rows.
    let mut repetitions: Vec<(u32, f64, Option<String>)> = Vec::new();
    let mut point = 0;
    let mut repetition = 0;
    for (i, f) in files.iter().enumerate() {
        if i > 0 && load_order(&files[i - 1], f).is_ne() {
            point += 1;
            repetition = 0;
        }
        repetition += 1;
        let point = sweep.then_some(point);
        if repetitions.len() < repetition {
            repetitions.push((0, 0.0, None));
        }
        let r = &mut repetitions[repetition - 1];
        r.0 = r.0.max(f.servers);
        r.1 += f.metrics.duration;
        r.2 = r.2.take().or(f.model.clone());
        add_point(tables, requests, name, repetition as u32, point, f, options);
    }
    for (k, (servers, seconds, model)) in repetitions.into_iter().enumerate() {
        let repetition = k as u32 + 1;
        let workload = model.unwrap_or_else(|| "unknown-model".into());
        for job in 0..servers {
            tables.jobs.push(JobRecord {
                variant: name.to_string(),
                repetition,
                job,
                mode: options.mode,
                workload: workload.clone(),
                unit: "request".into(),
                instance_profile: Some(options.instance.to_string()),
                instance_uuid: None,
                start_s: None,
                end_s: None,
                duration_s: Some(seconds),
                exit_code: None,
                pid: None,
                outcome: Outcome::Ok,
                vram_peak_gib: None,
                vram_constant_gib: None,
                energy_j: None,
                reason: Some(format!("imported from {from}")),
                log: None,
            });
        }
        tables.variants.push(VariantRecord {
            variant: name.to_string(),
            repetition,
            mode: options.mode,
            layout: None,
            backend: BackendKind::Imported,
            status: VariantStatus::Ran,
            reason: None,
            jobs: servers,
            jobs_ok: servers,
            jobs_oom: 0,
            jobs_failed: 0,
            makespan_s: Some(seconds),
            units: 0,
            time_per_unit_s: None,
            units_per_hour: None,
            gpu_vram_peak_gib: None,
            energy: VariantEnergy::default(),
        });
    }
}

/// A file's serving rows (the variant's, and the server's when it covers one) and requests.
fn add_point(
    tables: &mut Tables,
    requests: &mut Vec<RequestRow>,
    name: &str,
    repetition: u32,
    point: Option<u32>,
    f: &ResultFile,
    options: &Options,
) {
    let endpoint = if f.chat {
        Endpoint::Chat
    } else {
        Endpoint::Completions
    };
    let variant_row = ServingRecord {
        variant: name.to_string(),
        repetition,
        mode: options.mode,
        backend: BackendKind::Imported,
        scope: ServingScope::Variant,
        point,
        job: None,
        workload: None,
        model: f.model.clone(),
        instance: None,
        server_outcome: None,
        servers: f.servers,
        rounds: 1,
        endpoint: endpoint.path().to_string(),
        request_rate: f.request_rate,
        max_concurrency: f.max_concurrency,
        metrics: f.metrics.clone(),
        slo_attainment: f.slo_attainment,
        price_per_hour: None,
        cost_per_million_output_tokens: None,
        note: None,
    };
    if f.servers == 1 {
        tables.serving.push(ServingRecord {
            scope: ServingScope::Server,
            job: Some(0),
            workload: f.model.clone(),
            instance: Some(options.instance.to_string()),
            server_outcome: Some(Outcome::Ok),
            ..variant_row.clone()
        });
    }
    tables.serving.push(variant_row);
    let place = RequestPlace {
        variant: name,
        repetition,
        job: 0,
        workload: f.model.as_deref().unwrap_or_default(),
        instance: options.instance,
        round: 1,
        point,
    };
    requests.extend(f.requests.iter().map(|r| RequestRow::of(&place, r)));
}
