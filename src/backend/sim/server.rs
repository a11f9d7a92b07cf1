//! `migbench sim-server`: a simulated OpenAI-compatible model server. A real process on loopback
//! that streams real server-sent events, holds its memory on the simulated GPU like vLLM (weights,
//! then `memory fraction × device memory` with the KV cache), and produces tokens at its profile's
//! rates scaled by its current share of the simulated SMs — so MPS and MIG sharing show in TTFT,
//! TPOT and throughput.
//!
//! An engine thread runs the [scheduler](super::engine) as an actor on the simulated clock: it
//! ends its turn until the simulated GPU has done a run of steps' work (one turn for the steps
//! up to the next that finishes a request), and the tokens each step produced go out stamped with
//! the simulated instant it was done (an SSE comment, `: sim-t=SECONDS`), from which the load
//! generator takes TTFT, ITL, TPOT and latency. The HTTP side runs on a tokio
//! runtime; it hands each request to the engine and pokes the engine's actor before it answers,
//! so that a request is taken in at the instant it was sent.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use super::engine::{Engine, Step};
use crate::backend::sim::protocol::{Connection, Reply, Request, Turn, Until};
use crate::http::{self, BodySender, ChannelBody};
use crate::loadgen::prompts;
use crate::workload::SimServer;
use clap::Args;

use crate::loadgen::sse::{STAMP, STAMPED_CLIENT};

/// `max_tokens` when a completions request gives none (the OpenAI completions default).
const DEFAULT_MAX_TOKENS: u32 = 16;
/// Tokens after which the simulated model ends a chat reply of its own accord (`finish_reason`
/// `stop`) when the request sets no limit.
const NATURAL_REPLY_TOKENS: u32 = 16;
/// Bytes of events a stamped stream keeps before it sends them. A stamped client (migbench's
/// load generator) times each token by its stamp, not by when it arrives, and only a stream's
/// end holds the simulated clock, so a stream sent in fewer writes is timed the same; one
/// write per token woke the client once per token (docs/scenario.md, time under the simulator).
const STAMPED_BATCH_BYTES: usize = 64 * 1024;

/// Runs the simulated server until it is killed; returns its exit status if it fails.
pub fn run(args: &SimServerArgs) -> i32 {
    match serve(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("migbench sim-server: {e}");
            2
        }
    }
}

