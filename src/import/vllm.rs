//! One `vllm bench serve --save-result` file, read and checked: its load (request rate,
//! concurrency), its figures under vLLM's keys, and, where `--save-detailed` kept them, each
//! request (`input_lens`, `output_lens`, `ttfts`, `itls`, `errors`, and where the file has
//! them `latencies` and `start_times`). Every problem is reported at its place in the file: line, column, what
//! was found and what is allowed.
//!
//! vLLM's Rust `vllm-bench` writes the same object, key for key, and adds its own (a
//! `steady_state` object, always present, null or not; `endpoint_type`; `failed_requests`), so
//! its files are read the same way and told apart by `steady_state`. Its multi-turn results
//! (`"mode": "multi_turn"`) count conversations and turns, not requests, and are refused.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::input;
use crate::loadgen::metrics::{Figure, ServingMetrics};
use crate::loadgen::{RequestRecord, TokenCount};
use crate::location::ScenarioError;

/// The most bytes one result file may hold: a detailed file keeps every inter-token gap of
/// every request (about 20 bytes each), so 10,000 requests of 300 tokens take some 60 MB.
pub const RESULT: input::Cap = input::Cap {
    what: "a benchmark result file",
    bytes: 64 << 20,
};

/// Most requests one detailed file may list.
const MAX_REQUESTS: usize = 1_000_000;

/// vLLM's Python benchmark, whose `--save-result` object the others follow.
pub const VLLM_BENCH_SERVE: &str = "vllm bench serve";
/// vLLM's Rust benchmark (`rust/src/bench`), which writes the same object with a few more keys.
pub const VLLM_BENCH_RS: &str = "vllm-bench";

/// What one result file says.
#[derive(Debug, Clone)]
pub struct ResultFile {
    pub path: PathBuf,
    /// The tool that wrote it: [`VLLM_BENCH_SERVE`] or [`VLLM_BENCH_RS`].
    pub tool: &'static str,
    /// `label`, when the file has one (migbench writes its variant there).
    pub label: Option<String>,
    pub model: Option<String>,
    /// `openai-chat` (or `chat` in the name) for the chat endpoint, else completions.
    pub chat: bool,
    /// Requests per second; `None` for `inf` (all at once).
    pub request_rate: Option<f64>,
    pub max_concurrency: Option<u32>,
    /// Servers the figures cover: migbench writes `servers` for a variant's point; vLLM drives one.
    pub servers: u32,
    pub slo_attainment: Option<f64>,
    pub metrics: ServingMetrics,
    /// `date`, as vLLM writes it (`20251206-115815`).
    pub date: Option<String>,
    /// Each request, from a detailed file; empty otherwise.
    pub requests: Vec<RequestRecord>,
}

/// Reads and checks `path`.
pub fn read(path: &Path) -> Result<ResultFile> {
    let text = input::read_to_string(path, RESULT).map_err(|e| {
        Error::Input(ScenarioError::unreadable(path, "the result file", &e).to_string())
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        let at = ScenarioError {
            file: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: format!(
                "{}; allowed: the JSON object `vllm bench serve --save-result` writes",
                crate::location::json_error(&text, &e)
            ),
        };
        Error::Input(at.to_string())
    })?;
    let file = File { path, text: &text };
    let Value::Object(o) = value else {
        return Err(file.error(None, "found a JSON value that is not an object; allowed: the object `vllm bench serve --save-result` writes".into()));
    };
    file.parse(&o)
}

/// A file being read, for errors located in it.
struct File<'a> {
    path: &'a Path,
    text: &'a str,
}

