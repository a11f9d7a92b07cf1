//! `advise` for model servers: every candidate is a variant of one generated scenario, run by
//! the orchestrator on the simulated GPU in-process — the simulated servers
//! ([`crate::backend::sim::server`]), their engine, and the load generator with the `[load]` the
//! user gives — so the figures ranked are exactly what `migbench run --sim` of the written
//! scenario measures, not a second model of a server. It costs what the run costs: about a
//! second of real time per candidate in a debug build.
//!
//! The candidates, `n` servers in all: one server on the whole GPU (only when `n` is 1, since
//! servers run until their load is done and one at a time would not serve them at once);
//! time-slicing, MPS and MPS with `100/n` of the threads, each server's memory fraction cut to
//! `1/n` of the workloads' default (vLLM preallocates its fraction of the device, so `n` at the
//! default would not fit); and every distinct set of MIG instances, one server per instance at
//! the default fraction, where each server's instance holds its weights and the KV cache of one
//! request of the load's longest.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::{Candidate, Request};
use crate::backend::{self, Target};
use crate::error::{Error, Result};
use crate::layout::{enumerate, EnumerateOptions, PlacedInstance};
use crate::loadgen::LoadSpec;
use crate::mode::SharingMode;
use crate::orchestrator::{self, RunOptions};
use crate::report::load::{Damaged, Results};
use crate::results::{ServingScope, VariantStatus};
use crate::scenario::Scenario;
use crate::workload::{SimServer, Workload};

/// The sampling interval of `migbench run`'s default, so that peaks are read as it reads them.
const SAMPLE_MS: u64 = 100;

/// What the load generator measured on a candidate's servers, all of them together.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Serving {
    pub servers: u32,
    pub completed: u64,
    pub failed_requests: u64,
    pub p99_ttft_ms: f64,
    pub median_ttft_ms: f64,
    pub p99_tpot_ms: f64,
    pub output_tokens_per_s: f64,
    pub request_throughput: f64,
}

/// The simulated-server profile of a server workload, or why it has none.
pub fn profile(w: &Workload) -> Result<&SimServer> {
    w.sim.server.as_ref().ok_or_else(|| {
        Error::Input(format!(
            "--workload {}: a server workload without [sim.server] cannot be simulated",
            w.name
        ))
    })
}

/// The `[load]` table of a TOML file (a scenario's), its prompts file made absolute.
pub fn read_load(path: &Path) -> Result<LoadSpec> {
    let text = crate::input::read_to_string(path, crate::input::SCENARIO)
        .map_err(|e| Error::Input(format!("--load {}: cannot read it: {e}", path.display())))?;
    let bad = |why: String| Error::Input(format!("--load {}: {why}", path.display()));
    let value: toml::Table = toml::from_str(&text).map_err(|e| {
        let e = crate::location::toml_error(path, &text, &e);
        Error::Input(format!("--load {e}"))
    })?;
    let table = value.get("load").ok_or_else(|| {
        bad("no [load] table (a scenario's [load], as in docs/scenario.md)".into())
    })?;
    let mut load: LoadSpec = table
        .clone()
        .try_into()
        .map_err(|e: toml::de::Error| bad(format!("[load]: {e}")))?;
    crate::scenario::load::check_ranges(&load)
        .map_err(|(key, why)| bad(format!("[load] {key}: {why}")))?;
    if load.requests.is_none() && load.duration_s.is_none() {
        return Err(bad(
            "[load] needs `requests` or `duration_s`: advise compares runs that end".into(),
        ));
    }
    if let Some(p) = &load.prompts_file {
        let dir = path.parent().unwrap_or(Path::new("."));
        load.prompts_file = Some(dir.join(p).display().to_string());
    }
    Ok(load)
}

