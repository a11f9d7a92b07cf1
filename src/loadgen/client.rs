//! One streaming request, timed: when it was sent, when each chunk of text came, when it ended.
//!
//! Against a real server the times are read off the monotonic clock as chunks arrive. Against
//! the simulated server they are the simulated instants the server stamped on its events, and
//! the end of the stream is answered ([`crate::clock::Clock::unhold`]) once it has been read.

use std::time::Duration;

use super::openai::{self, Usage};
use super::prompts::Prompt;
use super::spec::Endpoint;
use super::sse::STAMPED_CLIENT;
use super::sse::{SseEvent, SseParser};
use super::{RequestRecord, TokenCount};
use crate::clock::{Clock, Hold};

/// What one request needs to go out (owned, so that it can be sent from a task of its own).
#[derive(Clone)]
pub struct Call {
    pub client: reqwest::Client,
    pub url: String,
    pub endpoint: Endpoint,
    pub model: String,
    pub prompt: Prompt,
    pub ignore_eos: bool,
    /// A request not complete this long after it was sent has failed.
    pub timeout_s: f64,
    pub clock: Clock,
    /// The simulated server's job (see [`super::Target::hold_owner`]).
    pub hold_owner: u64,
    /// Times are recorded as seconds after this instant of `clock`.
    pub origin: f64,
    /// When it is sent, on `clock`.
    pub sent_s: f64,
    /// When the arrival process had it due.
    pub due_s: f64,
    pub index: u32,
    pub warmup: bool,
}

/// What the stream showed so far; kept outside the request future so that a request cut off by
/// its timeout still reports how far it got. Times on the clock.
#[derive(Default)]
struct Seen {
    first: Option<f64>,
    last: Option<f64>,
    itls: Vec<f64>,
    chunks: u32,
    usage: Option<Usage>,
    /// When `[DONE]` came.
    done: Option<f64>,
}

/// Sends `call` and waits for its stream to end; any failure becomes the record's `error`.
/// `hold` keeps the simulated clock still until the server has answered with its headers. The
/// second value says whether a simulated stream's end was read: the caller answers it
/// ([`Clock::unhold`]) once it has acted on it.
pub async fn send(call: Call, hold: Hold) -> (RequestRecord, bool) {
    let simulated = call.clock.simulated();
    let mut seen = Seen::default();
    let body = openai::request_body(call.endpoint, &call.model, &call.prompt, call.ignore_eos);
    let streaming = stream(&call, &body, &mut seen, hold);
    let mut result = if simulated {
        // Simulated time does not pass while a task waits: the timeout is judged on the stamps.
        streaming.await
    } else {
        let real = Duration::from_secs_f64(call.timeout_s.clamp(0.0, 1e9));
        tokio::time::timeout(real, streaming)
            .await
            .unwrap_or_else(|_| Err(timed_out(call.timeout_s)))
    };
    let stream_end_read = simulated && seen.done.is_some();
    if simulated {
        cut_at_timeout(&mut seen, call.sent_s, call.timeout_s, &mut result);
    }
    let end = seen.done.unwrap_or_else(|| call.clock.now());
    let result = result.and_then(|()| match seen.first {
        Some(_) => Ok(()),
        None => Err("the stream ended without any generated text".into()),
    });
    // Token counts: the server's `usage` when it sends one (asked for with
    // stream_options.include_usage); else one token per chunk of text, as servers stream by default.
    let (input_tokens, output_tokens, tokens_from) = match seen.usage {
        Some(u) => (u.prompt_tokens, u.completion_tokens, TokenCount::Usage),
        None => (call.prompt.input_tokens, seen.chunks, TokenCount::Chunks),
    };
    let record = RequestRecord {
        index: call.index,
        warmup: call.warmup,
        sent_s: call.sent_s - call.origin,
        due_s: call.due_s - call.origin,
        ttft_s: seen.first.map(|t| t - call.sent_s),
        itls_s: seen.itls,
        latency_s: result.is_ok().then_some(end - call.sent_s),
        input_tokens,
        output_tokens,
        tokens_from,
        error: result.err(),
    };
    (record, stream_end_read)
}

fn timed_out(timeout_s: f64) -> String {
    format!("no complete response after {timeout_s:.1} s")
}

/// What a client that gave up `timeout_s` after `sent_s` would have seen of a simulated
/// stream. (The simulated server went on generating for it: a real client would have hung up.)
fn cut_at_timeout(seen: &mut Seen, sent_s: f64, timeout_s: f64, result: &mut Result<(), String>) {
    let deadline = sent_s + timeout_s;
    if seen.done.is_none_or(|d| d <= deadline) {
        return;
    }
    if seen.first.is_some_and(|t| t > deadline) {
        *seen = Seen::default();
    } else if let Some(first) = seen.first {
        // Keep the chunks up to the deadline.
        let mut t = first;
        let mut kept = 0;
        for &gap in &seen.itls {
            if t + gap > deadline {
                break;
            }
            t += gap;
            kept += 1;
        }
        seen.itls.truncate(kept);
        seen.chunks = kept as u32 + 1;
        seen.last = Some(t);
        seen.usage = None;
    }
    seen.done = None;
    *result = Err(timed_out(timeout_s));
}

async fn stream(
    call: &Call,
    body: &serde_json::Value,
    seen: &mut Seen,
    hold: Hold,
) -> Result<(), String> {
    let mut request = call
        .client
        .post(&call.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    if call.clock.simulated() {
        request = request.header(STAMPED_CLIENT, call.index.to_string());
    }
    let response = request.body(body.to_string()).send().await;
    // The server has the request (or never will): the clock may move on.
    drop(hold);
    let mut response = response.map_err(|e| format!("request failed: {}", error_chain(&e)))?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        return Err(format!("HTTP {status}: {}", openai::shorten(text.trim())));
    }
    let mut parser = SseParser::default();
    loop {
        let bytes = response
            .chunk()
            .await
            .map_err(|e| format!("the stream broke: {}", error_chain(&e)))?;
        let Some(bytes) = bytes else {
            return Err("the stream ended before data: [DONE]".into());
        };
        let arrived = call.clock.now();
        for SseEvent { data, stamp } in parser.feed(&bytes) {
            let at = if call.clock.simulated() {
                stamp.ok_or("the simulated server sent an event without its simulated instant")?
            } else {
                arrived
            };
            if data == "[DONE]" {
                seen.done = Some(at);
                return Ok(());
            }
            let chunk = openai::parse_chunk(call.endpoint, &data)?;
            if !chunk.text.is_empty() {
                if let Some(last) = seen.last {
                    seen.itls.push(at - last);
                }
                seen.first.get_or_insert(at);
                seen.last = Some(at);
                seen.chunks += 1;
            }
            if chunk.usage.is_some() {
                seen.usage = chunk.usage;
            }
        }
    }
}

/// An error with its causes: reqwest's own message alone rarely says what went wrong.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