impl File<'_> {
    fn error(&self, span: Option<Range<usize>>, message: String) -> Error {
        Error::Input(ScenarioError::at(self.path, self.text, span, message).to_string())
    }

    /// `key` found as `value`, where `allowed` is what may be there.
    fn bad(&self, key: &str, value: &Value, allowed: &str) -> Error {
        self.error(
            key_span(self.text, key),
            format!(
                "'{key}' is {}; allowed: {allowed}",
                crate::bounds::short(&value.to_string())
            ),
        )
    }

    fn parse(&self, o: &Map<String, Value>) -> Result<ResultFile> {
        if let Some(mode) = o.get("mode").filter(|m| m.as_str() != Some("single_turn")) {
            return Err(self.bad(
                "mode",
                mode,
                "absent (one request per prompt); multi-turn results count conversations, not requests, and are not read",
            ));
        }
        for key in ["duration", "completed"] {
            if !o.contains_key(key) {
                return Err(self.error(
                    None,
                    format!("no '{key}'; allowed: a file `vllm bench serve --save-result` writes, which has 'duration' and 'completed'"),
                ));
            }
        }
        let mut figures = Vec::new();
        for (name, kind) in ServingMetrics::default().figures() {
            let Some(v) = o.get(&name) else { continue };
            let figure = match kind {
                Figure::Count(_) => Figure::Count(
                    v.as_u64()
                        .ok_or_else(|| self.bad(&name, v, "a whole number of 0 or more"))?,
                ),
                Figure::Value(_) if v.is_null() => Figure::Value(None),
                Figure::Value(_) => Figure::Value(Some(
                    v.as_f64()
                        .filter(|x| x.is_finite() && *x >= 0.0)
                        .ok_or_else(|| self.bad(&name, v, "a number of 0 or more, or null"))?,
                )),
            };
            figures.push((name, figure));
        }
        let mut metrics =
            ServingMetrics::from_figures(figures.iter().map(|(k, f)| (k.as_str(), *f)));
        if metrics.duration <= 0.0 {
            return Err(self.bad("duration", &o["duration"], "seconds above 0"));
        }
        let text = |key: &str| -> Result<Option<String>> {
            match o.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(v) => Err(self.bad(key, v, "a string or null")),
            }
        };
        let label = text("label")?.filter(|l| !l.is_empty());
        let model = text("model_id")?;
        let api = text("backend")?.or(text("endpoint_type")?);
        let request_rate = match o.get("request_rate") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s == "inf" => None,
            Some(v) => Some(
                v.as_f64()
                    .filter(|r| r.is_finite() && *r > 0.0)
                    .ok_or_else(|| {
                        self.bad("request_rate", v, "requests per second above 0, or \"inf\"")
                    })?,
            ),
        };
        let whole = |key: &str, least: u64| -> Result<Option<u64>> {
            match o.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .filter(|n| *n >= least && *n <= u64::from(u32::MAX))
                    .map(Some)
                    .ok_or_else(|| {
                        self.bad(
                            key,
                            v,
                            &format!("a whole number of {least} or more, or null"),
                        )
                    }),
            }
        };
        let max_concurrency = whole("max_concurrency", 1)?.map(|n| n as u32);
        let servers = whole("servers", 1)?.map_or(1, |n| n as u32);
        let slo_attainment =
            match o.get("slo_attainment") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_f64().filter(|a| (0.0..=1.0).contains(a)).ok_or_else(
                    || self.bad("slo_attainment", v, "a share from 0 to 1, or null"),
                )?),
            };
        let requests = self.requests(o)?;
        // A latency vLLM did not summarise in full (its default percentiles are p99 only)
        // comes from the requests when the file lists them.
        if !requests.is_empty() {
            let all: Vec<&RequestRecord> = requests.iter().collect();
            let from_requests = ServingMetrics::compute(&all, metrics.duration, None);
            metrics.ttft_ms = metrics.ttft_ms.or(from_requests.ttft_ms);
            metrics.tpot_ms = metrics.tpot_ms.or(from_requests.tpot_ms);
            metrics.itl_ms = metrics.itl_ms.or(from_requests.itl_ms);
            metrics.e2el_ms = metrics.e2el_ms.or(from_requests.e2el_ms);
        }
        Ok(ResultFile {
            path: self.path.to_path_buf(),
            tool: if o.contains_key("steady_state") {
                VLLM_BENCH_RS
            } else {
                VLLM_BENCH_SERVE
            },
            label,
            model,
            chat: api.is_some_and(|a| a.contains("chat")),
            request_rate,
            max_concurrency,
            servers,
            slo_attainment,
            metrics,
            date: text("date")?,
            requests,
        })
    }

    /// The requests of a detailed file: one entry per request in each list, all lists the
    /// same length. Times in vLLM's lists are seconds.
    fn requests(&self, o: &Map<String, Value>) -> Result<Vec<RequestRecord>> {
        const LISTS: [&str; 4] = ["input_lens", "output_lens", "ttfts", "itls"];
        if LISTS.iter().all(|k| o.get(*k).is_none_or(Value::is_null)) {
            return Ok(Vec::new());
        }
        let list = |key: &str| -> Result<&Vec<Value>> {
            match o.get(key) {
                Some(Value::Array(a)) if a.len() <= MAX_REQUESTS => Ok(a),
                Some(v @ Value::Array(_)) => Err(self.bad(
                    key,
                    &Value::from(format!("a list of {} entries", v.as_array().map_or(0, Vec::len))),
                    &format!("at most {MAX_REQUESTS} requests"),
                )),
                Some(v) => Err(self.bad(key, v, "a list with one entry per request")),
                None => Err(self.error(
                    None,
                    format!("no '{key}' beside the other per-request lists; allowed: all of {} (as --save-detailed writes them) or none", LISTS.join(", ")),
                )),
            }
        };
        let lists: Vec<&Vec<Value>> = LISTS.iter().map(|k| list(k)).collect::<Result<_>>()?;
        let n = lists[0].len();
        let optional = |key: &str| -> Result<Option<&Vec<Value>>> {
            match o.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(_) => list(key).map(Some),
            }
        };
        let (errors, latencies) = (optional("errors")?, optional("latencies")?);
        let starts = optional("start_times")?;
        for (key, l) in LISTS
            .iter()
            .zip(&lists)
            .map(|(k, l)| (*k, *l))
            .chain(errors.map(|l| ("errors", l)))
            .chain(latencies.map(|l| ("latencies", l)))
            .chain(starts.map(|l| ("start_times", l)))
        {
            if l.len() != n {
                return Err(self.error(
                    key_span(self.text, key),
                    format!(
                        "'{key}' has {} entries and 'input_lens' {n}; allowed: one entry per request in every list",
                        l.len()
                    ),
                ));
            }
        }
        let count = |key: &str, v: &Value| -> Result<u32> {
            v.as_u64()
                .filter(|n| *n <= u64::from(u32::MAX))
                .map(|n| n as u32)
                .ok_or_else(|| self.bad(key, v, "token counts: whole numbers of 0 or more"))
        };
        let seconds = |key: &str, v: &Value| -> Result<f64> {
            v.as_f64()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| self.bad(key, v, "seconds: numbers of 0 or more"))
        };
        // vLLM's start times are on its monotonic clock: sends count from the first.
        let sent: Vec<f64> = match starts {
            Some(starts) => starts
                .iter()
                .map(|v| seconds("start_times", v))
                .collect::<Result<_>>()?,
            None => vec![0.0; n],
        };
        let first = sent.iter().copied().fold(f64::INFINITY, f64::min);
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let error = match errors.map(|e| &e[i]) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.is_empty() => None,
                Some(Value::String(s)) => Some(crate::bounds::short(s)),
                Some(v) => {
                    return Err(self.bad(
                        "errors",
                        v,
                        "strings (empty for a request that succeeded) or null",
                    ))
                }
            };
            let itls = match &lists[3][i] {
                Value::Array(gaps) => gaps
                    .iter()
                    .map(|g| seconds("itls", g))
                    .collect::<Result<Vec<f64>>>()?,
                v => return Err(self.bad("itls", v, "one list of gaps in seconds per request")),
            };
            let ttft = seconds("ttfts", &lists[2][i])?;
            let e2el = match latencies.map(|e| &e[i]) {
                Some(v) if !v.is_null() => seconds("latencies", v)?,
                // Without vLLM's own latency: the first token and every gap after it.
                _ => ttft + itls.iter().sum::<f64>(),
            };
            let completed = error.is_none();
            out.push(RequestRecord {
                index: i as u32,
                warmup: false,
                sent_s: sent[i] - first,
                due_s: sent[i] - first,
                ttft_s: completed.then_some(ttft),
                itls_s: itls,
                latency_s: completed.then_some(e2el),
                input_tokens: count("input_lens", &lists[0][i])?,
                output_tokens: count("output_lens", &lists[1][i])?,
                tokens_from: TokenCount::Usage,
                error,
            });
        }
        Ok(out)
    }
}

