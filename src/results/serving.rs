//! The serving tables: `requests` (one row per request sent to a server) and `serving` (the
//! metrics of each server and of each variant, under `vllm bench serve`'s names), plus
//! `serving.json` in the shape of vLLM's result files. Times are seconds on the backend's clock
//! (simulated seconds on the simulator, as `manifest.json` says), latencies milliseconds.

use std::collections::HashMap;
use std::path::Path;

use polars::prelude::*;
use serde::Serialize;
use serde_json::{json, Value};

use super::schema::{Cells, Field, Named, Table};
use super::stream::table_files;
use super::tables::write;
use super::Outcome;
use crate::backend::BackendKind;
use crate::error::{Error, Result};
use crate::loadgen::metrics::{Figure, ServingMetrics};
use crate::loadgen::{RequestRecord, TokenCount};
use crate::mode::SharingMode;
use crate::table;

table! {
    /// One row of `requests`: one request sent to a server.
    pub struct RequestRow in "requests" {
        pub variant: String,
        pub repetition: u32,
        /// The server's job in the variant.
        pub job: u32,
        pub workload: String,
        /// `GPU` or the MIG profile the server ran on.
        pub instance: String,
        pub round: u32,
        /// The sweep point it was sent at, when the load is a sweep.
        pub point: Option<u32>,
        /// Number within the server's requests, warm-ups first.
        pub request: u32,
        /// Warm-ups are left out of every metric.
        pub warmup: bool,
        /// When it was sent, seconds since the run started.
        pub sent_s: f64,
        /// When the arrival process had it due (see [`crate::loadgen::RequestRecord::due_s`]).
        pub due_s: f64,
        pub ttft_ms: Option<f64>,
        pub tpot_ms: Option<f64>,
        pub e2el_ms: Option<f64>,
        /// Chunks of text received: the first token and one per gap of `itls_ms`.
        pub chunks: u32,
        /// Gaps between chunks of text (in the Parquet table and `serving.json`; a list does not
        /// fit a CSV cell, so the CSV copy leaves it out).
        pub itls_ms: Vec<f64>,
        pub input_tokens: u32,
        pub output_tokens: u32,
        pub tokens_from: TokenCount,
        pub error: Option<String>,
    }
}

/// The `requests` table of a run, written as requests are done (by the load generator's sinks)
/// and flushed at each variant's end.
pub type RequestTable = std::sync::Arc<std::sync::Mutex<super::stream::PartWriter<RequestRow>>>;

/// Where a request was sent: what its `requests` row says beside the request's own record.
pub struct RequestPlace<'a> {
    pub variant: &'a str,
    pub repetition: u32,
    pub job: u32,
    pub workload: &'a str,
    pub instance: &'a str,
    pub round: u32,
    pub point: Option<u32>,
}

impl RequestRow {
    /// The row of request `r`, sent at `place`: times in milliseconds.
    pub fn of(place: &RequestPlace, r: &RequestRecord) -> RequestRow {
        let ms = |s: Option<f64>| s.map(|s| s * 1000.0);
        RequestRow {
            variant: place.variant.to_string(),
            repetition: place.repetition,
            job: place.job,
            workload: place.workload.to_string(),
            instance: place.instance.to_string(),
            round: place.round,
            point: place.point,
            request: r.index,
            warmup: r.warmup,
            sent_s: r.sent_s,
            due_s: r.due_s,
            ttft_ms: ms(r.ttft_s),
            tpot_ms: ms(r.tpot_s()),
            e2el_ms: ms(r.latency_s),
            chunks: r.itls_s.len() as u32 + u32::from(r.ttft_s.is_some()),
            itls_ms: r.itls_s.iter().map(|s| s * 1000.0).collect(),
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            tokens_from: r.tokens_from,
            error: r.error.clone(),
        }
    }
}

/// Which rows of `serving` a row sums up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServingScope {
    /// One server's load.
    Server,
    /// All of a variant's servers.
    Variant,
}

impl Named for ServingScope {
    const ALL: &'static [Self] = &[ServingScope::Server, ServingScope::Variant];
    fn as_str(self) -> &'static str {
        match self {
            ServingScope::Server => "server",
            ServingScope::Variant => "variant",
        }
    }
}
crate::named_field!(ServingScope);

