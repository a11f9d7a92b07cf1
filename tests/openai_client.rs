//! The simulated server against the official `openai` Python client: streaming chat and
//! completions with usage and `[DONE]`, and whole (non-streaming) replies, with the finish
//! reason vLLM gives (`length` at `max_tokens`, `stop` when the reply ends by itself).
//!
//! Needs python3 with the `openai` package (`.ci/run` installs it). Without it the test says so
//! and passes, unless `MIGBENCH_REQUIRE_OPENAI` is set, as CI sets it.

use std::path::PathBuf;
use std::process::{Child, Command};

use migbench::backend::sim::SimBackend;
use migbench::backend::{Backend, JobRequest};
use migbench::catalog::Catalog;
use migbench::scenario::Scenario;

const CLIENT: &str = r#"
import sys
from openai import OpenAI

client = OpenAI(base_url=sys.argv[1] + "/v1", api_key="none", max_retries=0)
model = client.models.list().data[0].id
messages = [{"role": "user", "content": "one two three four"}]

# Streaming chat with usage: text, then the usage chunk; the client handles [DONE].
chunks = list(client.chat.completions.create(
    model=model, messages=messages, max_tokens=5, stream=True,
    stream_options={"include_usage": True}))
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
usage = chunks[-1].usage
assert text.strip() and finish == ["length"], (text, finish)
assert usage.completion_tokens == 5 and usage.prompt_tokens == 4, usage

# Streaming completions.
chunks = list(client.completions.create(
    model=model, prompt="one two", max_tokens=3, stream=True,
    stream_options={"include_usage": True}))
text = "".join(c.choices[0].text for c in chunks if c.choices)
assert len(text.split()) == 3, text
assert chunks[-1].usage.completion_tokens == 3

# Whole replies: a chat reply without a limit ends by itself ("stop"); with one it stops there.
reply = client.chat.completions.create(model=model, messages=messages)
assert reply.choices[0].finish_reason == "stop", reply
assert reply.choices[0].message.content.strip() and reply.usage.completion_tokens > 0
reply = client.completions.create(model=model, prompt="one", max_tokens=4)
assert reply.choices[0].finish_reason == "length" and len(reply.choices[0].text.split()) == 4
assert reply.usage.completion_tokens == 4
print("OK")
"#;

fn openai_available() -> bool {
    Command::new("python3")
        .args(["-c", "import openai"])
        .status()
        .is_ok_and(|s| s.success())
}

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_openai_python_client_reads_the_simulated_server() {
    if !openai_available() {
        assert!(
            std::env::var_os("MIGBENCH_REQUIRE_OPENAI").is_none(),
            "python3 with the openai package is required (pip install openai)"
        );
        eprintln!("skipped: python3 with the openai package is not installed");
        return;
    }
    // A simulated A100 with one Qwen3-4B server, as `migbench run` would start it.
    let scenario = Scenario::load(std::path::Path::new("scenarios/a100-qwen3.toml")).unwrap();
    let workload = scenario
        .job_workload(&scenario.file.variants[0].jobs[0])
        .unwrap();
    let gpu = Catalog::builtin().gpu("a100-80gb").unwrap();
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_migbench"));
    let backend = SimBackend::start(gpu, None, exe).unwrap();
    let devices = backend.devices().unwrap();
    let launch = backend
        .launch(&JobRequest {
            id: 1,
            workload: &workload,
            device: &devices[0],
        })
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let argv: Vec<String> = launch
        .argv
        .iter()
        .map(|a| a.replace("{port}", &port))
        .collect();
    let _server = Server(
        Command::new(&argv[0])
            .args(&argv[1..])
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Its start-up takes simulated time only: it listens within moments.
    let url = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the server never listened"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = Command::new("python3")
        .args(["-c", CLIENT, &url])
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "OK",
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