/// Where `"key":` is in `text` (the first place a key of that name is followed by a colon).
fn key_span(text: &str, key: &str) -> Option<Range<usize>> {
    let quoted = format!("\"{key}\"");
    let mut from = 0;
    while let Some(at) = text[from..].find(&quoted) {
        let start = from + at;
        let after = start + quoted.len();
        if text[after..].trim_start().starts_with(':') {
            return Some(start..after);
        }
        from = after;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn a_detailed_file_gives_each_request_and_the_summaries_vllm_left_out() {
        // vLLM's default: mean, median, std and p99, no p90.
        let (_d, path) = write(
            r#"{"backend": "openai-chat", "model_id": "Qwen/Qwen3-4B", "request_rate": "inf",
            "max_concurrency": 2, "duration": 2.0, "completed": 2, "total_input_tokens": 30,
            "total_output_tokens": 5, "request_throughput": 1.0, "output_throughput": 2.5,
            "mean_ttft_ms": 150.0, "median_ttft_ms": 150.0, "std_ttft_ms": 50.0, "p99_ttft_ms": 199.0,
            "input_lens": [10, 20], "output_lens": [3, 2], "ttfts": [0.1, 0.2],
            "itls": [[0.05, 0.05], [0.1]], "errors": ["", ""]}"#,
        );
        let f = read(&path).unwrap();
        assert!(f.chat);
        assert_eq!((f.request_rate, f.max_concurrency), (None, Some(2)));
        assert_eq!(f.requests.len(), 2);
        let r = &f.requests[0];
        assert_eq!((r.input_tokens, r.output_tokens), (10, 3));
        assert!((r.latency_s.unwrap() - 0.2).abs() < 1e-12);
        // TTFT has no p90 in the file: its summary comes from the requests (100 and 200 ms).
        let ttft = f.metrics.ttft_ms.unwrap();
        assert!((ttft.p90 - 190.0).abs() < 1e-9, "{ttft:?}");
        assert!((ttft.p99 - 199.0).abs() < 1e-9);
        // ITL: the three gaps of both requests.
        assert!((f.metrics.itl_ms.unwrap().mean - 200.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn bad_values_are_located_with_what_is_allowed() {
        for (text, at, says) in [
            (
                "{\"duration\": 1.0,\n  \"completed\": -3}",
                ":2:3:",
                "'completed' is -3; allowed: a whole number of 0 or more",
            ),
            (
                "{\"completed\": 1,\n\"duration\": 0}",
                ":2:1:",
                "'duration' is 0; allowed: seconds above 0",
            ),
            (
                "{\"duration\": 1, \"completed\": 1,\n \"request_rate\": \"fast\"}",
                ":2:2:",
                "allowed: requests per second above 0, or \"inf\"",
            ),
            (
                "{\"duration\": 1, \"completed\": 1, \"input_lens\": [1],\n\"output_lens\": [1, 2], \"ttfts\": [0.1], \"itls\": [[]]}",
                ":2:1:",
                "'output_lens' has 2 entries and 'input_lens' 1",
            ),
            ("{\"duration\": 1,\n \"completed\": 1,,}", ":2:17:", "not JSON"),
        ] {
            let (_d, path) = write(text);
            let e = read(&path).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            let e = e.to_string();
            assert!(e.contains(&format!("r.json{at}")) && e.contains(says), "{e}");
        }
    }
}
