//! Waiting for a server to be ready: each readiness path in turn must answer 200 (vLLM's
//! `/health`, then `/v1/models`), within a timeout.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Real time between two polls.
const POLL: Duration = Duration::from_millis(20);

/// Polls `paths` of `base_url` in turn until each answers 200. Returns the first model that
/// `/v1/models` lists, if it was polled; an error says why the server is not ready after
/// `timeout` (real time) or once `cancel` is raised.
pub fn wait_ready(
    base_url: &str,
    paths: &[String],
    timeout: Duration,
    cancel: &AtomicBool,
) -> Result<Option<String>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + timeout;
        let mut model = None;
        for path in paths {
            let url = format!("{base_url}{path}");
            let mut last = String::from("no answer yet");
            loop {
                if cancel.load(Ordering::Relaxed) {
                    return Err(format!("stopped while waiting for {path}: {last}"));
                }
                if Instant::now() >= deadline {
                    return Err(format!("{path} did not answer 200 in time: {last}"));
                }
                match client.get(&url).timeout(POLL * 10).send().await {
                    Ok(response) if response.status().is_success() => {
                        let text = response.text().await.unwrap_or_default();
                        if path == "/v1/models" {
                            model = first_model(&text);
                        }
                        break;
                    }
                    Ok(response) => last = format!("HTTP {}", response.status()),
                    Err(e) => {
                        last = if e.is_connect() {
                            "connection refused".into()
                        } else {
                            e.to_string()
                        }
                    }
                }
                tokio::time::sleep(POLL).await;
            }
        }
        Ok(model)
    })
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
        let started = Instant::now();
        let err = wait_ready(
            &format!("http://127.0.0.1:{port}"),
            &["/health".into()],
            Duration::from_millis(150),
            &AtomicBool::new(false),
        )
        .unwrap_err();
        assert!(
            err.starts_with("/health did not answer 200 in time"),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
