//! Serving metrics over a set of measured requests, named as `vllm bench serve` names them in its
//! JSON (`request_throughput`, `output_throughput`, `p99_ttft_ms`, ...).

use serde_json::{Map, Value};

use super::stats::{Summary, Values};
use super::{RequestRecord, Slo};

/// The figures `vllm bench serve` reports for one benchmark.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServingMetrics {
    /// Seconds of load the figures are over.
    pub duration: f64,
    pub completed: u64,
    pub failed: u64,
    /// Over completed requests.
    pub total_input_tokens: u64,
    pub total_output_tokens: u64,
    /// Completed requests per second.
    pub request_throughput: f64,
    /// Requests that met every SLO, per second; `None` without SLOs.
    pub request_goodput: Option<f64>,
    /// Output tokens per second.
    pub output_throughput: f64,
    /// Input plus output tokens per second.
    pub total_token_throughput: f64,
    /// Most completed requests in flight at one moment.
    pub max_concurrent_requests: u64,
    /// In milliseconds; `None` when no request gave a value.
    pub ttft_ms: Option<Summary>,
    pub tpot_ms: Option<Summary>,
    pub itl_ms: Option<Summary>,
    pub e2el_ms: Option<Summary>,
}

/// A metric's value, for tables and JSON.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Figure {
    Count(u64),
    Value(Option<f64>),
}

impl Figure {
    /// A count as a count; a value is not one (0).
    pub fn count(self) -> u64 {
        match self {
            Figure::Count(n) => n,
            Figure::Value(_) => 0,
        }
    }

    /// A value, or a count as a value.
    pub fn value(self) -> Option<f64> {
        match self {
            Figure::Value(v) => v,
            Figure::Count(n) => Some(n as f64),
        }
    }
}

impl ServingMetrics {
    /// The metrics of `records` (warm-ups must already be left out) over `duration` seconds;
    /// `good` is how many met their SLOs, when any SLO was given.
    pub fn compute(records: &[&RequestRecord], duration: f64, good: Option<usize>) -> Self {
        let mut tally = Tally::default();
        records.iter().for_each(|r| tally.add(r, None));
        tally.metrics(duration, good)
    }

    /// Every figure under its `vllm bench serve` key, in the order vLLM prints them.
    pub fn figures(&self) -> Vec<(String, Figure)> {
        let mut out: Vec<(String, Figure)> = vec![
            ("duration".into(), Figure::Value(Some(self.duration))),
            ("completed".into(), Figure::Count(self.completed)),
            ("failed".into(), Figure::Count(self.failed)),
            (
                "total_input_tokens".into(),
                Figure::Count(self.total_input_tokens),
            ),
            (
                "total_output_tokens".into(),
                Figure::Count(self.total_output_tokens),
            ),
            (
                "request_throughput".into(),
                Figure::Value(Some(self.request_throughput)),
            ),
            (
                "request_goodput".into(),
                Figure::Value(self.request_goodput),
            ),
            (
                "output_throughput".into(),
                Figure::Value(Some(self.output_throughput)),
            ),
            (
                "total_token_throughput".into(),
                Figure::Value(Some(self.total_token_throughput)),
            ),
            (
                "max_concurrent_requests".into(),
                Figure::Count(self.max_concurrent_requests),
            ),
        ];
        for (name, summary) in [
            ("ttft", self.ttft_ms),
            ("tpot", self.tpot_ms),
            ("itl", self.itl_ms),
            ("e2el", self.e2el_ms),
        ] {
            let values = summary.map(|s| s.named().map(|(_, v)| v));
            for (k, stat) in Summary::NAMES.iter().enumerate() {
                let value = values.map(|v| v[k]);
                out.push((format!("{stat}_{name}_ms"), Figure::Value(value)));
            }
        }
        out
    }

