//! `migbench run`: run a scenario on the simulated GPU (or, with the real backend, on a GPU).

use crate::results::{Outcome, ServingScope};
use std::io::IsTerminal;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::dry_run::DryRunBackend;
use crate::backend::{self, Backend, Target};
use serde::Serialize;

use crate::cli::{Format, RunArgs};
use crate::error::{Error, Result};
use crate::gpu_lock;
use crate::orchestrator::{self, RunOptions};
use crate::output;
use crate::scenario::Scenario;

/// The longest sampling interval: an hour, in milliseconds.
const MAX_SAMPLE_MS: u64 = 3_600_000;

pub fn run(args: &RunArgs) -> Result<String> {
    let mut scenario = Scenario::load(&args.file).map_err(|e| Error::Input(e.to_string()))?;
    if let Some(engine) = args.engine {
        scenario.file.scenario.engine = Some(engine);
    }
    if let Some(pace) = args.pace {
        if !(pace.is_finite() && pace > 0.0) {
            return Err(Error::Input(format!(
                "--pace {pace}: the pace is simulated seconds per real second, a finite number \
                 above 0 (or leave --pace out: as fast as events allow)"
            )));
        }
    }
    if !(1..=MAX_SAMPLE_MS).contains(&args.sample_ms) {
        return Err(Error::Input(format!(
            "--sample-ms {}: the sampling interval is 1 to {MAX_SAMPLE_MS} milliseconds",
            args.sample_ms
        )));
    }
    let needs = scenario.container_needs()?;
    if let Some(spec) = &args.cdi_refresh {
        crate::cdi::check_refresh_spec(spec).map_err(Error::Input)?;
    }
    let gpu = &scenario.file.gpu;
    if args.dry_run {
        let backend = DryRunBackend::new(scenario.gpu, gpu.index.unwrap_or(0), gpu.uuid.clone());
        let lines = orchestrator::dry_run(&scenario, &backend)?;
        if args.format == Format::Json {
            return output::json(&lines).map(|j| j + "\n");
        }
        return Ok(lines.join("\n") + "\n");
    }
    let target = if args.sim {
        Target::Sim {
            pace: args.pace,
            state_file: args.sim_state.clone(),
        }
    } else {
        Target::Nvml {
            index: gpu.index.unwrap_or(0),
            uuid: gpu.uuid.clone(),
        }
    };
    if !args.sim {
        // An engine missing or a port taken is bad input, found before the GPU is touched.
        crate::container::preflight(&needs)?;
        if args.cdi_refresh.is_some() && crate::container::on_path(crate::cdi::TOOL).is_none() {
            return Err(Error::Input(format!(
                "--cdi-refresh runs NVIDIA's {0}, which is not installed (not on the PATH); \
                 install the NVIDIA container toolkit (nvidia-container-toolkit-base), or leave \
                 --cdi-refresh out",
                crate::cdi::TOOL
            )));
        }
    }
    let backend = backend::open(scenario.gpu, &target)?;

    // Ctrl-C and SIGTERM raise the flag; the orchestrator stops the jobs and tears down.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| Error::Harness(format!("cannot watch for signals: {e}")))?;
    }
    // Bound before the run, so that a busy or bad address fails first; served until the end.
    let live = args.metrics_listen.as_ref().map(|addr| {
        let info = backend.info();
        let live = Arc::new(crate::fleet::live::Live::new(
            gpu.index.unwrap_or(0),
            &info.uuid,
            &info.name,
            args.sim,
            crate::progress::planned_jobs(&scenario),
        ));
        crate::fleet::live::Server::start(addr, Arc::clone(&live)).map(|server| {
            eprintln!("metrics: http://{}/metrics", server.addr);
            (live, server)
        })
    });
    let (live, _server) = live.transpose()?.unzip();
    let options = RunOptions {
        out_dir: args.out.clone(),
        sample_interval: Duration::from_millis(args.sample_ms),
        pace: args.pace,
        progress: !args.quiet && std::io::stderr().is_terminal(),
        command: std::env::args().collect(),
        force: args.force,
        state_dir: gpu_lock::state_dir(),
        live,
        samples_csv: args.samples_csv,
        cdi_refresh: args.cdi_refresh.clone(),
    };
    orchestrator::watch_panics();
    let report = orchestrator::run(&scenario, Arc::clone(&backend), &options, &stop)?;
    let text = match args.format {
        Format::Json => output::json(&RunJson::new(&report, backend.as_ref()))? + "\n",
        Format::Table => summary(&report, backend.as_ref()),
    };
    if report.interrupted {
        eprint!("{text}");
        return Err(Error::Interrupted(format!(
            "interrupted: the GPU was put back as found; finished jobs are recorded in {}",
            report.dir.display()
        )));
    }
    // Variants whose setup failed are in the table; the exit status is the first failure's.
    if let Some(first) = report.setup_failures.into_iter().next() {
        print!("{text}");
        return Err(first);
    }
    Ok(text)
}