table! {
    /// One row of `serving`: one server's load, or (`scope = variant`) all of a variant's
    /// servers. The metrics span one column per `vllm bench serve` key.
    pub struct ServingRecord in "serving" {
        pub variant: String,
        pub repetition: u32,
        pub mode: SharingMode,
        pub backend: BackendKind,
        pub scope: ServingScope,
        /// The sweep point (in the order run), when the load is a sweep.
        pub point: Option<u32>,
        pub job: Option<u32>,
        pub workload: Option<String>,
        pub model: Option<String>,
        pub instance: Option<String>,
        /// The server job's outcome (`ok`, `oom`, `not_ready`, ...).
        pub server_outcome: Option<Outcome>,
        /// Servers whose load is counted here.
        pub servers: u32,
        /// Rounds of load (servers driven at once); a variant's duration is the time they cover.
        pub rounds: u32,
        pub endpoint: String,
        pub request_rate: Option<f64>,
        pub max_concurrency: Option<u32>,
        pub metrics: ServingMetrics,
        /// Share of the measured requests (failed ones too) that met every SLO (DistServe's SLO
        /// attainment); absent without an SLO.
        pub slo_attainment: Option<f64>,
        pub price_per_hour: Option<f64>,
        /// The GPU's price over the load's duration per million output tokens (variant rows).
        pub cost_per_million_output_tokens: Option<f64>,
        /// Why the figures may be off: a simulated server that fell behind the simulated clock.
        pub note: Option<String>,
    }
}

impl ServingRecord {
    /// A figure by its column name: one of the metrics' (`p99_ttft_ms`, ...) or the cost.
    pub fn figure(&self, key: &str) -> Option<f64> {
        if key == "cost_per_million_output_tokens" {
            return self.cost_per_million_output_tokens;
        }
        let figures = self.metrics.figures();
        figures.into_iter().find(|(k, _)| k == key)?.1.value()
    }
}

/// The metrics span one column per figure, under `vllm bench serve`'s keys (the field's own
/// name is not a column): counts as integers, the rest as floats.
impl Field for ServingMetrics {
    fn schema(_: &'static str, out: &mut Vec<(String, DataType)>) {
        for (name, figure) in ServingMetrics::default().figures() {
            let dtype = match figure {
                Figure::Count(_) => DataType::UInt64,
                Figure::Value(_) => DataType::Float64,
            };
            out.push((name, dtype));
        }
    }

    fn write<'a>(_: &'static str, values: impl Iterator<Item = &'a Self>, out: &mut Vec<Column>) {
        let figures: Vec<Vec<(String, Figure)>> = values.map(|m| m.figures()).collect();
        for (k, (name, kind)) in ServingMetrics::default().figures().iter().enumerate() {
            let series = match kind {
                Figure::Count(_) => {
                    let counts: Vec<u64> = figures.iter().map(|f| f[k].1.count()).collect();
                    Series::new(name.as_str().into(), counts)
                }
                Figure::Value(_) => {
                    let values: Vec<Option<f64>> = figures.iter().map(|f| f[k].1.value()).collect();
                    Series::new(name.as_str().into(), values)
                }
            };
            out.push(series.into());
        }
    }

    fn read(cells: &Cells, _: &'static str) -> Result<Vec<Self>> {
        let names = ServingMetrics::default().figures();
        let mut columns = Vec::with_capacity(names.len());
        for (name, kind) in &names {
            columns.push(match kind {
                Figure::Count(_) => MetricColumn::Counts(cells.u64(name)?),
                Figure::Value(_) => MetricColumn::Values(cells.f64(name)?),
            });
        }
        Ok((0..cells.height())
            .map(|i| {
                let figures = names.iter().zip(&columns).map(|((name, _), c)| {
                    let figure = match c {
                        MetricColumn::Counts(c) => Figure::Count(c.get(i).unwrap_or_default()),
                        MetricColumn::Values(c) => Figure::Value(c.get(i)),
                    };
                    (name.as_str(), figure)
                });
                ServingMetrics::from_figures(figures)
            })
            .collect())
    }
}

/// A metric's column while reading.
enum MetricColumn<'a> {
    Counts(&'a UInt64Chunked),
    Values(&'a Float64Chunked),
}

/// Writes `serving` (CSV and Parquet) and `serving.json`, when a run has servers (the requests
/// are already in their parts).
pub(super) fn write_all(dir: &Path, serving: &[ServingRecord]) -> Result<()> {
    if serving.is_empty() {
        return Ok(());
    }
    write(dir, serving)?;
    let requests = detailed_requests(dir)?;
    let grouped = requests.as_deref().map(of_server);
    let path = dir.join("serving.json");
    let fail =
        |e: &dyn std::fmt::Display| Error::Harness(format!("cannot write {}: {e}", path.display()));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).map_err(|e| fail(&e))?);
    serde_json::to_writer_pretty(&mut file, &to_json(grouped.as_ref(), serving))
        .map_err(|e| fail(&e))?;
    std::io::Write::flush(&mut file).map_err(|e| fail(&e))?;
    write_points(dir, serving)
}

