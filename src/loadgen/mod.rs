//! The load generator: drives OpenAI-compatible servers (vLLM, or the simulated server) with
//! streaming requests and measures what LLM people measure — time to first token (TTFT), time per
//! output token (TPOT), inter-token latencies (ITL), end-to-end latency and throughput — with the
//! definitions and JSON keys of `vllm bench serve` so that the two can be compared.
//!
//! Several servers are driven at once, each with its own [`LoadSpec`] and its own seeded arrival
//! stream, each by an [`Actor`] on the run's [`Clock`]. Against a real server times are measured
//! on the monotonic clock. Against the simulated server, arrivals are scheduled in simulated
//! time, each request holds the clock until the server has taken it in, and TTFT, ITL, TPOT and
//! latency are read from the simulated instants the server stamps on its events; the end of
//! each stream holds the clock until it is read, so that a closed loop sends its next request
//! at the instant the last one ended. Every figure of a simulated run is in simulated seconds.

mod arrivals;
mod client;
pub mod metrics;
pub mod openai;
pub mod prompts;
pub mod spec;
pub mod sse;
pub mod stats;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::task::JoinSet;

pub use arrivals::Arrivals;
pub use metrics::ServingMetrics;
pub use prompts::{PromptFile, Prompts};
pub use spec::{Endpoint, LoadSpec, Point, Slo, Sweep};

use crate::clock::{lock, Actor, Clock, Wake};

/// Longest wall-clock wait before a stopped target is noticed (on the simulator, stopping a
/// target pokes it).
const STOP_CHECK_S: f64 = 0.05;

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
    /// Raised when the server is gone (or the run stops): no more requests are sent to it, and
    /// those in flight are given up.
    pub stop: Arc<AtomicBool>,
    /// The simulated server's job, which holds the clock for the stream ends it sends (0 for a
    /// real server).
    pub hold_owner: u64,
    /// Where each request goes once done; without one, the results hold them.
    pub sink: Option<Sink>,
}

/// Takes each request of a target once it is done, with the sweep point it was sent at and
/// whether it is measured (not a warm-up, and at a sweep point within its steady window), so
/// that the caller records it as the load goes and nothing keeps it. Without a sweep, each goes
/// as soon as it and every request sent before it are done (in the order sent); at a sweep point
/// they go when the point ends, once its steady window is known.
#[derive(Clone)]
pub struct Sink(pub Arc<dyn Fn(RequestRecord, Option<Point>, bool) + Send + Sync>);

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sink")
    }
}

/// Where a request's token counts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCount {
    /// The server's `usage` chunk.
    Usage,
    /// No usage came: the prompt's estimated length, and one output token per chunk of text.
    Chunks,
}

crate::named!(TokenCount: Usage, Chunks);

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
    /// When the arrival process had it due (its send instant for warm-ups and when requests
    /// come all at once): a send later than this waited for a place (`max_concurrency`) or is
    /// the load generator falling behind.
    pub due_s: f64,
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
    /// A request that failed with `error` before anything of it was seen.
    pub fn failed(index: u32, warmup: bool, sent_s: f64, error: &str) -> RequestRecord {
        RequestRecord {
            index,
            warmup,
            sent_s,
            due_s: sent_s,
            ttft_s: None,
            itls_s: Vec::new(),
            latency_s: None,
            input_tokens: 0,
            output_tokens: 0,
            tokens_from: TokenCount::Chunks,
            error: Some(error.to_string()),
        }
    }

    pub fn completed(&self) -> bool {
        self.error.is_none()
    }

    /// `(latency - TTFT) / (output tokens - 1)`, vLLM's TPOT; `None` below two output tokens.
    pub fn tpot_s(&self) -> Option<f64> {
        let (latency, ttft) = (self.latency_s?, self.ttft_s?);
        (self.output_tokens > 1).then(|| (latency - ttft) / f64::from(self.output_tokens - 1))
    }
}

/// What one server's load came to (at one point of a sweep).
#[derive(Debug, Clone)]
pub struct TargetResult {
    /// When the measured requests began and when the last of them ended (after the warm-ups);
    /// at a sweep point, the steady window ([`TargetResult::steady`]).
    pub start_s: f64,
    pub end_s: f64,
    pub records: Vec<RequestRecord>,
    /// The sweep point, when the load is a sweep.
    pub point: Option<Point>,
    /// Only requests that ended within `start_s..=end_s` are measured (a sweep point's steady
    /// window); otherwise every request but the warm-ups.
    pub steady: bool,
}

