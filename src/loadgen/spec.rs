//! What load to put on each server of a variant: the `[load]` table of a scenario (or of one
//! variant). Fields mirror `vllm bench serve`'s options so that results can be compared.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::prompts::PromptFile;

/// The load on one server. Every duration is in backend seconds: wall-clock seconds on a GPU,
/// simulated seconds on the simulator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    /// Which OpenAI endpoint to call.
    #[serde(default)]
    pub endpoint: Endpoint,
    /// Requests per second sent to each server; absent sends them as fast as `max_concurrency`
    /// allows (all at once without it), like vLLM's default infinite rate.
    #[serde(default)]
    pub rate: Option<f64>,
    /// Gamma shape of the gaps between arrivals: 1 is a Poisson process, below 1 burstier,
    /// above 1 more regular (vLLM's `--burstiness`).
    #[serde(default = "one")]
    pub burstiness: f64,
    /// Most requests in flight to one server at a time.
    #[serde(default)]
    pub max_concurrency: Option<u32>,
    /// Measured requests per server (warm-ups not counted).
    #[serde(default)]
    pub requests: Option<u32>,
    /// Stop sending new requests after this many seconds (those in flight finish).
    #[serde(default)]
    pub duration_s: Option<f64>,
    /// Requests sent one at a time before the measurement and left out of every metric.
    #[serde(default)]
    pub warmup_requests: u32,
    /// Prompt length in tokens of the synthetic prompts (vLLM's random dataset default).
    #[serde(default = "default_input_tokens")]
    pub input_tokens: u32,
    /// Tokens asked for per request (`max_tokens`).
    #[serde(default = "default_output_tokens")]
    pub output_tokens: u32,
    /// Lengths are drawn uniformly from `n * (1 - r)` to `n * (1 + r)` (vLLM's `--random-range-ratio`).
    #[serde(default)]
    pub range_ratio: f64,
    /// A JSONL file of prompts, relative to the scenario file; replaces the synthetic prompts.
    #[serde(default)]
    pub prompts_file: Option<String>,
    /// Ask the server to ignore end-of-sequence tokens so that every request produces
    /// `output_tokens` (a vLLM extension to the OpenAI API).
    #[serde(default)]
    pub ignore_eos: bool,
    /// A request that has not finished after this many seconds is recorded as an error.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: f64,
    /// Seed of the arrival times and lengths; each server's stream is seeded `seed + job`.
    #[serde(default)]
    pub seed: u64,
    /// Service-level objectives for goodput: a request is good when it meets all that are given.
    #[serde(default)]
    pub slo: Option<Slo>,
    /// Several loads in turn on the same servers, `requests` each (see [`Sweep`]).
    #[serde(default)]
    pub sweep: Option<Sweep>,
}

/// A load sweep: the servers stay up and are driven at each point in turn, every server of a
/// variant at the same point at once. Exactly one of `rates`, `concurrencies` or `points`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// Requests per second to each server, one point each (`max_concurrency` still caps them).
    #[serde(default)]
    pub rates: Vec<f64>,
    /// Users per server, each sending its next request when its last is answered.
    #[serde(default)]
    pub concurrencies: Vec<u32>,
    /// An automatic sweep of this many points (GuideLLM's `sweep`): one request at a time, then
    /// every request at once (the ceiling), then rates evenly between the two measured
    /// throughputs.
    #[serde(default)]
    pub points: Option<u32>,
    /// Fraction of each point's requests, by completion, left out at each end: the measured
    /// window runs from the end of ramp-up to the start of the drain.
    #[serde(default = "default_trim")]
    pub trim: f64,
    /// Share of requests that must meet every SLO for a point to count as within it
    /// (DistServe's SLO attainment; 0.9 as in its paper).
    #[serde(default = "default_attainment")]
    pub attainment: f64,
}

/// One point of a sweep: its place in the order run and the load it put on each server.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    pub index: u32,
    pub rate: Option<f64>,
    pub max_concurrency: Option<u32>,
}