/// Every server configuration worth running, without figures.
pub fn configurations(req: &Request, load: &LoadSpec) -> Result<Vec<Candidate>> {
    let profiles: Vec<&SimServer> = req.mix.iter().map(|w| profile(w)).collect::<Result<_>>()?;
    let n = req.copies as usize * req.mix.len();
    let blank = |name: String, mode| Candidate {
        name,
        mode,
        memory_fraction: vec![None; req.mix.len()],
        instances: vec![None; req.mix.len()],
        starts: vec![(0.0, 0.0); req.mix.len()],
        ..Candidate::blank()
    };
    let mut out = Vec::new();
    // A server whose memory fraction cannot be set takes its default of every device it shares.
    let settable = profiles.iter().all(|p| p.memory_fraction_flag.is_some());
    if n == 1 {
        out.push(blank("full".into(), SharingMode::Full));
    } else if settable {
        // Every server gets the same share of what the most frugal default would take alone.
        let default = profiles
            .iter()
            .map(|p| p.memory_fraction)
            .fold(1.0, f64::min);
        let share = (default / n as f64 * 100.0).floor() / 100.0;
        let shared = |name: String, mode, threads| Candidate {
            thread_percentage: threads,
            memory_fraction: vec![Some(share); req.mix.len()],
            ..blank(name, mode)
        };
        out.push(shared(
            "timeslice-together".into(),
            SharingMode::Timeslice,
            None,
        ));
        out.push(shared("mps-together".into(), SharingMode::Mps, None));
        let pct = (100.0 / n as f64).ceil() as u8;
        out.push(shared(
            format!("mps-threads{pct}"),
            SharingMode::Mps,
            Some(pct),
        ));
    }
    out.extend(mig_configurations(req, &profiles, load));
    Ok(out)
}

/// GiB of KV cache one request of the load's longest needs.
fn one_request_gib(p: &SimServer, load: &LoadSpec) -> f64 {
    let tokens = f64::from(load.input_tokens + load.output_tokens) * (1.0 + load.range_ratio);
    tokens * p.kv_mib_per_token / 1024.0
}

/// One server per MIG instance: per maximal layout, each server (the largest first) on the
/// largest free instance that holds it; distinct sets of (workload, instance profile) only.
fn mig_configurations(req: &Request, profiles: &[&SimServer], load: &LoadSpec) -> Vec<Candidate> {
    let mut servers: Vec<usize> = (0..req.mix.len())
        .flat_map(|w| std::iter::repeat_n(w, req.copies as usize))
        .collect();
    let need = |w: usize| profiles[w].weights_gib + one_request_gib(profiles[w], load);
    servers.sort_by(|a, b| need(*b).total_cmp(&need(*a)).then(a.cmp(b)));
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for layout in enumerate(req.gpu, &EnumerateOptions::default()) {
        // Split instances share one pool among their CIs: a server per GI is the question here.
        let mut free: Vec<&PlacedInstance> = layout
            .instances
            .iter()
            .filter(|g| g.compute.len() == 1)
            .collect();
        free.sort_by(|a, b| {
            b.profile
                .memory_gib
                .total_cmp(&a.profile.memory_gib)
                .then(b.profile.compute_slices.cmp(&a.profile.compute_slices))
                .then(a.start.cmp(&b.start))
        });
        let mut used: Vec<(usize, &PlacedInstance)> = Vec::new();
        for &w in &servers {
            let fits =
                |g: &&PlacedInstance| profiles[w].memory_fraction * g.profile.memory_gib >= need(w);
            let Some(i) = free.iter().position(fits) else {
                break;
            };
            used.push((w, free.remove(i)));
        }
        if used.len() < servers.len() {
            continue;
        }
        let mut key: Vec<(usize, &str)> = used
            .iter()
            .map(|(w, g)| (*w, g.profile.name.as_str()))
            .collect();
        key.sort_unstable();
        if !seen.insert(key) {
            continue;
        }
        used.sort_by_key(|(_, g)| g.start);
        let mut instances = vec![Vec::new(); req.mix.len()];
        for (slot, (w, _)) in used.iter().enumerate() {
            instances[*w].push(slot);
        }
        let mut label: Vec<&str> = used.iter().map(|(_, g)| g.profile.name.as_str()).collect();
        label.sort_by(|a, b| b.cmp(a));
        out.push(Candidate {
            name: format!("mig-{}", counted(&label)),
            mode: SharingMode::Mig,
            layout: used
                .iter()
                .map(|(_, g)| crate::layout::placed_name(&g.profile.name, g.start))
                .collect(),
            memory_fraction: vec![None; req.mix.len()],
            starts: vec![(0.0, 0.0); req.mix.len()],
            instances: instances
                .into_iter()
                .map(|s| (req.mix.len() > 1).then_some(s))
                .collect(),
            ..Candidate::blank()
        });
    }
    out
}

/// `2x2g.20gb_1g.10gb` from names sorted so that equal ones are together.
fn counted(names: &[&str]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < names.len() {
        let same = names[i..].iter().take_while(|n| **n == names[i]).count();
        parts.push(if same > 1 {
            format!("{same}x{}", names[i])
        } else {
            names[i].to_string()
        });
        i += same;
    }
    parts.join("_")
}

