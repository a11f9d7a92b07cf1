//! The serving tables: `requests` (one row per request sent to a server) and `serving` (the
//! metrics of each server and of each variant, under `vllm bench serve`'s names), plus
//! `serving.json` in the shape of vLLM's result files. Times are seconds on the backend's clock
//! (simulated seconds on the simulator, as `manifest.json` says), latencies milliseconds.

use std::path::Path;

use polars::prelude::*;
use serde_json::{json, Value};

use super::tables::{floats, frame, strs, u32s, write};
use crate::error::{Error, Result};
use crate::loadgen::metrics::{Figure, ServingMetrics};

/// One row of `requests`.
#[derive(Debug, Clone)]
pub struct RequestRow {
    pub variant: String,
    pub repetition: u32,
    /// The server's job in the variant.
    pub job: u32,
    pub workload: String,
    /// `GPU` or the MIG profile the server ran on.
    pub instance: String,
    pub round: u32,
    /// Number within the server's requests, warm-ups first.
    pub request: u32,
    /// Warm-ups are left out of every metric.
    pub warmup: bool,
    /// When it was sent, seconds since the run started.
    pub sent_s: f64,
    pub ttft_ms: Option<f64>,
    pub tpot_ms: Option<f64>,
    pub e2el_ms: Option<f64>,
    /// Gaps between chunks of text (in `serving.json` only: a list does not fit a CSV cell).
    pub itls_ms: Vec<f64>,
    pub input_tokens: u32,
    pub output_tokens: u32,
    /// `usage` (the server's count) or `chunks` (one token per chunk of text).
    pub tokens_from: String,
    pub error: Option<String>,
}

/// One row of `serving`: one server's load, or (`scope = variant`) all of a variant's servers.
#[derive(Debug, Clone)]
pub struct ServingRecord {
    pub variant: String,
    pub repetition: u32,
    pub mode: String,
    pub backend: String,
    /// `server` or `variant`.
    pub scope: String,
    pub job: Option<u32>,
    pub workload: Option<String>,
    pub model: Option<String>,
    pub instance: Option<String>,
    /// The server job's outcome (`ok`, `oom`, `not_ready`, ...).
    pub server_outcome: Option<String>,
    /// Servers whose load is counted here.
    pub servers: u32,
    /// Rounds of load (servers driven at once); a variant's duration is the time they cover.
    pub rounds: u32,
    pub endpoint: String,
    pub request_rate: Option<f64>,
    pub max_concurrency: Option<u32>,
    pub metrics: ServingMetrics,
    pub price_per_hour: Option<f64>,
    /// The GPU's price over the load's duration per million output tokens (variant rows).
    pub cost_per_million_output_tokens: Option<f64>,
    /// Why the figures may be off: a simulated server that fell behind the simulated clock.
    pub note: Option<String>,
}

pub(super) fn requests_frame(rows: &[RequestRow]) -> Result<DataFrame> {
    frame(vec![
        strs("variant", rows, |r| Some(&r.variant)),
        u32s("repetition", rows, |r| r.repetition),
        u32s("job", rows, |r| r.job),
        strs("workload", rows, |r| Some(&r.workload)),
        strs("instance", rows, |r| Some(&r.instance)),
        u32s("round", rows, |r| r.round),
        u32s("request", rows, |r| r.request),
        Series::new(
            "warmup".into(),
            rows.iter().map(|r| r.warmup).collect::<Vec<bool>>(),
        )
        .into(),
        floats("sent_s", rows, |r| Some(r.sent_s)),
        floats("ttft_ms", rows, |r| r.ttft_ms),
        floats("tpot_ms", rows, |r| r.tpot_ms),
        floats("e2el_ms", rows, |r| r.e2el_ms),
        u32s("chunks", rows, |r| {
            r.itls_ms.len() as u32 + u32::from(r.ttft_ms.is_some())
        }),
        u32s("input_tokens", rows, |r| r.input_tokens),
        u32s("output_tokens", rows, |r| r.output_tokens),
        strs("tokens_from", rows, |r| Some(&r.tokens_from)),
        strs("error", rows, |r| r.error.as_deref()),
    ])
}