impl TargetResult {
    /// Seconds of measured load: the `duration` of `vllm bench serve`.
    pub fn duration(&self) -> f64 {
        self.end_s - self.start_s
    }

    /// The measured requests (warm-ups left out, and at a sweep point those of ramp-up and
    /// drain; a failed request counts where it was sent).
    pub fn measured(&self) -> impl Iterator<Item = &RequestRecord> {
        self.records.iter().filter(|r| self.is_measured(r))
    }

    fn is_measured(&self, r: &RequestRecord) -> bool {
        !r.warmup && (!self.steady || self.in_window(r))
    }

    /// Whether `r` ended in the steady window (a failed request: was sent in it).
    fn in_window(&self, r: &RequestRecord) -> bool {
        match r.latency_s {
            Some(l) => r.sent_s + l > self.start_s && r.sent_s + l <= self.end_s,
            None => r.sent_s >= self.start_s && r.sent_s <= self.end_s,
        }
    }

    /// Narrows the result to its steady window: the requests after those that ended first (the
    /// `trim` share: ramp-up) and before those that ended last (the same share: drain). The
    /// window opens when the last ramp-up request ended and closes when the last measured one
    /// did, so that the count over its length is the rate requests were done at.
    fn narrow(&mut self, trim: f64) {
        let mut ends: Vec<f64> = self
            .records
            .iter()
            .filter(|r| !r.warmup)
            .filter_map(|r| Some(r.sent_s + r.latency_s?))
            .collect();
        ends.sort_by(f64::total_cmp);
        let cut = (trim * ends.len() as f64).floor() as usize;
        // Requests that all ended at once (a batch sent together) leave no window: the whole
        // span is measured then.
        let (start, end) = match cut {
            0 => return,
            _ if ends.len() <= 2 * cut + 1 => return,
            _ => (ends[cut - 1], ends[ends.len() - cut - 1]),
        };
        if end > start {
            (self.start_s, self.end_s, self.steady) = (start, end, true);
        }
    }
}

/// What is called with every target's results (one per sweep point), by the last target to
/// finish, in its turn.
pub type OnDone = Box<dyn FnOnce(Vec<Vec<TargetResult>>) + Send>;

/// Drives every target at once, each by its actor on `clock` (created by the caller, in its
/// turn, so that their order is the caller's), and returns their results in the same order: one
/// per sweep point, or one. Times are seconds on `clock` after `origin`. The last target to
/// finish calls `on_done` in its turn. Request failures are recorded, never returned as errors.
pub async fn drive(
    targets: &[Target],
    actors: &[Actor],
    clock: &Clock,
    origin: f64,
    on_done: Option<OnDone>,
) -> Vec<Vec<TargetResult>> {
    // Proxies from the environment must not catch requests to servers on this machine.
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a client without TLS builds");
    let round = Arc::new(Round(Mutex::new((vec![None; targets.len()], on_done))));
    let together = Together {
        done: Mutex::new(vec![0; targets.len()]),
        pokers: actors.iter().map(Actor::poker).collect(),
    };
    let mut tasks = Vec::new();
    for (i, (target, actor)) in targets.iter().zip(actors).enumerate() {
        let (client, round, together) = (client.clone(), Arc::clone(&round), &together);
        tasks.push(async move {
            let result = drive_one(&client, target, actor, clock, origin, (together, i)).await;
            together.arrive(i, usize::MAX);
            round.finished(i, result);
            // No turn is wanted any more (a late poke must not give one): the caller drops it.
            actor.release(Wake::Away);
        });
    }
    futures_util::future::join_all(tasks).await;
    let results = std::mem::take(&mut lock(&round.0).0);
    results
        .into_iter()
        .map(|r| r.expect("every target ran"))
        .collect()
}

/// The targets of one [`drive`], finishing: each one's results once it has them, and what the
/// last to finish calls.
#[allow(clippy::type_complexity)]
struct Round(Mutex<(Vec<Option<Vec<TargetResult>>>, Option<OnDone>)>);

impl Round {
    fn finished(&self, i: usize, result: Vec<TargetResult>) {
        let mut round = lock(&self.0);
        let (results, on_done) = &mut *round;
        results[i] = Some(result);
        if results.iter().all(Option::is_some) {
            if let Some(done) = on_done.take() {
                done(results.iter().flatten().cloned().collect());
            }
        }
    }
}

/// Keeps the targets of a sweep at the same point: none starts a point before every other
/// still running has finished the one before.
struct Together {
    /// Points each target has finished (`usize::MAX` once it has stopped).
    done: Mutex<Vec<usize>>,
    pokers: Vec<crate::clock::Poker>,
}