impl Sweep {
    /// How many points it has.
    pub fn len(&self) -> usize {
        match self.points {
            Some(n) => n as usize,
            None => self.rates.len() + self.concurrencies.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Point `index` on top of `base`; `measured` are the request throughputs (per server) of
    /// the points already run, which an automatic sweep places its rates between. `None` when
    /// the automatic sweep has nothing to place them by (no request completed).
    pub fn point(&self, base: &LoadSpec, index: usize, measured: &[f64]) -> Option<Point> {
        let at = |rate, max_concurrency| {
            Some(Point {
                index: index as u32,
                rate,
                max_concurrency,
            })
        };
        if let Some(&rate) = self.rates.get(index) {
            return at(Some(rate), base.max_concurrency);
        }
        if let Some(&users) = self.concurrencies.get(index) {
            return at(None, Some(users));
        }
        let n = self.points? as usize;
        match index {
            0 => at(None, Some(1)),
            1 => at(None, base.max_concurrency),
            k if k < n => {
                let (low, high) = (*measured.first()?, *measured.get(1)?);
                if !(low > 0.0 && high > 0.0) {
                    return None;
                }
                let rate = low + (high - low) * (k - 1) as f64 / (n - 1) as f64;
                at(Some(rate.max(low)), base.max_concurrency)
            }
            _ => None,
        }
    }

    /// The rules a sweep must follow.
    fn check(&self) -> Result<(), String> {
        let given = [
            !self.rates.is_empty(),
            !self.concurrencies.is_empty(),
            self.points.is_some(),
        ];
        if given.iter().filter(|&&g| g).count() != 1 {
            return Err(
                "load.sweep takes exactly one of rates = [...], concurrencies = [...] or points = N"
                    .into(),
            );
        }
        Ok(())
    }
}

/// An OpenAI-compatible endpoint.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    /// `POST /v1/completions` with a `prompt`.
    #[default]
    Completions,
    /// `POST /v1/chat/completions` with one user message.
    Chat,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Completions => "/v1/completions",
            Endpoint::Chat => "/v1/chat/completions",
        }
    }
}

/// Latency objectives in milliseconds (vLLM's `--goodput ttft:500 tpot:50`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    #[serde(default)]
    pub ttft_ms: Option<f64>,
    #[serde(default)]
    pub tpot_ms: Option<f64>,
    #[serde(default)]
    pub e2el_ms: Option<f64>,
}

fn one() -> f64 {
    1.0
}
fn default_input_tokens() -> u32 {
    1024
}
fn default_output_tokens() -> u32 {
    128
}
fn default_timeout_s() -> f64 {
    600.0
}
fn default_trim() -> f64 {
    0.1
}
fn default_attainment() -> f64 {
    0.9
}

impl Default for LoadSpec {
    fn default() -> Self {
        LoadSpec {
            endpoint: Endpoint::default(),
            rate: None,
            burstiness: one(),
            max_concurrency: None,
            requests: None,
            duration_s: None,
            warmup_requests: 0,
            input_tokens: default_input_tokens(),
            output_tokens: default_output_tokens(),
            range_ratio: 0.0,
            prompts_file: None,
            ignore_eos: false,
            timeout_s: default_timeout_s(),
            seed: 0,
            slo: None,
            sweep: None,
        }
    }
}

impl LoadSpec {
    /// The rules a load must follow; `base` is the directory `prompts_file` is relative to.
    pub fn check(&self, base: &Path) -> Result<(), String> {
        let positive = |name: &str, v: Option<f64>| match v {
            Some(v) if !(v > 0.0 && v.is_finite()) => {
                Err(format!("load: {name} must be above 0, found {v}"))
            }
            _ => Ok(()),
        };
        positive("rate", self.rate)?;
        positive("burstiness", Some(self.burstiness))?;
        positive("duration_s", self.duration_s)?;
        positive("timeout_s", Some(self.timeout_s))?;
        if let Some(slo) = &self.slo {
            positive("slo.ttft_ms", slo.ttft_ms)?;
            positive("slo.tpot_ms", slo.tpot_ms)?;
            positive("slo.e2el_ms", slo.e2el_ms)?;
        }
        if self.requests.is_none() && self.duration_s.is_none() {
            return Err(
                "load needs requests = N or duration_s = S (or both: whichever ends first)".into(),
            );
        }
        if self.requests == Some(0) || self.max_concurrency == Some(0) {
            return Err("load: requests and max_concurrency must be at least 1".into());
        }
        if self.input_tokens == 0 || self.output_tokens == 0 {
            return Err("load: input_tokens and output_tokens must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.range_ratio) {
            return Err(format!(
                "load: range_ratio must be at least 0 and below 1, found {}",
                self.range_ratio
            ));
        }
        if let Some(sweep) = &self.sweep {
            sweep.check()?;
            if self.requests.is_none() {
                return Err("load.sweep needs requests = N: the budget of each point".into());
            }
        }
        if let Some(file) = &self.prompts_file {
            PromptFile::load(&base.join(file))?;
        }
        Ok(())
    }
}
