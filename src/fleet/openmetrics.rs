//! `migbench report --openmetrics FILE`: a report's final figures as an OpenMetrics text file,
//! for node_exporter's textfile collector (`--collector.textfile.directory`), so that the
//! nightly figures sit in Prometheus beside the GPUs' own.
//!
//! Every series is a gauge labelled with what identifies a scenario variant (`scenario`,
//! `variant`, `mode`, `gpu_model`, `backend`); a simulated result says so in `backend="sim"`.

use std::path::Path;

use super::exposition::{self, Exposition, GaugeFamily, GIB};
use crate::error::{Error, Result};
use crate::report::load::Origin;
use crate::report::stats::Summary;
use crate::report::ReportData;
use prometheus_client::registry::Unit;

/// The serving figures written, by `vllm bench serve`'s key: the family, its `stat` label and the
/// factor to base units (milliseconds to seconds).
const SERVING: &[(&str, &str, &str, f64)] = &[
    ("median_ttft_ms", "ttft", "median", 1e-3),
    ("p99_ttft_ms", "ttft", "p99", 1e-3),
    ("median_tpot_ms", "tpot", "median", 1e-3),
    ("p99_tpot_ms", "tpot", "p99", 1e-3),
    ("median_itl_ms", "itl", "median", 1e-3),
    ("median_e2el_ms", "e2el", "median", 1e-3),
];

/// The OpenMetrics text of a report's figures.
pub fn encode(data: &ReportData) -> Result<String> {
    let mut e = Exposition::default();
    let g = |e: &mut Exposition, name: &str, help: &str, unit| e.gauge(name, help, unit);
    let per_unit = g(
        &mut e,
        "migbench_report_time_per_unit",
        "Makespan per unit completed, mean over repetitions",
        Some(Unit::Seconds),
    );
    let per_hour = g(
        &mut e,
        "migbench_report_units_per_hour",
        "Units completed per hour of makespan on one GPU, mean over repetitions",
        None,
    );
    let jobs = g(
        &mut e,
        "migbench_report_jobs",
        "Jobs over every repetition, by outcome (ok, oom, failed, all)",
        None,
    );
    let repetitions = g(
        &mut e,
        "migbench_report_repetitions",
        "Repetitions of the variant pooled into these figures",
        None,
    );
    let gpu_peak = g(
        &mut e,
        "migbench_report_gpu_memory_peak",
        "The whole GPU's largest memory sample",
        Some(Unit::Bytes),
    );
    let job_peak = g(
        &mut e,
        "migbench_report_job_memory_peak",
        "The largest memory sample of any job",
        Some(Unit::Bytes),
    );
    let energy_per_unit = g(
        &mut e,
        "migbench_report_energy_per_unit",
        "The whole GPU's energy over the jobs per unit completed, mean over repetitions",
        Some(Unit::Joules),
    );
    let energy_per_token = g(
        &mut e,
        "migbench_report_energy_per_output_token",
        "The whole GPU's energy over the jobs per output token of the measured requests",
        Some(Unit::Joules),
    );
    let power = g(
        &mut e,
        "migbench_report_gpu_power",
        "The whole GPU's mean power over the jobs, mean over repetitions",
        Some(Unit::Other("watts".into())),
    );
    for v in &data.variants {
        let labels = labels(&v.scenario, &v.variant, &v.mode, &v.origin);
        let l = borrowed(&labels);
        let mean = |s: Option<Summary>| s.map_or(f64::NAN, |s| s.mean);
        let max = |s: Option<Summary>| s.map_or(f64::NAN, |s| s.max);
        exposition::set(&per_unit, &l, mean(v.time_per_unit_s));
        exposition::set(&per_hour, &l, mean(v.units_per_hour));
        exposition::set(&repetitions, &l, v.repetitions as f64);
        exposition::set(&gpu_peak, &l, max(v.gpu_vram_peak_gib) * GIB);
        exposition::set(&job_peak, &l, max(v.job_vram_peak_gib) * GIB);
        exposition::set(&energy_per_unit, &l, mean(v.energy_per_unit_wh) * 3600.0);
        exposition::set(
            &energy_per_token,
            &l,
            mean(v.energy_per_kilotoken_j) / 1000.0,
        );
        exposition::set(&power, &l, mean(v.mean_power_w));
        for (outcome, n) in [
            ("ok", v.jobs_ok),
            ("oom", v.jobs_oom),
            ("failed", v.jobs_failed),
            ("all", v.jobs),
        ] {
            let mut with = l.clone();
            with.push(("outcome", outcome));
            exposition::set(&jobs, &with, f64::from(n));
        }
    }
    let mut latency: Vec<(&str, GaugeFamily)> = Vec::new();
    for family in ["ttft", "tpot", "itl", "e2el"] {
        let help = format!(
            "Serving latency {} of measured requests, as vllm bench serve reports it",
            family.to_uppercase()
        );
        let name = format!("migbench_report_serving_{family}");
        latency.push((family, e.gauge(&name, &help, Some(Unit::Seconds))));
    }
    let throughput = e.gauge(
        "migbench_report_serving_output_tokens_per_second",
        "Output tokens per second over every server of the variant",
        None,
    );
    let requests = e.gauge(
        "migbench_report_serving_requests_per_second",
        "Requests completed per second over every server of the variant",
        None,
    );
    for s in &data.serving {
        let labels = labels(&s.scenario, &s.variant, &s.mode, &s.origin);
        let l = borrowed(&labels);
        let figure = |key: &str| s.figures.get(key).copied().flatten().map(|f| f.mean);
        for (key, family, stat, factor) in SERVING {
            if let (Some(value), Some((_, g))) =
                (figure(key), latency.iter().find(|(f, _)| f == family))
            {
                let mut with = l.clone();
                with.push(("stat", stat));
                exposition::set(g, &with, value * factor);
            }
        }
        if let Some(v) = figure("output_throughput") {
            exposition::set(&throughput, &l, v);
        }
        if let Some(v) = figure("request_throughput") {
            exposition::set(&requests, &l, v);
        }
    }
    e.encode()
}

/// Writes the report's OpenMetrics text to `path` through a temporary file beside it, renamed
/// into place, so that the textfile collector never reads half a file.
pub fn write(data: &ReportData, path: &Path) -> Result<()> {
    let text = encode(data)?;
    let name = path.file_name().ok_or_else(|| {
        Error::Input(format!(
            "--openmetrics {}: not a file name; expected a file such as migbench.prom",
            path.display()
        ))
    })?;
    let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    let fail = |e: std::io::Error| Error::Harness(format!("cannot write {}: {e}", path.display()));
    std::fs::write(&tmp, text).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

fn labels(
    scenario: &str,
    variant: &str,
    mode: &str,
    origin: &Origin,
) -> Vec<(&'static str, String)> {
    vec![
        ("scenario", scenario.to_string()),
        ("variant", variant.to_string()),
        ("mode", mode.to_string()),
        ("gpu_model", origin.gpu_model.clone()),
        ("backend", origin.backend.clone()),
    ]
}

fn borrowed<'a>(labels: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    labels.iter().map(|(k, v)| (*k, v.as_str())).collect()
}