impl Together {
    fn arrive(&self, me: usize, points: usize) {
        lock(&self.done)[me] = points;
        for (i, p) in self.pokers.iter().enumerate() {
            if i != me {
                p.poke();
            }
        }
    }

    /// Whether a target has not yet finished `points` points.
    fn behind(&self, points: usize) -> bool {
        lock(&self.done).iter().any(|&d| d < points)
    }
}

/// [`drive`] on a runtime of its own, for callers that are not async, each target on a new actor
/// of `clock`; the results of each target's points in turn. On the simulator the caller makes
/// the actors in its turn instead ([`drive_blocking_with`]), so that their order is its.
pub fn drive_blocking(targets: &[Target], clock: Clock) -> std::io::Result<Vec<TargetResult>> {
    let actors: Vec<Actor> = targets
        .iter()
        .map(|t| clock.actor(&format!("load on {}", t.base_url)))
        .collect();
    let results = drive_blocking_with(targets, actors, &clock, clock.now(), None)?;
    Ok(results.into_iter().flatten().collect())
}

/// [`drive`] on a runtime of its own.
pub fn drive_blocking_with(
    targets: &[Target],
    actors: Vec<Actor>,
    clock: &Clock,
    origin: f64,
    on_done: Option<OnDone>,
) -> std::io::Result<Vec<Vec<TargetResult>>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let results = runtime.block_on(drive(targets, &actors, clock, origin, on_done));
    drop(actors);
    Ok(results)
}

/// Requests of one target in flight, and those done.
#[derive(Default)]
struct Board {
    /// Index and send time of each request in flight.
    in_flight: Vec<(u32, f64)>,
    done: Vec<RequestRecord>,
    /// Without a sweep, with a sink: the requests done go to it in the order sent.
    stream: Option<Stream>,
}

/// Requests on their way to a sink in the order sent: those done before one sent earlier wait
/// for it (at most the requests in flight at once).
struct Stream {
    sink: Sink,
    next: u32,
    waiting: std::collections::BTreeMap<u32, RequestRecord>,
}

impl Board {
    fn done(&mut self, record: RequestRecord) {
        let Some(s) = &mut self.stream else {
            self.done.push(record);
            return;
        };
        s.waiting.insert(record.index, record);
        while let Some(r) = s.waiting.remove(&s.next) {
            s.next += 1;
            let measured = !r.warmup;
            (s.sink.0)(r, None, measured);
        }
    }
}