/// What `run --format json` prints: the run directory and the figures of the summary tables.
#[derive(Serialize)]
struct RunJson<'a> {
    backend: &'static str,
    /// True when the figures come from the simulator, not from a GPU.
    simulated: bool,
    dir: String,
    interrupted: bool,
    /// Variants whose GPU setup failed (then undone), with why.
    setup_failures: Vec<String>,
    variants: Vec<VariantJson<'a>>,
    /// Jobs that did not end `ok`.
    jobs_not_ok: Vec<JobJson<'a>>,
    serving: Vec<ServingJson<'a>>,
}

#[derive(Serialize)]
struct VariantJson<'a> {
    variant: &'a str,
    repetition: u32,
    mode: &'a str,
    layout: Option<&'a str>,
    status: &'a str,
    reason: Option<&'a str>,
    jobs: u32,
    jobs_ok: u32,
    jobs_oom: u32,
    jobs_failed: u32,
    makespan_s: Option<f64>,
    units: u32,
    time_per_unit_s: Option<f64>,
    units_per_hour: Option<f64>,
    gpu_vram_peak_gib: Option<f64>,
    /// The variants table's energy figures (docs/energy.md).
    energy_j: Option<f64>,
    energy_source: Option<&'a str>,
    mean_power_w: Option<f64>,
    energy_per_unit_j: Option<f64>,
    energy_per_kilotoken_j: Option<f64>,
}

#[derive(Serialize)]
struct JobJson<'a> {
    variant: &'a str,
    repetition: u32,
    job: u32,
    workload: &'a str,
    outcome: &'a str,
    duration_s: Option<f64>,
    vram_peak_gib: Option<f64>,
    reason: Option<&'a str>,
}

#[derive(Serialize)]
struct ServingJson<'a> {
    variant: &'a str,
    repetition: u32,
    mode: &'a str,
    servers: u32,
    request_throughput: f64,
    output_throughput: f64,
    median_ttft_ms: Option<f64>,
    p99_ttft_ms: Option<f64>,
    median_tpot_ms: Option<f64>,
    p99_tpot_ms: Option<f64>,
    failed: u64,
    cost_per_million_output_tokens: Option<f64>,
    note: Option<&'a str>,
}

impl<'a> RunJson<'a> {
    fn new(report: &'a orchestrator::RunReport, backend: &dyn Backend) -> Self {
        RunJson {
            backend: backend.kind().as_str(),
            simulated: backend.kind() == crate::backend::BackendKind::Sim,
            dir: report.dir.display().to_string(),
            interrupted: report.interrupted,
            setup_failures: report
                .setup_failures
                .iter()
                .map(ToString::to_string)
                .collect(),
            variants: report
                .variants
                .iter()
                .map(|v| VariantJson {
                    variant: &v.variant,
                    repetition: v.repetition,
                    mode: v.mode.as_str(),
                    layout: v.layout.as_deref(),
                    status: v.status.as_str(),
                    reason: v.reason.as_deref(),
                    jobs: v.jobs,
                    jobs_ok: v.jobs_ok,
                    jobs_oom: v.jobs_oom,
                    jobs_failed: v.jobs_failed,
                    makespan_s: v.makespan_s,
                    units: v.units,
                    time_per_unit_s: v.time_per_unit_s,
                    units_per_hour: v.units_per_hour,
                    gpu_vram_peak_gib: v.gpu_vram_peak_gib,
                    energy_j: v.energy.energy_j,
                    energy_source: v.energy.energy_source.map(|s| s.as_str()),
                    mean_power_w: v.energy.mean_power_w,
                    energy_per_unit_j: v.energy.energy_per_unit_j,
                    energy_per_kilotoken_j: v.energy.energy_per_kilotoken_j,
                })
                .collect(),
            jobs_not_ok: report
                .jobs
                .iter()
                .filter(|j| j.outcome != Outcome::Ok)
                .map(|j| JobJson {
                    variant: &j.variant,
                    repetition: j.repetition,
                    job: j.job,
                    workload: &j.workload,
                    outcome: j.outcome.as_str(),
                    duration_s: j.duration_s,
                    vram_peak_gib: j.vram_peak_gib,
                    reason: j.reason.as_deref(),
                })
                .collect(),
            serving: report
                .serving
                .iter()
                .filter(|r| r.scope == ServingScope::Variant)
                .map(|r| ServingJson {
                    variant: &r.variant,
                    repetition: r.repetition,
                    mode: r.mode.as_str(),
                    servers: r.servers,
                    request_throughput: r.metrics.request_throughput,
                    output_throughput: r.metrics.output_throughput,
                    median_ttft_ms: r.metrics.ttft_ms.map(|s| s.median),
                    p99_ttft_ms: r.metrics.ttft_ms.map(|s| s.p99),
                    median_tpot_ms: r.metrics.tpot_ms.map(|s| s.median),
                    p99_tpot_ms: r.metrics.tpot_ms.map(|s| s.p99),
                    failed: r.metrics.failed,
                    cost_per_million_output_tokens: r.cost_per_million_output_tokens,
                    note: r.note.as_deref(),
                })
                .collect(),
        }
    }
}