fn serve(args: &SimServerArgs) -> std::io::Result<i32> {
    let profile: SimServer = serde_json::from_str(&args.profile)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut gpu = Connection::connect(&args.socket)?;
    match gpu.ask(&Request::Hello {
        job: args.job,
        pid: std::process::id(),
    })? {
        Reply::Turn { .. } => {}
        Reply::Error { message } => {
            eprintln!("migbench sim-server: {message}");
            return Ok(2);
        }
        other => return Err(std::io::Error::other(format!("unexpected reply {other:?}"))),
    }
    // Loading computes little: leave the SMs to the neighbours until requests come.
    gpu.ask(&Request::Active { active: false })?;
    println!(
        "INFO simulated server for {}: device memory {:.2} GiB, memory fraction {}",
        args.model, args.device_gib, args.memory_fraction
    );
    if !gpu.allocate(profile.weights_gib)? {
        return Ok(1);
    }
    println!("INFO model weights took {:.2} GiB", profile.weights_gib);
    // Like vLLM: weights, then the KV cache once memory is profiled (taken here as halfway
    // through start-up), then warm-up and CUDA-graph capture until ready.
    let half_startup = Until::After {
        seconds: profile.startup_s / 2.0,
    };
    gpu.wait(half_startup, 0)?;
    let budget = args.memory_fraction * args.device_gib;
    let kv_gib = budget - profile.weights_gib;
    if kv_gib <= 0.0 {
        println!("INFO Available KV cache memory: {kv_gib:.2} GiB");
        eprintln!(
            "ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine."
        );
        return Ok(1);
    }
    if !gpu.allocate(budget)? {
        return Ok(1);
    }
    let turn = gpu.wait(half_startup, 0)?;
    let kv_tokens = (kv_gib * 1024.0 / profile.kv_mib_per_token) as u64;
    println!("INFO Available KV cache memory: {kv_gib:.2} GiB");
    println!("INFO GPU KV cache size: {kv_tokens} tokens");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Bound in this turn: a readiness check at any later instant finds it listening.
    let listener = runtime.block_on(tokio::net::TcpListener::bind(SocketAddr::from((
        Ipv4Addr::LOCALHOST,
        args.port,
    ))))?;
    let (to_engine, from_http) = mpsc::channel();
    let engine = Engine::new(profile, kv_tokens);
    // The HTTP side pokes the engine through a connection of its own: the engine's is busy
    // waiting for its turns.
    let poker = Connection::connect(&args.socket)?;
    println!(
        "INFO Uvicorn running on http://127.0.0.1:{} (simulated)",
        args.port
    );
    std::thread::spawn(move || {
        if let Err(e) = run_engine(gpu, turn, engine, &from_http) {
            eprintln!("migbench sim-server: lost the simulated GPU: {e}");
            std::process::exit(2);
        }
    });
    let state = Arc::new(HttpState {
        model: args.model.clone(),
        job: args.job,
        capacity: kv_tokens,
        to_engine: Mutex::new(to_engine),
        poker: Mutex::new(poker),
        next_id: AtomicU64::new(1),
    });
    runtime.block_on(http::serve(listener, move |request| {
        let state = Arc::clone(&state);
        async move { handle(&state, request).await }
    }));
    Ok(0)
}

/// A request handed to the engine.
struct Submit {
    id: u64,
    /// The client's number for it ([`STAMPED_CLIENT`]): requests that reach the server at one
    /// simulated instant are queued in this order, not in the order the network delivered them.
    order: Option<u64>,
    prompt_tokens: u32,
    max_tokens: u32,
    stream: TokenStream,
}

/// Where a response's tokens go: an event stream, or one JSON body sent when the reply ends.
enum Sink {
    Stream(BodySender),
    Whole {
        text: String,
        reply: Option<tokio::sync::oneshot::Sender<Value>>,
    },
}

/// How one response is written: OpenAI's chunk format for its endpoint. The JSON around a
/// token is made once per request; each token only fills in its word.
struct TokenStream {
    sink: Sink,
    chat: bool,
    id: String,
    model: String,
    created: u64,
    /// `data: {"id":...,"choices":[{"index":0,"text":` (or `"delta":{"content":`).
    head: String,
    /// What closes a token's chunk, without the finish reason.
    tail: &'static str,
    /// The finish reason of the last token: `length`, or `stop` when the model ends by itself.
    finish: &'static str,
    /// A chat stream's first chunk, with the role only.
    role: Option<String>,
    /// The usage chunk without its counts: `data: {...,"choices":[],"usage":`.
    usage_head: Option<String>,
    /// The client reads stamps and answers the stream's end (migbench's load generator).
    stamped_client: bool,
    /// A stamped stream's events not sent yet (at most [`STAMPED_BATCH_BYTES`] and its last
    /// event): they go out with the stream's end, or when there are that many.
    pending: String,
    prompt_tokens: u32,
    generated: u32,
}

