//! The load generator: drives OpenAI-compatible servers (vLLM, or the simulated server) with
//! streaming requests and measures what LLM people measure — time to first token (TTFT), time per
//! output token (TPOT), inter-token latencies (ITL), end-to-end latency and throughput — with the
//! definitions and JSON keys of `vllm bench serve` so that the two can be compared.
//!
//! Several servers are driven at once, each with its own [`LoadSpec`] and its own seeded arrival
//! stream. Times are measured on the wall clock and reported on the backend's clock through a
//! [`Clock`]: on the simulator one real second is `time_scale` simulated seconds, so every
//! figure, like every other figure of a simulated run, is in simulated seconds.

mod arrivals;
mod client;
pub mod metrics;
pub mod openai;
pub mod prompts;
pub mod spec;
pub mod sse;
pub mod stats;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

pub use arrivals::Arrivals;
pub use metrics::ServingMetrics;
pub use prompts::{PromptFile, Prompts};
pub use spec::{Endpoint, LoadSpec, Slo};

/// Longest real wait before a stopped target is noticed.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// Backend seconds read off the wall clock: `time_scale` backend seconds pass per real second.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
    at_origin: f64,
    scale: f64,
}

impl Clock {
    /// A clock that reads `now` backend seconds at this moment.
    pub fn new(now: f64, time_scale: f64) -> Clock {
        Clock {
            origin: Instant::now(),
            at_origin: now,
            scale: time_scale,
        }
    }

    /// Wall-clock seconds from now on.
    pub fn wall() -> Clock {
        Clock::new(0.0, 1.0)
    }

    pub fn now(&self) -> f64 {
        self.at_origin + self.span(self.origin.elapsed())
    }

    /// A real duration in backend seconds.
    pub fn span(&self, real: Duration) -> f64 {
        real.as_secs_f64() * self.scale
    }

    /// Backend seconds as a real duration.
    pub fn real(&self, seconds: f64) -> Duration {
        Duration::from_secs_f64((seconds / self.scale).max(0.0))
    }
}

/// One server to drive.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The `model` of each request.
    pub model: String,
    pub spec: LoadSpec,
    /// The prompts file of `spec`, read.
    pub prompts: Option<PromptFile>,
    /// Seeds this server's arrivals and lengths.
    pub seed: u64,
    /// Raised when the server is gone (or the run stops): no more requests are sent to it.
    pub stop: Arc<AtomicBool>,
}

/// Where a request's token counts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCount {
    /// The server's `usage` chunk.
    Usage,
    /// No usage came: the prompt's estimated length, and one output token per chunk of text.
    Chunks,
}

impl TokenCount {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenCount::Usage => "usage",
            TokenCount::Chunks => "chunks",
        }
    }
}

/// One request as measured. Times in backend seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    /// Number within its server's requests, warm-ups first.
    pub index: u32,
    /// Sent before the measurement; left out of every metric.
    pub warmup: bool,
    /// When it was sent, on the clock the load was driven with.
    pub sent_s: f64,
    /// Time to the first chunk of generated text.
    pub ttft_s: Option<f64>,
    /// Gaps between successive chunks of text.
    pub itls_s: Vec<f64>,
    /// End-to-end latency, for a request that completed.
    pub latency_s: Option<f64>,
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub tokens_from: TokenCount,
    /// Why the request failed; `None` when it completed.
    pub error: Option<String>,
}

impl RequestRecord {
    pub fn completed(&self) -> bool {
        self.error.is_none()
    }

    /// `(latency - TTFT) / (output tokens - 1)`, vLLM's TPOT; `None` below two output tokens.
    pub fn tpot_s(&self) -> Option<f64> {
        let (latency, ttft) = (self.latency_s?, self.ttft_s?);
        (self.output_tokens > 1).then(|| (latency - ttft) / f64::from(self.output_tokens - 1))
    }
}

/// What one server's load came to.
#[derive(Debug, Clone)]
pub struct TargetResult {
    /// When the measured requests began and when the last of them ended (after the warm-ups).
    pub start_s: f64,
    pub end_s: f64,
    pub records: Vec<RequestRecord>,
}

