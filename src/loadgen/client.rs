//! One streaming request, timed: when it was sent, when each chunk of text came, when it ended.

use std::time::{Duration, Instant};

use super::openai::{self, Usage};
use super::prompts::Prompt;
use super::spec::Endpoint;
use super::sse::SseParser;
use super::{Clock, RequestRecord, TokenCount};

/// What one request needs to go out (owned, so that it can be sent from a task of its own).
#[derive(Clone)]
pub struct Call {
    pub client: reqwest::Client,
    pub url: String,
    pub endpoint: Endpoint,
    pub model: String,
    pub prompt: Prompt,
    pub ignore_eos: bool,
    pub timeout: Duration,
    pub clock: Clock,
    pub index: u32,
    pub warmup: bool,
}

/// What the stream showed so far; kept outside the request future so that a request cut off by
/// its timeout still reports how far it got.
#[derive(Default)]
struct Seen {
    first: Option<Instant>,
    last: Option<Instant>,
    itls: Vec<Duration>,
    chunks: u32,
    usage: Option<Usage>,
}

/// Sends `call` and waits for its stream to end; any failure becomes the record's `error`.
pub async fn send(call: Call) -> RequestRecord {
    let sent_s = call.clock.now();
    let sent = Instant::now();
    let mut seen = Seen::default();
    let body = openai::request_body(call.endpoint, &call.model, &call.prompt, call.ignore_eos);
    let result = tokio::time::timeout(
        call.timeout,
        stream(&call.client, &call.url, call.endpoint, &body, &mut seen),
    )
    .await
    .unwrap_or_else(|_| {
        Err(format!(
            "no complete response after {:.1} s",
            call.clock.span(call.timeout)
        ))
    });
    let end = Instant::now();
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
    let clock = call.clock;
    RequestRecord {
        index: call.index,
        warmup: call.warmup,
        sent_s,
        ttft_s: seen.first.map(|t| clock.span(t - sent)),
        itls_s: seen.itls.iter().map(|&d| clock.span(d)).collect(),
        latency_s: result.is_ok().then(|| clock.span(end - sent)),
        input_tokens,
        output_tokens,
        tokens_from,
        error: result.err(),
    }
}

async fn stream(
    client: &reqwest::Client,
    url: &str,
    endpoint: Endpoint,
    body: &serde_json::Value,
    seen: &mut Seen,
) -> Result<(), String> {
    let mut response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("request failed: {}", error_chain(&e)))?;
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
        let now = Instant::now();
        for data in parser.feed(&bytes) {
            if data == "[DONE]" {
                return Ok(());
            }
            let chunk = openai::parse_chunk(endpoint, &data)?;
            if !chunk.text.is_empty() {
                if let Some(last) = seen.last {
                    seen.itls.push(now - last);
                }
                seen.first.get_or_insert(now);
                seen.last = Some(now);
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
