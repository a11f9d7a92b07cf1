//! `migbench sim-server`: a simulated OpenAI-compatible model server. A real process on loopback
//! that streams real server-sent events, holds its memory on the simulated GPU like vLLM (weights,
//! then `memory fraction × device memory` with the KV cache), and produces tokens at its profile's
//! rates scaled by its current share of the simulated SMs — so MPS and MIG sharing show in TTFT,
//! TPOT and throughput.
//!
//! An engine thread runs the [scheduler](super::engine) and waits, step by step, for the simulated
//! GPU to have done each step's work; the HTTP side runs on a tokio runtime and only parses
//! requests and hands them over.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use super::engine::Engine;
use super::http::{self, BodySender, ChannelBody};
use crate::backend::sim::protocol::{Connection, Reply, Request};
use crate::cli::SimServerArgs;
use crate::loadgen::prompts;
use crate::workload::SimServer;

/// Longest real sleep between two looks at the GPU's progress, so that a change in the share of
/// SMs (a neighbour starting or going idle) is noticed within a step.
const MAX_WAIT: Duration = Duration::from_millis(20);
/// How far (simulated seconds) the engine may fall behind the simulated GPU before it says so.
const LAG_WARNING_S: f64 = 0.25;
/// The start of that warning in the server's log; the serving table carries the last one.
pub const LAG_WARNING: &str = "WARNING the simulated server fell behind the simulated clock";

/// `max_tokens` when a request gives none (the OpenAI completions default).
const DEFAULT_MAX_TOKENS: u32 = 16;

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
    if let Reply::Error { message } = gpu.ask(&Request::Hello {
        job: args.job,
        pid: std::process::id(),
    })? {
        eprintln!("migbench sim-server: {message}");
        return Ok(2);
    }
    // Loading computes little: leave the SMs to the neighbours until requests come.
    gpu.ask(&Request::Active { active: false })?;
    println!(
        "INFO simulated server for {}: device memory {:.2} GiB, memory fraction {}",
        args.model, args.device_gib, args.memory_fraction
    );
    if !allocate(&mut gpu, profile.weights_gib)? {
        return Ok(1);
    }
    println!("INFO model weights took {:.2} GiB", profile.weights_gib);
    // Like vLLM: weights, then the KV cache once memory is profiled (taken here as halfway
    // through start-up), then warm-up and CUDA-graph capture until ready.
    let half_startup = Duration::from_secs_f64(profile.startup_s / 2.0 / args.time_scale);
    std::thread::sleep(half_startup);
    let budget = args.memory_fraction * args.device_gib;
    let kv_gib = budget - profile.weights_gib;
    if kv_gib <= 0.0 {
        println!("INFO Available KV cache memory: {kv_gib:.2} GiB");
        eprintln!(
            "ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine."
        );
        return Ok(1);
    }
    if !allocate(&mut gpu, budget)? {
        return Ok(1);
    }
    std::thread::sleep(half_startup);
    let kv_tokens = (kv_gib * 1024.0 / profile.kv_mib_per_token) as u64;
    println!("INFO Available KV cache memory: {kv_gib:.2} GiB");
    println!("INFO GPU KV cache size: {kv_tokens} tokens");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind(SocketAddr::from((
        Ipv4Addr::LOCALHOST,
        args.port,
    ))))?;
    let (to_engine, from_http) = mpsc::channel();
    let engine = Engine::new(profile, kv_tokens);
    let time_scale = args.time_scale;
    std::thread::spawn(move || {
        if let Err(e) = run_engine(gpu, engine, &from_http, time_scale) {
            eprintln!("migbench sim-server: lost the simulated GPU: {e}");
            std::process::exit(2);
        }
    });
    let state = Arc::new(HttpState {
        model: args.model.clone(),
        capacity: kv_tokens,
        to_engine: std::sync::Mutex::new(to_engine),
        next_id: AtomicU64::new(1),
    });
    println!(
        "INFO Uvicorn running on http://127.0.0.1:{} (simulated)",
        args.port
    );
    runtime.block_on(http::serve(listener, move |request| {
        let state = Arc::clone(&state);
        async move { handle(&state, request).await }
    }));
    Ok(0)
}

/// Holds `gib` on the simulated GPU; on failure prints PyTorch's message and returns false.
fn allocate(gpu: &mut Connection, gib: f64) -> std::io::Result<bool> {
    match gpu.ask(&Request::Alloc { gib })? {
        Reply::Ok => Ok(true),
        Reply::Oom {
            requested_gib,
            capacity_gib,
            free_gib,
            in_use_gib,
        } => {
            crate::synth::print_torch_oom(requested_gib, capacity_gib, free_gib, in_use_gib);
            Ok(false)
        }
        other => Err(std::io::Error::other(format!("unexpected reply {other:?}"))),
    }
}