impl TokenStream {
    #[allow(clippy::too_many_arguments)]
    fn new(
        sink: Sink,
        chat: bool,
        id: &str,
        model: &str,
        include_usage: bool,
        prompt_tokens: u32,
        finish: &'static str,
        stamped_client: bool,
    ) -> TokenStream {
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let object = if chat {
            "chat.completion.chunk"
        } else {
            "text_completion"
        };
        let common = format!(
            "data: {{\"id\":{},\"object\":\"{object}\",\"created\":{created},\"model\":{},\"choices\":",
            json!(id),
            json!(model)
        );
        let (head, tail) = if chat {
            (
                format!("{common}[{{\"index\":0,\"delta\":{{\"content\":"),
                "},\"logprobs\":null,\"finish_reason\":",
            )
        } else {
            (
                format!("{common}[{{\"index\":0,\"text\":"),
                ",\"logprobs\":null,\"stop_reason\":null,\"finish_reason\":",
            )
        };
        TokenStream {
            sink,
            chat,
            id: id.to_string(),
            model: model.to_string(),
            created,
            role: chat.then(|| {
                format!("{common}[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n")
            }),
            usage_head: include_usage.then(|| format!("{common}[],\"usage\":")),
            head,
            tail,
            finish,
            stamped_client,
            pending: String::new(),
            prompt_tokens,
            generated: 0,
        }
    }

    /// Sends the next token, made at the simulated instant `stamp` (the stamp's whole line, made
    /// once for every token of a step), with the finish reason if it is the last; false if the
    /// client left.
    fn token(&mut self, last: bool, stamp: &str) -> bool {
        // The words are plain lowercase ASCII: no JSON escaping needed.
        let word = prompts::word(self.generated as usize);
        self.generated += 1;
        match &mut self.sink {
            Sink::Whole { text, reply } => {
                text.push(' ');
                text.push_str(word);
                if !last {
                    return true;
                }
                let body = whole_body(
                    self.chat,
                    &self.id,
                    &self.model,
                    self.created,
                    text,
                    self.finish,
                    (self.prompt_tokens, self.generated),
                );
                reply.take().is_some_and(|r| r.send(body).is_ok())
            }
            Sink::Stream(tx) => {
                use std::fmt::Write;
                // Written into the pending text in place: a sweep writes millions of these.
                let out = &mut self.pending;
                out.push_str(stamp);
                if let Some(role) = self.role.take() {
                    out.push_str(&role);
                }
                let (q, finish) = if last {
                    ("\"", self.finish)
                } else {
                    ("", "null")
                };
                let _ = write!(
                    out,
                    "{}\" {word}\"{}{q}{finish}{q}}}]}}\n\n",
                    self.head, self.tail
                );
                if last {
                    if let Some(head) = &self.usage_head {
                        let (p, n) = (self.prompt_tokens, self.generated);
                        let _ = write!(
                            out,
                            "{head}{{\"prompt_tokens\":{p},\"completion_tokens\":{n},\"total_tokens\":{}}}}}\n\n",
                            p + n
                        );
                    }
                    out.push_str("data: [DONE]\n\n");
                }
                if self.stamped_client && !last && out.len() < STAMPED_BATCH_BYTES {
                    return true;
                }
                tx.send(Ok(Bytes::from(std::mem::take(out)))).is_ok()
            }
        }
    }
}

/// A non-streaming reply, as OpenAI's API (and vLLM) sends it.
fn whole_body(
    chat: bool,
    id: &str,
    model: &str,
    created: u64,
    text: &str,
    finish: &str,
    (prompt, completion): (u32, u32),
) -> Value {
    let choice = if chat {
        json!({"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": null, "finish_reason": finish})
    } else {
        json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish, "stop_reason": null})
    };
    json!({
        "id": id,
        "object": if chat { "chat.completion" } else { "text_completion" },
        "created": created,
        "model": model,
        "choices": [choice],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    })
}

/// Most engine steps in one run: a run ends its turn once for all of them (a message of a few
/// kilobytes at most).
const MAX_RUN_STEPS: usize = 512;