/// Runs every candidate as a variant of one scenario on the simulated GPU, in a temporary
/// directory (removed afterwards, or `keep` where given), and fills in what was measured.
pub fn measure(req: &Request, candidates: &mut [Candidate], keep: Option<&Path>) -> Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("migbench-advise-")
        .tempdir()
        .map_err(|e| Error::Harness(format!("cannot make a temporary directory: {e}")))?;
    let base: PathBuf = keep.map_or_else(|| tmp.path().to_path_buf(), Path::to_path_buf);
    let picks: Vec<&Candidate> = candidates.iter().collect();
    let text = super::scenario_toml(req, "advise-candidates", &picks)?;
    std::fs::create_dir_all(&base)
        .map_err(|e| Error::Harness(format!("cannot make {}: {e}", base.display())))?;
    let file = base.join("candidates.toml");
    std::fs::write(&file, &text)
        .map_err(|e| Error::Harness(format!("cannot write {}: {e}", file.display())))?;
    let scenario = Scenario::parse(&file, text)
        .map_err(|e| Error::Harness(format!("advise wrote a scenario it cannot read: {e}")))?;
    let backend = backend::open(
        scenario.gpu,
        &Target::Sim {
            pace: None,
            state_file: None,
        },
    )?;
    let options = RunOptions {
        out_dir: base.join("runs"),
        sample_interval: Duration::from_millis(SAMPLE_MS),
        pace: None,
        progress: false,
        command: std::env::args().collect(),
        force: false,
        state_dir: base.join("state"),
        live: None,
        samples_csv: false,
        cdi_refresh: None,
    };
    let stop = AtomicBool::new(false);
    let report = orchestrator::run(&scenario, Arc::clone(&backend), &options, &stop)?;
    let results = Results::load(std::slice::from_ref(&report.dir), Damaged::Refuse)?;
    let capacity = req.gpu.memory_gib();
    for c in candidates.iter_mut() {
        fill(c, &report, &results, capacity, req.headroom);
    }
    Ok(())
}

/// The figures of candidate `c` from the run, and whether it is advised.
fn fill(
    c: &mut Candidate,
    report: &orchestrator::RunReport,
    results: &Results,
    capacity: f64,
    headroom: f64,
) {
    let Some(v) = report.variants.iter().find(|v| v.variant == c.name) else {
        c.rejected = Some("the run recorded no such variant".into());
        return;
    };
    c.jobs = v.jobs as usize;
    c.ok = v.jobs_ok as usize;
    c.oom = v.jobs_oom as usize;
    c.makespan_s = v.makespan_s.unwrap_or(0.0);
    // The fullest pool at its peak: the instances' (or the GPU's) sampled peaks.
    c.fullest = results
        .instances
        .iter()
        .filter(|i| i.row.variant == c.name)
        .map(|i| i.row.vram_peak_gib / i.row.capacity_gib.unwrap_or(capacity))
        .fold(v.gpu_vram_peak_gib.unwrap_or(0.0) / capacity, f64::max);
    let serving = report
        .serving
        .iter()
        .find(|s| s.variant == c.name && s.scope == ServingScope::Variant);
    if let Some(s) = serving {
        let m = &s.metrics;
        c.serving = Some(Serving {
            servers: s.servers,
            completed: m.completed,
            failed_requests: m.failed,
            p99_ttft_ms: m.ttft_ms.map_or(f64::INFINITY, |t| t.p99),
            median_ttft_ms: m.ttft_ms.map_or(f64::INFINITY, |t| t.median),
            p99_tpot_ms: m.tpot_ms.map_or(f64::INFINITY, |t| t.p99),
            output_tokens_per_s: m.output_throughput,
            request_throughput: m.request_throughput,
        });
        c.units_per_hour = m.request_throughput * 3600.0;
    }
    c.rejected = if v.status != VariantStatus::Ran {
        Some(format!(
            "its setup failed: {}",
            v.reason.as_deref().unwrap_or("no reason recorded")
        ))
    } else if v.jobs_ok < v.jobs {
        Some(format!(
            "{} of {} servers did not finish ({} out of memory)",
            v.jobs - v.jobs_ok,
            v.jobs,
            v.jobs_oom
        ))
    } else if let Some(failed) = c
        .serving
        .as_ref()
        .map(|s| s.failed_requests)
        .filter(|f| *f > 0)
    {
        Some(format!("{failed} requests failed"))
    } else if c
        .serving
        .as_ref()
        .is_none_or(|s| !s.p99_ttft_ms.is_finite())
    {
        Some("no request was measured".into())
    } else if c.fullest > 1.0 - headroom + 1e-9 {
        Some(super::headroom_text(c.fullest, headroom))
    } else {
        None
    };
}