    /// The metrics back from their figures (as [`ServingMetrics::figures`] names them); a figure
    /// not given is zero, or missing for the optional ones. A latency's summary is there when
    /// every statistic of it is.
    pub fn from_figures<'a>(figures: impl Iterator<Item = (&'a str, Figure)>) -> Self {
        let figures: std::collections::HashMap<&str, Figure> = figures.collect();
        let count = |k: &str| figures.get(k).map_or(0, |f| f.count());
        let value = |k: &str| figures.get(k).and_then(|f| f.value());
        let summary = |name: &str| {
            let stats: Option<Vec<f64>> = Summary::NAMES
                .iter()
                .map(|s| value(&format!("{s}_{name}_ms")))
                .collect();
            Some(Summary::from_values(stats?.try_into().ok()?))
        };
        ServingMetrics {
            duration: value("duration").unwrap_or_default(),
            completed: count("completed"),
            failed: count("failed"),
            total_input_tokens: count("total_input_tokens"),
            total_output_tokens: count("total_output_tokens"),
            request_throughput: value("request_throughput").unwrap_or_default(),
            request_goodput: value("request_goodput"),
            output_throughput: value("output_throughput").unwrap_or_default(),
            total_token_throughput: value("total_token_throughput").unwrap_or_default(),
            max_concurrent_requests: count("max_concurrent_requests"),
            ttft_ms: summary("ttft"),
            tpot_ms: summary("tpot"),
            itl_ms: summary("itl"),
            e2el_ms: summary("e2el"),
        }
    }

    /// The figures as a JSON object with vLLM's keys.
    pub fn to_json(&self) -> Map<String, Value> {
        self.figures()
            .into_iter()
            .map(|(k, f)| {
                let v = match f {
                    Figure::Count(n) => Value::from(n),
                    Figure::Value(v) => v.map_or(Value::Null, Value::from),
                };
                (k, v)
            })
            .collect()
    }
}

/// The measured requests of one scope (a server, or all of a variant's, at one sweep point),
/// gathered one by one as they are done, in bounded memory: counts and token sums, each
/// latency's [`Values`] (exact up to [`super::stats::EXACT_VALUES`]), how many met the SLOs,
/// and each completed request's span for the most in flight at once (16 bytes a request).
#[derive(Debug, Clone, Default)]
pub struct Tally {
    completed: u64,
    failed: u64,
    input_tokens: u64,
    output_tokens: u64,
    good: u64,
    ttft_ms: Values,
    tpot_ms: Values,
    itl_ms: Values,
    e2el_ms: Values,
    spans: Vec<(f64, f64)>,
}

impl Tally {
    /// Adds a measured request; with `slo`, counts it as good when it met every objective.
    pub fn add(&mut self, r: &RequestRecord, slo: Option<&Slo>) {
        if slo.is_some_and(|slo| meets(slo, r)) {
            self.good += 1;
        }
        if !r.completed() {
            self.failed += 1;
            return;
        }
        self.completed += 1;
        self.input_tokens += u64::from(r.input_tokens);
        self.output_tokens += u64::from(r.output_tokens);
        let ms = |v: &mut Values, s: Option<f64>| s.into_iter().for_each(|s| v.push(s * 1000.0));
        ms(&mut self.ttft_ms, r.ttft_s);
        ms(&mut self.tpot_ms, r.tpot_s());
        r.itls_s.iter().for_each(|s| self.itl_ms.push(s * 1000.0));
        ms(&mut self.e2el_ms, r.latency_s);
        if let Some(latency) = r.latency_s {
            self.spans.push((r.sent_s, r.sent_s + latency));
        }
    }

    /// Requests added, failed ones too.
    pub fn requests(&self) -> u64 {
        self.completed + self.failed
    }

    /// Requests that met every SLO (of those added with one).
    pub fn good(&self) -> u64 {
        self.good
    }

    /// Output tokens of the completed requests.
    pub fn output_tokens(&self) -> u64 {
        self.output_tokens
    }

    /// The metrics over `duration` seconds; `good` is how many met their SLOs, when any SLO was
    /// given.
    pub fn metrics(&self, duration: f64, good: Option<usize>) -> ServingMetrics {
        let per_s = |n: f64| if duration > 0.0 { n / duration } else { 0.0 };
        let (input, output) = (self.input_tokens, self.output_tokens);
        ServingMetrics {
            duration,
            completed: self.completed,
            failed: self.failed,
            total_input_tokens: input,
            total_output_tokens: output,
            request_throughput: per_s(self.completed as f64),
            request_goodput: good.map(|g| per_s(g as f64)),
            output_throughput: per_s(output as f64),
            total_token_throughput: per_s((input + output) as f64),
            max_concurrent_requests: crate::overlap::most_at_once(self.spans.iter().copied()),
            ttft_ms: self.ttft_ms.summary(),
            tpot_ms: self.tpot_ms.summary(),
            itl_ms: self.itl_ms.summary(),
            e2el_ms: self.e2el_ms.summary(),
        }
    }
}