impl TargetResult {
    /// Seconds of measured load: the `duration` of `vllm bench serve`.
    pub fn duration(&self) -> f64 {
        self.end_s - self.start_s
    }

    /// The measured requests (warm-ups left out).
    pub fn measured(&self) -> impl Iterator<Item = &RequestRecord> {
        self.records.iter().filter(|r| !r.warmup)
    }
}

/// Drives every target at once and returns their results in the same order. Request failures
/// are recorded, never returned as errors.
pub async fn drive(targets: &[Target], clock: Clock) -> Vec<TargetResult> {
    // Proxies from the environment must not catch requests to servers on this machine.
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a client without TLS builds");
    let mut tasks = JoinSet::new();
    for (i, target) in targets.iter().enumerate() {
        let (client, target) = (client.clone(), target.clone());
        tasks.spawn(async move { (i, drive_one(&client, &target, clock).await) });
    }
    let mut results: Vec<Option<TargetResult>> = vec![None; targets.len()];
    while let Some(done) = tasks.join_next().await {
        let (i, result) = done.expect("a load task does not panic");
        results[i] = Some(result);
    }
    results
        .into_iter()
        .map(|r| r.expect("every target ran"))
        .collect()
}

/// [`drive`] on a runtime of its own, for callers that are not async.
pub fn drive_blocking(targets: &[Target], clock: Clock) -> std::io::Result<Vec<TargetResult>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(drive(targets, clock)))
}

/// The load on one server: its warm-ups one at a time, then the measured requests at their
/// arrival times, at most `max_concurrency` in flight.
async fn drive_one(client: &reqwest::Client, target: &Target, clock: Clock) -> TargetResult {
    let spec = &target.spec;
    let mut rng = StdRng::seed_from_u64(target.seed);
    let mut prompts = Prompts::new(
        target.prompts.clone(),
        spec.input_tokens,
        spec.output_tokens,
        spec.range_ratio,
    );
    let template = client::Call {
        client: client.clone(),
        url: format!("{}{}", target.base_url, spec.endpoint.path()),
        endpoint: spec.endpoint,
        model: target.model.clone(),
        prompt: prompts::Prompt::default(),
        ignore_eos: spec.ignore_eos,
        timeout: clock.real(spec.timeout_s),
        clock,
        index: 0,
        warmup: false,
    };
    let call = |prompt, index, warmup| client::Call {
        prompt,
        index,
        warmup,
        ..template.clone()
    };
    let stopped = || target.stop.load(Ordering::Relaxed);
    let mut records = Vec::new();
    for index in 0..spec.warmup_requests {
        if stopped() {
            break;
        }
        records.push(client::send(call(prompts.next(&mut rng), index, true)).await);
    }

    let arrivals = Arrivals::new(spec.rate, spec.burstiness);
    let limit = spec
        .max_concurrency
        .map(|n| Arc::new(Semaphore::new(n as usize)));
    let start = Instant::now();
    let start_s = clock.now();
    let deadline = spec.duration_s.map(|d| start + clock.real(d));
    let mut next_at = start;
    let mut in_flight = JoinSet::new();
    let mut index = spec.warmup_requests;
    let mut sent = 0;
    while spec.requests.is_none_or(|n| sent < n) && !stopped() {
        // Short naps rather than one long sleep, so that a stop is seen soon.
        while Instant::now() < next_at && !stopped() {
            tokio::time::sleep((next_at - Instant::now()).min(STOP_CHECK)).await;
        }
        // A closed loop: with a concurrency limit, the next request waits for a free place.
        let permit = match &limit {
            Some(l) => Some(Arc::clone(l).acquire_owned().await.expect("never closed")),
            None => None,
        };
        if deadline.is_some_and(|d| Instant::now() >= d) || stopped() {
            break;
        }
        let request = call(prompts.next(&mut rng), index, false);
        in_flight.spawn(async move {
            let record = client::send(request).await;
            drop(permit);
            record
        });
        index += 1;
        sent += 1;
        next_at += clock.real(arrivals.next_gap(&mut rng));
    }
    while let Some(record) = in_flight.join_next().await {
        records.push(record.expect("a request task does not panic"));
    }
    records.sort_by_key(|r| r.index);
    TargetResult {
        start_s,
        end_s: clock.now(),
        records,
    }
}