/// `serving.json` lists each server's requests (vLLM's `--save-detailed` lists) while the run
/// has at most this many requests; above it the file holds the metrics only and the lists are
/// in the `requests` table, so that writing it takes bounded memory: the rows read back (about
/// 1.2 KB each at 128 output tokens, 60 MB), the lists written as the file is.
pub const DETAILED_REQUESTS: usize = 50_000;

/// The run's measured requests, read back from the `requests` table, when there are at most
/// [`DETAILED_REQUESTS`] of them.
fn detailed_requests(dir: &Path) -> Result<Option<Vec<RequestRow>>> {
    let fail = |path: &Path, e: &dyn std::fmt::Display| {
        Error::Harness(format!("cannot read {}: {e}", path.display()))
    };
    let open = |path: &Path| {
        std::fs::File::open(path)
            .map(ParquetReader::new)
            .map_err(|e| fail(path, &e))
    };
    let files = table_files(dir, RequestRow::NAME);
    let mut rows = 0;
    for path in &files {
        rows += open(path)?.num_rows().map_err(|e| fail(path, &e))?;
        if rows > DETAILED_REQUESTS {
            return Ok(None);
        }
    }
    let mut measured = Vec::with_capacity(rows);
    for path in &files {
        let df = open(path)?.finish().map_err(|e| fail(path, &e))?;
        measured.extend(
            RequestRow::from_frame(&df)?
                .into_iter()
                .filter(|q| !q.warmup),
        );
    }
    Ok(Some(measured))
}

/// The directory of a run that holds one `vllm bench serve --save-result` file per sweep point.
pub const VLLM_DIR: &str = "vllm";

/// Each sweep point of each variant as the file `vllm bench serve --save-result` writes (without
/// `--save-detailed`: no per-request lists), so that vLLM's tooling (`vllm bench sweep plot`,
/// ...) reads them: `vllm/<variant>-r<repetition>-p<point>.json`.
fn write_points(dir: &Path, serving: &[ServingRecord]) -> Result<()> {
    let points: Vec<&ServingRecord> = serving
        .iter()
        .filter(|r| r.scope == ServingScope::Variant && r.point.is_some())
        .collect();
    if points.is_empty() {
        return Ok(());
    }
    let out = dir.join(VLLM_DIR);
    std::fs::create_dir_all(&out)
        .map_err(|e| Error::Harness(format!("cannot create {}: {e}", out.display())))?;
    let date = chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string();
    for r in points {
        let model = serving
            .iter()
            .find(|s| s.variant == r.variant && s.point == r.point && s.model.is_some())
            .and_then(|s| s.model.clone());
        let mut o = serde_json::Map::new();
        o.insert("date".into(), json!(date));
        // vLLM's names of the two OpenAI endpoints.
        let backend = if r.endpoint.contains("chat") {
            "openai-chat"
        } else {
            "openai"
        };
        o.insert("endpoint_type".into(), json!(backend));
        o.insert("backend".into(), json!(backend));
        o.insert("label".into(), json!(r.variant));
        o.insert("model_id".into(), json!(model));
        o.insert("tokenizer_id".into(), json!(model));
        o.insert(
            "num_prompts".into(),
            json!(r.metrics.completed + r.metrics.failed),
        );
        o.insert(
            "request_rate".into(),
            r.request_rate.map_or(json!("inf"), |x| json!(x)),
        );
        o.insert("max_concurrency".into(), json!(r.max_concurrency));
        o.extend(r.metrics.to_json());
        o.insert("slo_attainment".into(), json!(r.slo_attainment));
        o.insert("servers".into(), json!(r.servers));
        let name = format!(
            "{}-r{}-p{}.json",
            r.variant,
            r.repetition,
            r.point.unwrap_or_default()
        );
        let path = out.join(name);
        let text = serde_json::to_vec_pretty(&Value::Object(o))
            .map_err(|e| Error::Harness(e.to_string()))?;
        std::fs::write(&path, text)
            .map_err(|e| Error::Harness(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(())
}

/// A server's requests: variant, repetition, job and sweep point.
type ServerKey<'a> = (&'a str, u32, Option<u32>, Option<u32>);

/// Each server's measured requests, found once: a run's requests are many (a sweep's tens of
/// thousands), and its server rows are many too.
fn of_server(requests: &[RequestRow]) -> HashMap<ServerKey<'_>, Vec<&RequestRow>> {
    let mut of_server: HashMap<ServerKey, Vec<&RequestRow>> = HashMap::new();
    for q in requests {
        of_server
            .entry((q.variant.as_str(), q.repetition, Some(q.job), q.point))
            .or_default()
            .push(q);
    }
    of_server
}

/// `serving.json`: per variant its figures and its servers'.
#[derive(Serialize)]
struct ServingJson<'a> {
    time_unit: &'static str,
    per_request_lists: String,
    variants: Vec<Entry<'a>>,
}