/// The engine thread: an actor on the simulated clock. It takes in requests and runs steps,
/// ending its turn until the GPU has done their work at the server's current speed.
///
/// Steps go to the clock in runs: every step up to and including the next that finishes a
/// request (whose end the client answers, perhaps with its next request). Until then no client
/// acts on what the engine sends, so the engine need not act between the steps of a run, and
/// the clock notes when each is done without giving a turn. A request that comes in the middle
/// of a run pokes the engine: it keeps the steps done, goes back to how the batch was before
/// the rest, and the request joins the batch after the step in progress — as if each step had
/// been its own turn, as in vLLM.
fn run_engine(
    mut gpu: Connection,
    mut turn: Turn,
    mut engine: Engine,
    requests: &mpsc::Receiver<Submit>,
) -> std::io::Result<()> {
    let mut streams: HashMap<u64, TokenStream> = HashMap::new();
    let mut active = false;
    // Stream ends sent to stamped clients in this turn: the clock waits until they are read.
    let mut holds = 0;
    let take_in = |engine: &mut Engine, streams: &mut HashMap<u64, TokenStream>| {
        // All came at this instant: queued in the clients' order, so that which of two
        // connections was read first does not change a run's figures.
        let mut came: Vec<Submit> = requests.try_iter().collect();
        came.sort_by_key(|s| s.order.unwrap_or(u64::MAX));
        for next in came {
            // The HTTP side checked the request fits, so the engine takes it.
            if engine
                .submit(next.id, next.prompt_tokens, next.max_tokens)
                .is_ok()
            {
                streams.insert(next.id, next.stream);
            }
        }
    };
    loop {
        take_in(&mut engine, &mut streams);
        let before = engine.clone();
        let (steps, targets) = plan_run(&mut engine, turn.done_s);
        if steps.is_empty() {
            if active {
                gpu.ask(&Request::Active { active: false })?;
                active = false;
            }
            turn = gpu.wait(Until::Poked, std::mem::take(&mut holds))?;
            continue;
        }
        if !active {
            gpu.ask(&Request::Active { active: true })?;
            active = true;
        }
        turn = gpu.run(targets.clone(), std::mem::take(&mut holds))?;
        let mut instants = std::mem::take(&mut turn.reached);
        // Poked just as a step was done: it is done now.
        while instants.len() < targets.len() && turn.done_s >= targets[instants.len()] {
            instants.push(turn.now);
        }
        let done = instants.len();
        if done < steps.len() {
            // Poked mid-run: the batch as it was after the step in progress.
            engine = before;
            for _ in 0..=done {
                engine.step();
            }
        }
        for (step, &now) in steps.iter().zip(&instants) {
            send_tokens(step, now, &mut engine, &mut streams, &mut holds);
        }
        let Some(step) = steps.get(done) else {
            continue;
        };
        let target = targets[done];
        loop {
            // Requests that came join the batch at the next step, as in vLLM.
            take_in(&mut engine, &mut streams);
            turn = gpu.wait(Until::Work { done_s: target }, std::mem::take(&mut holds))?;
            if turn.done_s >= target {
                break;
            }
        }
        send_tokens(step, turn.now, &mut engine, &mut streams, &mut holds);
    }
}

/// Runs engine steps for one run, from `done_s` seconds of work: up to and including the first
/// that finishes a request, at most [`MAX_RUN_STEPS`]. Returns the steps and the work done at
/// the end of each.
fn plan_run(engine: &mut Engine, mut done_s: f64) -> (Vec<Step>, Vec<f64>) {
    let mut steps = Vec::new();
    let mut targets = Vec::new();
    while steps.len() < MAX_RUN_STEPS {
        let Some(step) = engine.step() else { break };
        done_s += step.cost_s;
        targets.push(done_s);
        let ends = !step.finished.is_empty();
        steps.push(step);
        if ends {
            break;
        }
    }
    (steps, targets)
}