fn summary(report: &orchestrator::RunReport, backend: &dyn Backend) -> String {
    let simulated = backend.kind() == crate::backend::BackendKind::Sim;
    let mut table = output::grid([
        "Variant",
        "Mode",
        "Jobs",
        "OK",
        "OOM",
        "Failed",
        "Makespan s",
        "s per unit",
        "Units/h",
        "Wh per unit",
        "GPU peak GiB",
        "Status",
    ]);
    let opt =
        |v: Option<f64>, digits: usize| v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"));
    for v in &report.variants {
        table.add_row(vec![
            if v.repetition > 1 {
                format!("{} (rep {})", v.variant, v.repetition)
            } else {
                v.variant.clone()
            },
            v.mode.as_str().to_string(),
            v.jobs.to_string(),
            v.jobs_ok.to_string(),
            v.jobs_oom.to_string(),
            v.jobs_failed.to_string(),
            opt(v.makespan_s, 0),
            opt(v.time_per_unit_s, 0),
            opt(v.units_per_hour, 1),
            opt(v.energy.energy_per_unit_j.map(|j| j / 3600.0), 1),
            opt(v.gpu_vram_peak_gib, 1),
            v.status.as_str().to_string(),
        ]);
    }
    output::align_right(&mut table, &[2, 3, 4, 5, 6, 7, 8, 9, 10]);
    let mut out = format!(
        "{}\n{table}\n",
        if simulated {
            "backend: sim — a simulated GPU; times are simulated seconds and energy is the \
             simulator's power model, not measurements"
        } else {
            "backend: nvml"
        }
    );
    for v in report.variants.iter().filter(|v| v.reason.is_some()) {
        out.push_str(&format!(
            "{}: {}: {}\n",
            v.variant,
            v.status.as_str(),
            v.reason.as_deref().unwrap_or_default()
        ));
    }
    out.push_str(&serving_summary(&report.serving, &report.variants));
    for j in report.jobs.iter().filter(|j| j.outcome == Outcome::Oom) {
        out.push_str(&format!(
            "{} job {} ({}) ran out of memory after {:.0} s\n",
            j.variant,
            j.job,
            j.workload,
            j.duration_s.unwrap_or_default()
        ));
    }
    out.push_str(&format!("results: {}\n", report.dir.display()));
    out
}

/// The serving variants' figures: throughput, TTFT and TPOT, errors, and cost per million output
/// tokens (with `price_per_hour`). Empty for runs without servers.
fn serving_summary(
    rows: &[crate::results::ServingRecord],
    energy: &[crate::results::VariantRecord],
) -> String {
    let variants: Vec<_> = rows
        .iter()
        .filter(|r| r.scope == ServingScope::Variant)
        .collect();
    if variants.is_empty() {
        return String::new();
    }
    let mut table = output::grid([
        "Serving",
        "Mode",
        "Servers",
        "Req/s",
        "Output tok/s",
        "TTFT p50 ms",
        "TTFT p99 ms",
        "TPOT p50 ms",
        "TPOT p99 ms",
        "Errors",
        "Cost per M tok",
        "J per 1k tok",
    ]);
    let opt =
        |v: Option<f64>, digits: usize| v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"));
    for r in &variants {
        let m = &r.metrics;
        table.add_row(vec![
            if r.repetition > 1 {
                format!("{} (rep {})", r.variant, r.repetition)
            } else {
                r.variant.clone()
            },
            r.mode.as_str().to_string(),
            r.servers.to_string(),
            format!("{:.2}", m.request_throughput),
            format!("{:.0}", m.output_throughput),
            opt(m.ttft_ms.map(|s| s.median), 0),
            opt(m.ttft_ms.map(|s| s.p99), 0),
            opt(m.tpot_ms.map(|s| s.median), 1),
            opt(m.tpot_ms.map(|s| s.p99), 1),
            m.failed.to_string(),
            opt(r.cost_per_million_output_tokens, 2),
            opt(
                energy
                    .iter()
                    .find(|v| v.variant == r.variant && v.repetition == r.repetition)
                    .and_then(|v| v.energy.energy_per_kilotoken_j),
                1,
            ),
        ]);
    }
    output::align_right(&mut table, &[2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    let mut out = format!("{table}\n");
    for r in variants.iter().filter(|r| r.note.is_some()) {
        out.push_str(&format!(
            "{}: {}\n",
            r.variant,
            r.note.as_deref().unwrap_or_default()
        ));
    }
    out
}