/// A request handed to the engine.
struct Submit {
    id: u64,
    prompt_tokens: u32,
    max_tokens: u32,
    stream: TokenStream,
}

/// How one response is written: OpenAI's chunk format for its endpoint. The JSON around a
/// token is made once per request; each token only fills in its word.
struct TokenStream {
    tx: BodySender,
    /// `data: {"id":...,"choices":[{"index":0,"text":` (or `"delta":{"content":`).
    head: String,
    /// What closes a token's chunk, without and with the finish reason.
    tail: &'static str,
    last_tail: &'static str,
    /// A chat stream's first chunk, with the role only.
    role: Option<String>,
    /// The usage chunk without its counts: `data: {...,"choices":[],"usage":`.
    usage_head: Option<String>,
    prompt_tokens: u32,
    generated: u32,
}

impl TokenStream {
    fn new(
        tx: BodySender,
        chat: bool,
        id: &str,
        model: &str,
        include_usage: bool,
        prompt_tokens: u32,
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
        let (head, tail, last_tail) = if chat {
            (
                format!("{common}[{{\"index\":0,\"delta\":{{\"content\":"),
                "},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
                "},\"logprobs\":null,\"finish_reason\":\"length\"}]}\n\n",
            )
        } else {
            (
                format!("{common}[{{\"index\":0,\"text\":"),
                ",\"logprobs\":null,\"finish_reason\":null,\"stop_reason\":null}]}\n\n",
                ",\"logprobs\":null,\"finish_reason\":\"length\",\"stop_reason\":null}]}\n\n",
            )
        };
        TokenStream {
            tx,
            role: chat.then(|| {
                format!("{common}[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n")
            }),
            usage_head: include_usage.then(|| format!("{common}[],\"usage\":")),
            head,
            tail,
            last_tail,
            prompt_tokens,
            generated: 0,
        }
    }

    /// Sends the next token, with the finish reason if it is the last; false if the client left.
    fn token(&mut self, last: bool) -> bool {
        let mut out = String::new();
        if let Some(role) = self.role.take() {
            out.push_str(&role);
        }
        // The words are plain lowercase ASCII: no JSON escaping needed.
        let word = prompts::word(self.generated as usize);
        self.generated += 1;
        let tail = if last { self.last_tail } else { self.tail };
        out.push_str(&format!("{}\" {word}\"{tail}", self.head));
        if last {
            if let Some(head) = &self.usage_head {
                let (p, n) = (self.prompt_tokens, self.generated);
                out.push_str(&format!(
                    "{head}{{\"prompt_tokens\":{p},\"completion_tokens\":{n},\"total_tokens\":{}}}}}\n\n",
                    p + n
                ));
            }
            out.push_str("data: [DONE]\n\n");
        }
        self.tx.send(Ok(Bytes::from(out))).is_ok()
    }
}

/// The engine thread: takes requests, runs steps, and lets each step take the simulated time
/// its work needs at the server's current speed.
fn run_engine(
    mut gpu: Connection,
    mut engine: Engine,
    requests: &mpsc::Receiver<Submit>,
    time_scale: f64,
) -> std::io::Result<()> {
    let mut streams: HashMap<u64, TokenStream> = HashMap::new();
    let mut active = false;
    // Work done by the GPU as last seen, the speed then, and where the last step ended.
    let (mut done, mut rate) = (0.0, 1.0_f64);
    let mut step_end: Option<f64> = None;
    let mut worst_lag = 0.0;
    loop {
        loop {
            let next = if engine.idle() {
                if active {
                    gpu.ask(&Request::Active { active: false })?;
                    active = false;
                    step_end = None;
                }
                match requests.recv() {
                    Ok(r) => r,
                    Err(_) => return Ok(()),
                }
            } else {
                match requests.try_recv() {
                    Ok(r) => r,
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => return Ok(()),
                }
            };
            // The HTTP side checked the request fits, so the engine takes it.
            if engine
                .submit(next.id, next.prompt_tokens, next.max_tokens)
                .is_ok()
            {
                streams.insert(next.id, next.stream);
            }
        }
        if !active {
            gpu.ask(&Request::Active { active: true })?;
            active = true;
        }
        let Some(step) = engine.step() else { continue };
        let start = match step_end {
            Some(end) => {
                // The GPU has done more work than the engine has stepped through: this machine
                // cannot keep up with the time scale, and token timings come out stretched.
                let lag = (done - end) / rate.max(1e-9);
                if lag > LAG_WARNING_S && lag > 2.0 * worst_lag {
                    worst_lag = lag;
                    println!(
                        "{LAG_WARNING} by {lag:.2} s: this machine is too slow for --time-scale {time_scale}; token timings are stretched (use a lower one)"
                    );
                }
                end
            }
            None => {
                (done, rate) = work(&mut gpu)?;
                done
            }
        };
        let target = start + step.cost_s;
        while done < target {
            let wait = (target - done) / (rate.max(1e-9) * time_scale);
            std::thread::sleep(Duration::from_secs_f64(wait).min(MAX_WAIT));
            (done, rate) = work(&mut gpu)?;
        }
        step_end = Some(target);
        for id in &step.tokens {
            let last = step.finished.contains(id);
            let gone = streams.get_mut(id).is_some_and(|s| !s.token(last));
            if gone {
                engine.cancel(*id);
                streams.remove(id);
            }
        }
        for id in &step.finished {
            streams.remove(id);
        }
    }
}