/// Sends the tokens `step` made at simulated instant `now`; a request whose client has left is
/// dropped, and a stream end sent to a stamped client adds a hold.
fn send_tokens(
    step: &Step,
    now: f64,
    engine: &mut Engine,
    streams: &mut HashMap<u64, TokenStream>,
    holds: &mut u32,
) {
    let stamp = format!("{STAMP}{now}\n");
    for id in &step.tokens {
        let last = step.finished.contains(id);
        let Some(stream) = streams.get_mut(id) else {
            continue;
        };
        if !stream.token(last, &stamp) {
            engine.cancel(*id);
            streams.remove(id);
        } else if last && stream.stamped_client && matches!(stream.sink, Sink::Stream(_)) {
            *holds += 1;
        }
    }
    for id in &step.finished {
        streams.remove(id);
    }
}

struct HttpState {
    model: String,
    /// The server's job on the simulated GPU, whose engine a request pokes.
    job: u64,
    capacity: u64,
    to_engine: Mutex<mpsc::Sender<Submit>>,
    poker: Mutex<Connection>,
    next_id: AtomicU64,
}

async fn handle(
    state: &HttpState,
    request: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<ChannelBody> {
    let path = request.uri().path().to_string();
    match (request.method().clone(), path.as_str()) {
        (Method::GET, "/health") => http::respond(StatusCode::OK, "text/plain", ""),
        (Method::GET, "/v1/models") => http::json(
            StatusCode::OK,
            &json!({"object": "list", "data": [{
                "id": state.model, "object": "model", "created": 0,
                "owned_by": "migbench-sim", "max_model_len": state.capacity,
            }]}),
        ),
        (Method::POST, "/v1/completions" | "/v1/chat/completions") => {
            let chat = path == "/v1/chat/completions";
            let stamped = request.headers().get(STAMPED_CLIENT).map(|v| {
                v.to_str()
                    .ok()
                    .and_then(|order| order.trim().parse::<u64>().ok())
            });
            let body = http::read_body(request).await;
            match serde_json::from_slice::<Value>(&body) {
                Ok(body) => generate(state, chat, stamped, &body).await,
                Err(e) => bad_request(&format!("the body is not JSON: {e}")),
            }
        }
        _ => http::json(
            StatusCode::NOT_FOUND,
            &json!({"object": "error", "message": format!("no route {path}"), "type": "NotFoundError", "code": 404}),
        ),
    }
}

fn bad_request(message: &str) -> hyper::Response<ChannelBody> {
    http::json(
        StatusCode::BAD_REQUEST,
        &json!({"object": "error", "message": message, "type": "BadRequestError", "code": 400}),
    )
}

/// Checks a completion request, hands it to the engine and pokes the engine; the response
/// streams its tokens, or (without `"stream": true`) comes whole when the reply ends.
/// `stamped`: the client reads stamps, with its number for the request if it gave one.
async fn generate(
    state: &HttpState,
    chat: bool,
    stamped: Option<Option<u64>>,
    body: &Value,
) -> hyper::Response<ChannelBody> {
    if body["model"].as_str() != Some(state.model.as_str()) {
        return http::json(
            StatusCode::NOT_FOUND,
            &json!({"object": "error", "message": format!("The model `{}` does not exist.", body["model"].as_str().unwrap_or_default()), "type": "NotFoundError", "code": 404}),
        );
    }
    let streaming = body["stream"].as_bool() == Some(true);
    // Prompt length: one token per word, as the load generator's synthetic prompts are made.
    let words = |v: &Value| v.as_str().map_or(0, |s| s.split_whitespace().count()) as u32;
    let prompt_tokens = if chat {
        body["messages"]
            .as_array()
            .map_or(0, |m| m.iter().map(|m| words(&m["content"])).sum())
    } else {
        words(&body["prompt"])
    };
    // With a limit the simulated model writes up to it (`length`), as `vllm bench serve` asks
    // with ignore_eos; a chat request without one gets a reply that ends by itself (`stop`).
    let limit = body["max_completion_tokens"]
        .as_u64()
        .or(body["max_tokens"].as_u64())
        .map(|n| n.min(u64::from(u32::MAX)) as u32);
    let (max_tokens, finish) = match limit {
        Some(n) => (n, "length"),
        None if chat => (NATURAL_REPLY_TOKENS, "stop"),
        None => (DEFAULT_MAX_TOKENS, "length"),
    };
    let wanted = u64::from(prompt_tokens.max(1)) + u64::from(max_tokens.max(1));
    if wanted > state.capacity {
        return bad_request(&format!(
            "This model's maximum context length is {} tokens. However, you requested {wanted} tokens. Please reduce the length of the messages or completion.",
            state.capacity
        ));
    }
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    let (sink, response, whole) = if streaming {
        let (tx, response) = http::event_stream();
        (Sink::Stream(tx), Some(response), None)
    } else {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sink = Sink::Whole {
            text: String::new(),
            reply: Some(tx),
        };
        (sink, None, Some(rx))
    };
    let stream = TokenStream::new(
        sink,
        chat,
        &format!("{}-{id}", if chat { "chatcmpl" } else { "cmpl" }),
        &state.model,
        body["stream_options"]["include_usage"].as_bool() == Some(true),
        prompt_tokens,
        finish,
        stamped.is_some(),
    );
    let sent = crate::clock::lock(&state.to_engine)
        .send(Submit {
            id,
            order: stamped.flatten(),
            prompt_tokens,
            max_tokens,
            stream,
        })
        .is_ok();
    // The engine takes the request in at this instant: poke it before answering, so that the
    // clock, which waits for the answer's headers, cannot move on first.
    let poked = sent
        && matches!(
            crate::clock::lock(&state.poker).ask(&Request::Poke { job: state.job }),
            Ok(Reply::Ok)
        );
    if !poked {
        return http::json(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"object": "error", "message": "the engine has stopped", "code": 503}),
        );
    }
    match (response, whole) {
        (Some(response), _) => response,
        (None, Some(rx)) => match rx.await {
            Ok(body) => http::json(StatusCode::OK, &body),
            Err(_) => http::json(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"object": "error", "message": "the engine dropped the request", "code": 503}),
            ),
        },
        (None, None) => unreachable!("a request is streamed or answered whole"),
    }
}