/// Whether a completed request met every objective that is given (vLLM's goodput rule).
pub fn meets(slo: &Slo, r: &RequestRecord) -> bool {
    let within = |limit: Option<f64>, value: Option<f64>| match (limit, value) {
        (None, _) => true,
        (Some(limit), Some(v)) => v * 1000.0 <= limit,
        (Some(_), None) => false,
    };
    r.completed()
        && within(slo.ttft_ms, r.ttft_s)
        // One output token has no TPOT; vLLM counts it as 0.
        && within(slo.tpot_ms, Some(r.tpot_s().unwrap_or(0.0)))
        && within(slo.e2el_ms, r.latency_s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::TokenCount;

    fn record(sent: f64, ttft: f64, latency: f64, output: u32) -> RequestRecord {
        RequestRecord {
            index: 0,
            warmup: false,
            sent_s: sent,
            due_s: sent,
            ttft_s: Some(ttft),
            itls_s: vec![(latency - ttft) / f64::from(output - 1); output as usize - 1],
            latency_s: Some(latency),
            input_tokens: 10,
            output_tokens: output,
            tokens_from: TokenCount::Usage,
            error: None,
        }
    }

    #[test]
    fn throughputs_divide_by_the_duration_and_failures_are_counted_apart() {
        let a = record(0.0, 0.1, 1.1, 11);
        let b = record(0.5, 0.3, 2.3, 5);
        let mut failed = record(1.0, 0.1, 0.2, 2);
        failed.error = Some("HTTP 500".into());
        failed.latency_s = None;
        let m = ServingMetrics::compute(&[&a, &b, &failed], 4.0, None);
        assert_eq!((m.completed, m.failed), (2, 1));
        assert_eq!((m.total_input_tokens, m.total_output_tokens), (20, 16));
        assert_eq!(m.request_throughput, 0.5);
        assert_eq!(m.output_throughput, 4.0);
        assert_eq!(m.total_token_throughput, 9.0);
        assert_eq!(m.request_goodput, None);
        // TPOT: (1.1 - 0.1) / 10 = 100 ms and (2.3 - 0.3) / 4 = 500 ms.
        let tpot = m.tpot_ms.unwrap();
        assert!((tpot.mean - 300.0).abs() < 1e-9 && (tpot.median - 300.0).abs() < 1e-9);
        assert!((m.ttft_ms.unwrap().mean - 200.0).abs() < 1e-9);
        // The two overlap between 0.5 and 1.1 s.
        assert_eq!(m.max_concurrent_requests, 2);
    }

    #[test]
    fn goodput_counts_requests_within_every_objective() {
        let fast = record(0.0, 0.1, 1.1, 11); // TTFT 100 ms, TPOT 100 ms
        let slow = record(0.0, 0.3, 2.3, 5); // TTFT 300 ms, TPOT 500 ms
        let slo = Slo {
            ttft_ms: Some(200.0),
            tpot_ms: Some(150.0),
            e2el_ms: None,
        };
        assert!(meets(&slo, &fast) && !meets(&slo, &slow));
        let good = [&fast, &slow].iter().filter(|r| meets(&slo, r)).count();
        let m = ServingMetrics::compute(&[&fast, &slow], 2.0, Some(good));
        assert_eq!(m.request_goodput, Some(0.5));
    }

    #[test]
    fn figures_use_vllm_keys_and_empty_summaries_are_null() {
        let m = ServingMetrics::compute(&[], 1.0, None);
        let json = m.to_json();
        for key in [
            "duration",
            "completed",
            "request_throughput",
            "output_throughput",
            "total_token_throughput",
            "mean_ttft_ms",
            "median_tpot_ms",
            "std_itl_ms",
            "p90_e2el_ms",
            "p99_ttft_ms",
        ] {
            assert!(json.contains_key(key), "{key}");
        }
        assert_eq!(json["p99_ttft_ms"], Value::Null);
        assert_eq!(json["completed"], Value::from(0));
    }
}