fn work(gpu: &mut Connection) -> std::io::Result<(f64, f64)> {
    match gpu.ask(&Request::Work)? {
        Reply::Work { done_s, rate } => Ok((done_s, rate)),
        other => Err(std::io::Error::other(format!("unexpected reply {other:?}"))),
    }
}

struct HttpState {
    model: String,
    capacity: u64,
    to_engine: std::sync::Mutex<mpsc::Sender<Submit>>,
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
            let body = http::read_body(request).await;
            match serde_json::from_slice::<Value>(&body) {
                Ok(body) => generate(state, chat, &body),
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

/// Checks a completion request and hands it to the engine; the response streams its tokens.
fn generate(state: &HttpState, chat: bool, body: &Value) -> hyper::Response<ChannelBody> {
    if body["model"].as_str() != Some(state.model.as_str()) {
        return http::json(
            StatusCode::NOT_FOUND,
            &json!({"object": "error", "message": format!("The model `{}` does not exist.", body["model"].as_str().unwrap_or_default()), "type": "NotFoundError", "code": 404}),
        );
    }
    if body["stream"].as_bool() != Some(true) {
        return bad_request("the simulated server only streams: send \"stream\": true");
    }
    // Prompt length: one token per word, as the load generator's synthetic prompts are made.
    let words = |v: &Value| v.as_str().map_or(0, |s| s.split_whitespace().count()) as u32;
    let prompt_tokens = if chat {
        body["messages"]
            .as_array()
            .map_or(0, |m| m.iter().map(|m| words(&m["content"])).sum())
    } else {
        words(&body["prompt"])
    };
    let max_tokens = body["max_completion_tokens"]
        .as_u64()
        .or(body["max_tokens"].as_u64())
        .map_or(DEFAULT_MAX_TOKENS, |n| n as u32);
    let wanted = u64::from(prompt_tokens.max(1)) + u64::from(max_tokens.max(1));
    if wanted > state.capacity {
        return bad_request(&format!(
            "This model's maximum context length is {} tokens. However, you requested {wanted} tokens. Please reduce the length of the messages or completion.",
            state.capacity
        ));
    }
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    let (tx, response) = http::event_stream();
    let stream = TokenStream::new(
        tx,
        chat,
        &format!("{}-{id}", if chat { "chatcmpl" } else { "cmpl" }),
        &state.model,
        body["stream_options"]["include_usage"].as_bool() == Some(true),
        prompt_tokens,
    );
    let sent = state
        .to_engine
        .lock()
        .map(|tx| {
            tx.send(Submit {
                id,
                prompt_tokens,
                max_tokens,
                stream,
            })
            .is_ok()
        })
        .unwrap_or(false);
    if !sent {
        return http::json(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"object": "error", "message": "the engine has stopped", "code": 503}),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::openai::{parse_chunk, Usage};
    use crate::loadgen::sse::SseParser;
    use crate::loadgen::Endpoint;

    /// Everything a stream of `tokens` tokens sends, as the load generator reads it.
    fn stream(chat: bool, tokens: u32) -> Vec<String> {
        let (tx, mut body) = ChannelBody::channel();
        let mut s = TokenStream::new(tx, chat, "x-1", "Qwen/Qwen3-4B", true, 5);
        for k in 0..tokens {
            assert!(s.token(k + 1 == tokens));
        }
        drop(s);
        let mut parser = SseParser::default();
        let mut events = Vec::new();
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        while let std::task::Poll::Ready(Some(Ok(frame))) =
            http_body::Body::poll_frame(std::pin::Pin::new(&mut body), &mut cx)
        {
            events.extend(parser.feed(&frame.into_data().unwrap()));
        }
        events
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
}