/// `migbench sim-server`'s arguments (hidden: migbench starts it as a job).
#[derive(Debug, Args)]
pub struct SimServerArgs {
    #[arg(long)]
    pub socket: std::path::PathBuf,
    #[arg(long)]
    pub job: u64,
    #[arg(long)]
    pub port: u16,
    /// Memory of the device the server runs on, GiB (vLLM's fraction is of this).
    #[arg(long)]
    pub device_gib: f64,
    #[arg(long)]
    pub memory_fraction: f64,
    /// The model name the server answers to.
    #[arg(long)]
    pub model: String,
    /// The workload's `[sim.server]` profile, as JSON.
    #[arg(long)]
    pub profile: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::openai::{parse_chunk, Usage};
    use crate::loadgen::sse::SseParser;
    use crate::loadgen::Endpoint;

    /// The stamp line of simulated instant `t`.
    fn stamp(t: f64) -> String {
        format!("{STAMP}{t}\n")
    }

    /// The writes of a stream of `tokens` tokens, the k-th made at simulated instant 1.5 + k.
    fn writes(chat: bool, stamped: bool, tokens: u32) -> Vec<Bytes> {
        let (tx, mut body) = ChannelBody::channel();
        let mut s = TokenStream::new(
            Sink::Stream(tx),
            chat,
            "x-1",
            "Qwen/Qwen3-4B",
            true,
            5,
            "length",
            stamped,
        );
        for k in 0..tokens {
            assert!(s.token(k + 1 == tokens, &stamp(1.5 + f64::from(k))));
        }
        drop(s);
        let mut out = Vec::new();
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        while let std::task::Poll::Ready(Some(Ok(frame))) =
            http_body::Body::poll_frame(std::pin::Pin::new(&mut body), &mut cx)
        {
            out.push(frame.into_data().unwrap());
        }
        out
    }