/// A variant's or a server's entry: its figures, then its servers (a variant's) or its
/// requests' lists (a server's), which are written as the file is, never built as a tree of
/// JSON values (a list of ITLs per request).
struct Entry<'a> {
    fields: serde_json::Map<String, Value>,
    servers: Option<Vec<Entry<'a>>>,
    requests: Option<&'a [&'a RequestRow]>,
}

impl Serialize for Entry<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        for (k, v) in &self.fields {
            m.serialize_entry(k, v)?;
        }
        if let Some(servers) = &self.servers {
            m.serialize_entry("servers", servers)?;
        }
        if let Some(rows) = self.requests {
            let secs = |v: Option<f64>| v.map(|ms| ms / 1000.0);
            m.serialize_entry("input_lens", &List(rows, |q: &RequestRow| q.input_tokens))?;
            m.serialize_entry("output_lens", &List(rows, |q: &RequestRow| q.output_tokens))?;
            m.serialize_entry("ttfts", &List(rows, |q: &RequestRow| secs(q.ttft_ms)))?;
            let itls = |q: &RequestRow| q.itls_ms.iter().map(|ms| ms / 1000.0).collect::<Vec<_>>();
            m.serialize_entry("itls", &List(rows, itls))?;
            m.serialize_entry("latencies", &List(rows, |q: &RequestRow| secs(q.e2el_ms)))?;
            m.serialize_entry(
                "errors",
                &List(rows, |q: &RequestRow| q.error.clone().unwrap_or_default()),
            )?;
        }
        m.end()
    }
}

/// One value per request, written as the list is.
struct List<'a, F>(&'a [&'a RequestRow], F);

impl<T: Serialize, F: Fn(&RequestRow) -> T> Serialize for List<'_, F> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|q| (self.1)(q)))
    }
}

/// vLLM's result shape per variant: the metrics under vLLM's keys, and per server its metrics
/// plus the per-request lists vLLM keeps (`input_lens`, `output_lens`, `ttfts`, `itls`,
/// `latencies` in seconds, `errors`) of its measured requests, when they are given (the run has
/// at most [`DETAILED_REQUESTS`]).
fn to_json<'a>(
    requests: Option<&'a HashMap<ServerKey<'a>, Vec<&'a RequestRow>>>,
    serving: &'a [ServingRecord],
) -> ServingJson<'a> {
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
    let variants = serving
        .iter()
        .filter(|r| r.scope == ServingScope::Variant)
        .map(|v| {
            let servers = serving
                .iter()
                .filter(|s| {
                    s.scope == ServingScope::Server
                        && s.variant == v.variant
                        && s.repetition == v.repetition
                        && s.point == v.point
                })
                .map(|s| {
                    let key = (s.variant.as_str(), s.repetition, s.job, s.point);
                    let mut o = entry(s);
                    o.insert("job".into(), json!(s.job));
                    o.insert("workload".into(), json!(s.workload));
                    o.insert("model".into(), json!(s.model));
                    o.insert("instance".into(), json!(s.instance));
                    o.insert("server_outcome".into(), json!(s.server_outcome));
                    Entry {
                        fields: o,
                        servers: None,
                        requests: requests.map(|r| r.get(&key).map_or(&[][..], Vec::as_slice)),
                    }
                })
                .collect();
            let fields = json!({
                "variant": v.variant,
                "repetition": v.repetition,
                "mode": v.mode,
                "backend": v.backend,
                "endpoint": v.endpoint,
                "point": v.point,
                "request_rate": v.request_rate,
                "max_concurrency": v.max_concurrency,
                "metrics": Value::Object(entry(v)),
            });
            Entry {
                fields: match fields {
                    Value::Object(o) => o,
                    _ => unreachable!("an object"),
                },
                servers: Some(servers),
                requests: None,
            }
        })
        .collect();
    ServingJson {
        time_unit: "seconds on the backend's clock (simulated seconds when manifest.json says simulated); *_ms keys in milliseconds",
        per_request_lists: match requests {
            Some(_) => "each server's measured requests, in the order sent".to_string(),
            None => format!(
                "left out: the run has more than {DETAILED_REQUESTS} requests; they are in the requests table"
            ),
        },
        variants,
    }
}
