//! Waiting for a server to be ready: each readiness path in turn must answer 200 (vLLM's
//! `/health`, then `/v1/models`), within a timeout. The checker is an actor on the run's clock:
//! on the simulator it polls at simulated instants, so a server is found ready at the same
//! simulated moment in every run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::clock::{Actor, Wake};

/// Seconds (on the run's clock) between two polls: real ones on hardware, simulated ones on
/// the simulator (where a poll costs a connection attempt, not a wait).
const POLL_S: f64 = 0.02;
const SIM_POLL_S: f64 = 0.1;
/// Longest real wait for one answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// Polls `paths` of `base_url` in turn until each answers 200. Returns the first model that
/// `/v1/models` lists, if it was polled; an error says why the server is not ready after
/// `timeout_s` seconds on `actor`'s clock, or once `cancel` is raised (the checker is poked
/// then). Returns in `actor`'s turn.
pub fn wait_ready(
    base_url: &str,
    paths: &[String],
    timeout_s: f64,
    cancel: &AtomicBool,
    actor: &Actor,
) -> Result<Option<String>, String> {
    let start = actor.turn();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let poll = if actor.clock().simulated() {
        SIM_POLL_S
    } else {
        POLL_S
    };
    let deadline = start + timeout_s;
    let mut model = None;
    for path in paths {
        let url = format!("{base_url}{path}");
        let mut last = String::from("no answer yet");
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(format!("stopped while waiting for {path}: {last}"));
            }
            let now = actor.clock().now();
            if now >= deadline {
                return Err(format!("{path} did not answer 200 in time: {last}"));
            }
            let answer = runtime.block_on(async {
                let response = client.get(&url).timeout(ANSWER_TIMEOUT).send().await?;
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                Ok::<_, reqwest::Error>((status, text))
            });
            match answer {
                Ok((status, text)) if status.is_success() => {
                    if path == "/v1/models" {
                        model = first_model(&text);
                    }
                    break;
                }
                Ok((status, _)) => last = format!("HTTP {status}"),
                Err(e) => {
                    last = if e.is_connect() {
                        "connection refused".into()
                    } else {
                        e.to_string()
                    }
                }
            }
            actor.sleep(Wake::At((now + poll).min(deadline)));
        }
    }
    Ok(model)
}

/// The `id` of the first model in a `/v1/models` answer.
fn first_model(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v["data"][0]["id"].as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_listed_model_is_taken() {
        let body =
            r#"{"object":"list","data":[{"id":"Qwen/Qwen3-4B","object":"model"},{"id":"x"}]}"#;
        assert_eq!(first_model(body).as_deref(), Some("Qwen/Qwen3-4B"));
        assert_eq!(first_model(r#"{"data":[]}"#), None);
    }

    #[test]
    fn a_port_nobody_listens_on_is_not_ready_within_the_timeout() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let started = std::time::Instant::now();
        let clock = crate::clock::Clock::wall();
        let err = wait_ready(
            &format!("http://127.0.0.1:{port}"),
            &["/health".into()],
            0.15,
            &AtomicBool::new(false),
            &clock.actor("test"),
        )
        .unwrap_err();
        assert!(
            err.starts_with("/health did not answer 200 in time"),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
