//! The range of every number of a `[load]` table (or a variant's `load`). [`LoadSpec`] parses
//! its fields unchecked; these checks run before its own (which need `requests` or
//! `duration_s`, and read the prompts file), so that a number out of range is reported at its
//! key with what is allowed.

use crate::bounds::{self, Range};
use crate::loadgen::LoadSpec;

/// Requests per second to one server.
const RATE: Range = Range::above(0.0, 1e6);
/// Gamma shape of the gaps between arrivals.
const BURSTINESS: Range = Range::above(0.0, 1000.0);
/// Latency objectives, in milliseconds: up to 30 days.
const SLO_MS: Range = Range::above(0.0, bounds::MAX_SECONDS * 1000.0);
/// Lengths vary by at most this fraction.
const RANGE_RATIO: Range = Range::below(0.0, 1.0);
/// Fraction of a sweep point's requests left out at each end.
const TRIM: Range = Range::below(0.0, 0.5);
/// Share of requests within the SLO that a point needs.
const ATTAINMENT: Range = Range::above(0.0, 1.0);
/// Points of a sweep.
pub const MAX_POINTS: i64 = 1000;
/// Measured requests per server.
pub const MAX_REQUESTS: i64 = 1_000_000;
/// Requests in flight to one server, and warm-up requests.
pub const MAX_CONCURRENCY: i64 = 10_000;
/// Prompt and output tokens of one request.
pub const MAX_TOKENS: i64 = 1 << 20;

/// The first number of `load` out of its range: its key (`slo.ttft_ms`) and why.
pub fn check_ranges(load: &LoadSpec) -> Result<(), (&'static str, String)> {
    let float = |key: &'static str, v: Option<f64>, range: Range| match v {
        Some(v) => range.check(key, v).map(|_| ()).map_err(|m| (key, m)),
        None => Ok(()),
    };
    let int = |key: &'static str, v: Option<u32>, min: i64, max: i64| match v {
        Some(v) => bounds::check_int(key, i128::from(v), min, max)
            .map(|_| ())
            .map_err(|m| (key, m)),
        None => Ok(()),
    };
    float("rate", load.rate, RATE)?;
    float("burstiness", Some(load.burstiness), BURSTINESS)?;
    float("duration_s", load.duration_s, bounds::POSITIVE_SECONDS)?;
    float("timeout_s", Some(load.timeout_s), bounds::POSITIVE_SECONDS)?;
    float("range_ratio", Some(load.range_ratio), RANGE_RATIO)?;
    if let Some(slo) = &load.slo {
        float("slo.ttft_ms", slo.ttft_ms, SLO_MS)?;
        float("slo.tpot_ms", slo.tpot_ms, SLO_MS)?;
        float("slo.e2el_ms", slo.e2el_ms, SLO_MS)?;
    }
    int("requests", load.requests, 1, MAX_REQUESTS)?;
    int("max_concurrency", load.max_concurrency, 1, MAX_CONCURRENCY)?;
    int(
        "warmup_requests",
        Some(load.warmup_requests),
        0,
        MAX_CONCURRENCY,
    )?;
    if let Some(sweep) = &load.sweep {
        for &rate in &sweep.rates {
            float("sweep.rates", Some(rate), RATE)?;
        }
        for &users in &sweep.concurrencies {
            int("sweep.concurrencies", Some(users), 1, MAX_CONCURRENCY)?;
        }
        let points = sweep.rates.len() + sweep.concurrencies.len();
        bounds::check_int("sweep", points as i128, 0, MAX_POINTS).map_err(|m| ("sweep", m))?;
        int("sweep.points", sweep.points, 3, MAX_POINTS)?;
        float("sweep.trim", Some(sweep.trim), TRIM)?;
        float("sweep.attainment", Some(sweep.attainment), ATTAINMENT)?;
    }
    int("input_tokens", Some(load.input_tokens), 1, MAX_TOKENS)?;
    int("output_tokens", Some(load.output_tokens), 1, MAX_TOKENS)?;
    Ok(())
}