pub(super) fn serving_frame(rows: &[ServingRecord]) -> Result<DataFrame> {
    let mut columns = vec![
        strs("variant", rows, |r| Some(&r.variant)),
        u32s("repetition", rows, |r| r.repetition),
        strs("mode", rows, |r| Some(&r.mode)),
        strs("backend", rows, |r| Some(&r.backend)),
        strs("scope", rows, |r| Some(&r.scope)),
        Series::new(
            "job".into(),
            rows.iter().map(|r| r.job).collect::<Vec<Option<u32>>>(),
        )
        .into(),
        strs("workload", rows, |r| r.workload.as_deref()),
        strs("model", rows, |r| r.model.as_deref()),
        strs("instance", rows, |r| r.instance.as_deref()),
        strs("server_outcome", rows, |r| r.server_outcome.as_deref()),
        u32s("servers", rows, |r| r.servers),
        u32s("rounds", rows, |r| r.rounds),
        strs("endpoint", rows, |r| Some(&r.endpoint)),
        floats("request_rate", rows, |r| r.request_rate),
        Series::new(
            "max_concurrency".into(),
            rows.iter()
                .map(|r| r.max_concurrency)
                .collect::<Vec<Option<u32>>>(),
        )
        .into(),
    ];
    // The metrics, one column per vLLM key; every row has the same keys in the same order.
    let figures: Vec<Vec<(String, Figure)>> = rows.iter().map(|r| r.metrics.figures()).collect();
    let names = ServingMetrics::compute(&[], 0.0, None).figures();
    for (k, (name, kind)) in names.iter().enumerate() {
        let column = match kind {
            Figure::Count(_) => Series::new(
                name.as_str().into(),
                figures
                    .iter()
                    .map(|f| match f[k].1 {
                        Figure::Count(n) => n,
                        Figure::Value(_) => 0,
                    })
                    .collect::<Vec<u64>>(),
            ),
            Figure::Value(_) => Series::new(
                name.as_str().into(),
                figures
                    .iter()
                    .map(|f| match f[k].1 {
                        Figure::Value(v) => v,
                        Figure::Count(n) => Some(n as f64),
                    })
                    .collect::<Vec<Option<f64>>>(),
            ),
        };
        columns.push(column.into());
    }
    columns.push(floats("price_per_hour", rows, |r| r.price_per_hour));
    columns.push(floats("cost_per_million_output_tokens", rows, |r| {
        r.cost_per_million_output_tokens
    }));
    columns.push(strs("note", rows, |r| r.note.as_deref()));
    frame(columns)
}

/// Writes `requests` and `serving` (CSV and Parquet) and `serving.json`, when a run has servers.
pub(super) fn write_all(
    dir: &Path,
    requests: &[RequestRow],
    serving: &[ServingRecord],
) -> Result<()> {
    if serving.is_empty() {
        return Ok(());
    }
    write(dir, "requests", &mut requests_frame(requests)?)?;
    write(dir, "serving", &mut serving_frame(serving)?)?;
    let text = serde_json::to_vec_pretty(&to_json(requests, serving))
        .map_err(|e| Error::Harness(e.to_string()))?;
    let path = dir.join("serving.json");
    std::fs::write(&path, text)
        .map_err(|e| Error::Harness(format!("cannot write {}: {e}", path.display())))
}

/// vLLM's result shape per variant: the metrics under vLLM's keys, and per server its metrics
/// plus the per-request lists vLLM keeps (`input_lens`, `output_lens`, `ttfts`, `itls`,
/// `latencies` in seconds, `errors`), warm-ups left out.
fn to_json(requests: &[RequestRow], serving: &[ServingRecord]) -> Value {
    let entry = |r: &ServingRecord| {
        let mut o = r.metrics.to_json();
        o.insert("price_per_hour".into(), json!(r.price_per_hour));
        o.insert(
            "cost_per_million_output_tokens".into(),
            json!(r.cost_per_million_output_tokens),
        );
        o.insert("note".into(), json!(r.note));
        o
    };
    let variants: Vec<Value> = serving
        .iter()
        .filter(|r| r.scope == "variant")
        .map(|v| {
            let servers: Vec<Value> = serving
                .iter()
                .filter(|s| {
                    s.scope == "server" && s.variant == v.variant && s.repetition == v.repetition
                })
                .map(|s| {
                    let mine: Vec<&RequestRow> = requests
                        .iter()
                        .filter(|q| {
                            q.variant == s.variant
                                && q.repetition == s.repetition
                                && Some(q.job) == s.job
                                && !q.warmup
                        })
                        .collect();
                    let secs = |v: Option<f64>| v.map(|ms| ms / 1000.0);
                    let mut o = entry(s);
                    o.insert("job".into(), json!(s.job));
                    o.insert("workload".into(), json!(s.workload));
                    o.insert("model".into(), json!(s.model));
                    o.insert("instance".into(), json!(s.instance));
                    o.insert("server_outcome".into(), json!(s.server_outcome));
                    o.insert(
                        "input_lens".into(),
                        json!(mine.iter().map(|q| q.input_tokens).collect::<Vec<_>>()),
                    );
                    o.insert(
                        "output_lens".into(),
                        json!(mine.iter().map(|q| q.output_tokens).collect::<Vec<_>>()),
                    );
                    o.insert(
                        "ttfts".into(),
                        json!(mine.iter().map(|q| secs(q.ttft_ms)).collect::<Vec<_>>()),
                    );
                    o.insert(
                        "itls".into(),
                        json!(mine
                            .iter()
                            .map(|q| q.itls_ms.iter().map(|ms| ms / 1000.0).collect::<Vec<_>>())
                            .collect::<Vec<_>>()),
                    );
                    o.insert(
                        "latencies".into(),
                        json!(mine.iter().map(|q| secs(q.e2el_ms)).collect::<Vec<_>>()),
                    );
                    o.insert(
                        "errors".into(),
                        json!(mine
                            .iter()
                            .map(|q| q.error.clone().unwrap_or_default())
                            .collect::<Vec<_>>()),
                    );
                    Value::Object(o)
                })
                .collect();
            json!({
                "variant": v.variant,
                "repetition": v.repetition,
                "mode": v.mode,
                "backend": v.backend,
                "endpoint": v.endpoint,
                "request_rate": v.request_rate,
                "max_concurrency": v.max_concurrency,
                "metrics": Value::Object(entry(v)),
                "servers": servers,
            })
        })
        .collect();
    json!({
        "time_unit": "seconds on the backend's clock (simulated seconds when manifest.json says simulated); *_ms keys in milliseconds",
        "variants": variants,
    })
}