/// The load on one server: its warm-ups one at a time, then the measured requests at their
/// arrival times, at most `max_concurrency` in flight; at each point of a sweep in turn, in step
/// with the other targets (`together`, with this one's place in it).
async fn drive_one(
    client: &reqwest::Client,
    target: &Target,
    actor: &Actor,
    clock: &Clock,
    origin: f64,
    (together, me): (&Together, usize),
) -> Vec<TargetResult> {
    actor.turn_async().await;
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
        timeout_s: spec.timeout_s,
        clock: clock.clone(),
        hold_owner: target.hold_owner,
        origin,
        sent_s: 0.0,
        due_s: 0.0,
        index: 0,
        warmup: false,
    };
    let board = Arc::new(Mutex::new(Board {
        stream: target
            .sink
            .clone()
            .filter(|_| spec.sweep.is_none())
            .map(|sink| Stream {
                sink,
                next: 0,
                waiting: Default::default(),
            }),
        ..Board::default()
    }));
    let mut tasks = JoinSet::new();
    let stopped = || target.stop.load(Ordering::Relaxed);
    let now = || clock.now();
    // Sends one request from this turn: the clock holds until the server has it.
    let send = |prompt, index, warmup, due: Option<f64>, tasks: &mut JoinSet<()>| {
        let sent_s = clock.now();
        let call = client::Call {
            prompt,
            index,
            warmup,
            sent_s,
            due_s: due.unwrap_or(sent_s),
            ..template.clone()
        };
        let hold = clock.hold();
        let (board, poker, clock) = (Arc::clone(&board), actor.poker(), clock.clone());
        let owner = call.hold_owner;
        lock(&board).in_flight.push((index, call.sent_s - origin));
        tasks.spawn(async move {
            let (record, end_read) = client::send(call, hold).await;
            let mut b = lock(&board);
            // A request given up when the server ended is already recorded.
            if let Some(at) = b.in_flight.iter().position(|&(i, _)| i == record.index) {
                b.in_flight.remove(at);
                b.done(record);
            }
            drop(b);
            // The target acts on the end at its instant: poked before the clock may move on.
            poker.poke();
            if end_read {
                clock.unhold(owner);
            }
        });
    };
    let in_flight = || lock(&board).in_flight.len();
    for index in 0..spec.warmup_requests {
        if stopped() {
            break;
        }
        send(prompts.next(&mut rng), index, true, None, &mut tasks);
        while in_flight() > 0 && !stopped() {
            actor.sleep_async(stop_check(clock, Wake::Never)).await;
        }
    }

    let points = spec.sweep.as_ref().map_or(1, |s| s.len());
    let mut results: Vec<TargetResult> = Vec::with_capacity(points);
    // Each point's request throughput, which an automatic sweep places its rates by.
    let mut throughputs = Vec::new();
    let mut index = spec.warmup_requests;
    for k in 0..points {
        let point = match &spec.sweep {
            None => None,
            Some(sweep) => match sweep.point(spec, k, &throughputs) {
                Some(p) => Some(p),
                None => break,
            },
        };
        if k > 0 {
            // Every other target has finished the point before.
            while together.behind(k) && !stopped() {
                actor.sleep_async(stop_check(clock, Wake::Never)).await;
            }
        }
        // A server stopped during warm-up still gets its one result, with the warm-ups in it.
        if k > 0 && stopped() {
            break;
        }
        let (rate, max_concurrency) = point.map_or((spec.rate, spec.max_concurrency), |p| {
            (p.rate, p.max_concurrency)
        });
        let arrivals = Arrivals::new(rate, spec.burstiness);
        let start_s = now();
        let deadline = spec.duration_s.map(|d| start_s + d);
        let mut next_at = start_s;
        let mut sent = 0;
        'sending: while spec.requests.is_none_or(|n| sent < n) {
            // The next arrival, and (a closed loop) a free place.
            loop {
                let t = now();
                if stopped() || deadline.is_some_and(|d| t >= d) {
                    break 'sending;
                }
                let wake = if t < next_at {
                    Wake::At(deadline.map_or(next_at, |d| d.min(next_at)))
                } else if max_concurrency.is_some_and(|n| in_flight() >= n as usize) {
                    Wake::Never
                } else {
                    break;
                };
                actor.sleep_async(stop_check(clock, wake)).await;
            }
            // Due at its arrival, or (a closed loop that waited for a place) when it got one.
            let due = rate.map(|_| next_at);
            send(prompts.next(&mut rng), index, false, due, &mut tasks);
            index += 1;
            sent += 1;
            next_at += arrivals.next_gap(&mut rng);
        }
        while in_flight() > 0 && !stopped() {
            actor.sleep_async(stop_check(clock, Wake::Never)).await;
        }
        let end_s = now() - origin;
        // A stopped target's server is gone: what is still in flight has failed, now.
        let mut b = lock(&board);
        for (index, sent_s) in std::mem::take(&mut b.in_flight) {
            b.done(RequestRecord::failed(
                index,
                index < spec.warmup_requests,
                sent_s,
                "the server ended while the request was in flight",
            ));
        }
        let mut records = std::mem::take(&mut b.done);
        drop(b);
        records.sort_by_key(|r| r.index);
        let mut result = TargetResult {
            start_s: start_s - origin,
            end_s,
            records,
            point,
            steady: false,
        };
        if let Some(sweep) = &spec.sweep {
            result.narrow(sweep.trim);
            let done = result.measured().filter(|r| r.completed()).count();
            let duration = result.duration();
            throughputs.push(if duration > 0.0 {
                done as f64 / duration
            } else {
                0.0
            });
            together.arrive(me, k + 1);
        }
        // A sweep point's requests go to the sink now that its window is known.
        if let Some(sink) = &target.sink {
            for r in std::mem::take(&mut result.records) {
                let measured = result.is_measured(&r);
                (sink.0)(r, point, measured);
            }
        }
        results.push(result);
    }
    // The tasks of given-up requests end when their streams break; nothing waits for them.
    tasks.detach_all();
    results
}

/// On the wall clock, a wait is cut short now and then to notice a stop; on the simulator a
/// stop pokes the target.
fn stop_check(clock: &Clock, wake: Wake) -> Wake {
    if clock.simulated() {
        return wake;
    }
    let soon = clock.now() + STOP_CHECK_S;
    match wake {
        Wake::At(t) => Wake::At(t.min(soon)),
        _ => Wake::At(soon),
    }
}
