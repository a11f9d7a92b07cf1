//! The OpenAI-compatible wire format: request bodies, and what one streamed chunk carries.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{json, Value};

use super::prompts::Prompt;
use super::spec::Endpoint;

/// The JSON body of a streaming request. `stream_options.include_usage` asks the server for a
/// last chunk with its token counts (vLLM and OpenAI both honour it).
pub fn request_body(endpoint: Endpoint, model: &str, prompt: &Prompt, ignore_eos: bool) -> Value {
    let mut body = match endpoint {
        Endpoint::Completions => json!({
            "model": model,
            "prompt": prompt.text,
            "max_tokens": prompt.output_tokens,
        }),
        Endpoint::Chat => json!({
            "model": model,
            "messages": [{ "role": "user", "content": prompt.text }],
            "max_completion_tokens": prompt.output_tokens,
        }),
    };
    body["stream"] = json!(true);
    body["stream_options"] = json!({ "include_usage": true });
    if ignore_eos {
        body["ignore_eos"] = json!(true);
    }
    body
}

/// What one `data:` event of a stream carries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chunk {
    /// Generated text in this chunk (may be empty: a chat stream's first chunk has only the role).
    pub text: String,
    /// Token counts, in the chunk that carries `usage`.
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

/// One streamed chunk as servers write it; every field optional, unknown fields ignored.
/// Borrowed strings: this runs for every token, so it avoids building a `serde_json::Value`.
#[derive(Deserialize)]
struct ChunkJson<'a> {
    #[serde(default, borrow)]
    choices: Vec<ChoiceJson<'a>>,
    #[serde(default)]
    usage: Option<UsageJson>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default, borrow)]
    object: Option<Cow<'a, str>>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct ChoiceJson<'a> {
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    delta: Option<DeltaJson<'a>>,
}

#[derive(Deserialize)]
struct DeltaJson<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct UsageJson {
    #[serde(default)]
    prompt_tokens: u32,
    #[serde(default)]
    completion_tokens: u32,
}

/// Reads one event's data (not `[DONE]`); an error object, or data that is not a chunk, is an
/// error.
pub fn parse_chunk(endpoint: Endpoint, data: &str) -> Result<Chunk, String> {
    let v: ChunkJson = serde_json::from_str(data)
        .map_err(|e| format!("bad stream chunk ({e}): {}", shorten(data)))?;
    if let Some(error) = v.error {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string);
        return Err(format!(
            "error in stream: {}",
            message.unwrap_or_else(|| error.to_string())
        ));
    }
    if v.object.as_deref() == Some("error") {
        return Err(format!(
            "error in stream: {}",
            v.message.unwrap_or_default()
        ));
    }
    let text = v.choices.into_iter().next().and_then(|c| match endpoint {
        Endpoint::Completions => c.text,
        // Reasoning models (Qwen3 with a reasoning parser) stream their thinking apart.
        Endpoint::Chat => c
            .delta
            .and_then(|d| d.content.filter(|t| !t.is_empty()).or(d.reasoning_content)),
    });
    Ok(Chunk {
        text: text.map(Cow::into_owned).unwrap_or_default(),
        usage: v.usage.map(|u| Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
        }),
    })
}

/// At most 200 characters of `s`, for messages.
pub fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(200).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_and_chat_chunks_yield_their_text_and_usage() {
        let c = parse_chunk(
            Endpoint::Completions,
            r#"{"id":"x","object":"text_completion","choices":[{"index":0,"text":" hi","finish_reason":null}]}"#,
        )
        .unwrap();
        assert_eq!((c.text.as_str(), c.usage), (" hi", None));
        let role_only = parse_chunk(
            Endpoint::Chat,
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
        )
        .unwrap();
        assert_eq!(role_only.text, "");
        let c = parse_chunk(
            Endpoint::Chat,
            r#"{"choices":[{"delta":{"content":"yo"}}]}"#,
        )
        .unwrap();
        assert_eq!(c.text, "yo");
        let thinking = parse_chunk(
            Endpoint::Chat,
            r#"{"choices":[{"delta":{"reasoning_content":"hm"}}]}"#,
        )
        .unwrap();
        assert_eq!(thinking.text, "hm");
        let u = parse_chunk(
            Endpoint::Chat,
            r#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42}}"#,
        )
        .unwrap();
        assert_eq!(
            u.usage,
            Some(Usage {
                prompt_tokens: 12,
                completion_tokens: 30
            })
        );
    }

    #[test]
    fn error_objects_and_garbage_are_errors() {
        let e = parse_chunk(
            Endpoint::Completions,
            r#"{"error":{"message":"boom","code":500}}"#,
        );
        assert_eq!(e.unwrap_err(), "error in stream: boom");
        let e = parse_chunk(Endpoint::Chat, r#"{"object":"error","message":"too long"}"#);
        assert_eq!(e.unwrap_err(), "error in stream: too long");
        assert!(parse_chunk(Endpoint::Chat, "not json")
            .unwrap_err()
            .starts_with("bad stream chunk"));
    }

    #[test]
    fn bodies_stream_with_usage_and_ask_for_the_output_length() {
        let p = Prompt {
            text: "a b".into(),
            input_tokens: 2,
            output_tokens: 9,
        };
        let b = request_body(Endpoint::Completions, "m", &p, true);
        assert_eq!(b["prompt"], "a b");
        assert_eq!(b["max_tokens"], 9);
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["ignore_eos"], true);
        let b = request_body(Endpoint::Chat, "m", &p, false);
        assert_eq!(b["messages"][0]["content"], "a b");
        assert_eq!(b["max_completion_tokens"], 9);
        assert!(b.get("ignore_eos").is_none());
    }
}