    /// Everything a stream of `tokens` tokens sends, as the load generator reads it.
    fn stream(chat: bool, tokens: u32) -> Vec<String> {
        let mut parser = SseParser::default();
        let mut events = Vec::new();
        for write in writes(chat, true, tokens) {
            for event in parser.feed(&write) {
                // Every event carries the simulated instant its token was made.
                assert!(event.stamp.is_some_and(|t| t >= 1.5), "{event:?}");
                events.push(event.data);
            }
        }
        events
    }

    #[test]
    fn a_stamped_stream_goes_out_in_fewer_writes_each_token_with_its_own_instant() {
        // Another client gets each token as it is made.
        assert_eq!(writes(false, false, 40).len(), 40);
        // A stamped client gets the stream at its end (or every STAMPED_BATCH_BYTES), and
        // reads each token at the instant it was made, as before.
        assert_eq!(writes(false, true, 40).len(), 1);
        let long = writes(false, true, 2000);
        assert!(long.len() > 1 && long.len() < 20, "{}", long.len());
        let mut parser = SseParser::default();
        let stamps: Vec<Option<f64>> = long
            .iter()
            .flat_map(|w| parser.feed(w))
            .filter(|e| e.data.contains("\"text\""))
            .map(|e| e.stamp)
            .collect();
        let made: Vec<Option<f64>> = (0..2000).map(|k| Some(1.5 + f64::from(k))).collect();
        assert_eq!(stamps, made);
    }

    #[test]
    fn streams_are_valid_openai_chunks_with_usage_and_done() {
        for (chat, endpoint) in [(false, Endpoint::Completions), (true, Endpoint::Chat)] {
            let events = stream(chat, 3);
            assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
            let chunks: Vec<_> = events[..events.len() - 1]
                .iter()
                .map(|e| parse_chunk(endpoint, e).unwrap())
                .collect();
            let text: Vec<&str> = chunks
                .iter()
                .map(|c| c.text.as_str())
                .filter(|t| !t.is_empty())
                .collect();
            assert_eq!(text, [" the", " of", " and"]);
            assert_eq!(
                chunks.last().unwrap().usage,
                Some(Usage {
                    prompt_tokens: 5,
                    completion_tokens: 3
                })
            );
            for e in &events[..events.len() - 1] {
                let v: Value = serde_json::from_str(e).unwrap();
                assert_eq!(v["model"], "Qwen/Qwen3-4B");
            }
            let last_token: Value = serde_json::from_str(&events[events.len() - 3]).unwrap();
            assert_eq!(last_token["choices"][0]["finish_reason"], "length");
        }
        // A chat stream opens with the assistant's role and no text.
        let first: Value = serde_json::from_str(&stream(true, 1)[0]).unwrap();
        assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
    }

    #[test]
    fn a_whole_reply_comes_at_its_last_token_with_usage_and_its_finish_reason() {
        for chat in [false, true] {
            let (tx, mut rx) = tokio::sync::oneshot::channel();
            let sink = Sink::Whole {
                text: String::new(),
                reply: Some(tx),
            };
            let mut s = TokenStream::new(sink, chat, "x-2", "m", false, 4, "stop", false);
            assert!(s.token(false, &stamp(1.0)));
            assert!(rx.try_recv().is_err(), "nothing before the last token");
            assert!(s.token(true, &stamp(2.0)));
            let body = rx.try_recv().unwrap();
            let choice = &body["choices"][0];
            assert_eq!(choice["finish_reason"], "stop");
            let text = if chat {
                assert_eq!(body["object"], "chat.completion");
                choice["message"]["content"].as_str().unwrap()
            } else {
                assert_eq!(body["object"], "text_completion");
                choice["text"].as_str().unwrap()
            };
            assert_eq!(text, " the of");
            assert_eq!(body["usage"]["completion_tokens"], 2);
            assert_eq!(body["usage"]["total_tokens"], 6);
        }
    }
}
