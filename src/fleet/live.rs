//! `migbench run --metrics-listen ADDR`: the run's figures on `/metrics` while it runs, for a
//! Prometheus to scrape beside dcgm-exporter.
//!
//! The run feeds a [`Live`] from two places it already has: its event log (variant and job starts
//! and ends, [`Live::event`]) and its VRAM samples ([`Live::sample`]), each on the run's clock —
//! simulated time under `--sim`, so a scrape sees the simulated GPU as it stood at the last
//! simulated instant sampled. A scrape encodes what the last ones said: in the OpenMetrics text
//! format when the scraper asks for it (Prometheus does), else in the Prometheus text format.
//!
//! Names follow Prometheus' conventions (`migbench_` prefix, base units, `_bytes`, `_seconds`,
//! `_total` on counters) and memory series carry dcgm-exporter's labels where they apply (`gpu`:
//! the GPU's index, `UUID`: the GPU's UUID, also for a MIG instance on it, as dcgm-exporter does;
//! `GPU_I_PROFILE`: the MIG profile), so that one Grafana query can put them beside
//! `DCGM_FI_DEV_FB_USED`. migbench does not track a MIG instance's GPU-instance ID, so instead of
//! `GPU_I_ID` an instance is named by its placement (`mig_instance="3g.40gb@4"`: profile and
//! first memory slice) and its device UUID (`mig_uuid`). A job is `job_index` (its number in the
//! variant) and the MIG instance `mig_instance`, as `job` and `instance` are the labels Prometheus
//! gives every scraped series.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use prometheus_client::registry::Unit;

use super::exposition::{self, Exposition, GIB};
use crate::backend::{SampleRow, Scope};
use crate::clock::lock;
use crate::error::{Error, Result};

/// What the run said last, for the next scrape.
#[derive(Debug)]
pub struct Live {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    gpu_index: u32,
    gpu_uuid: String,
    gpu_model: String,
    simulated: bool,
    /// Jobs the scenario plans over every variant and repetition.
    planned: u64,
    /// The run's clock, seconds since its start.
    t: f64,
    /// The variant running now: name, repetition, mode.
    variant: Option<(String, String, String)>,
    /// Running jobs by the PID they were started as.
    running: BTreeMap<String, RunningJob>,
    /// Finished jobs by variant and outcome.
    finished: BTreeMap<(String, String), u64>,
    /// The last sample's rows.
    rows: Vec<SampleRow>,
    /// MIG device UUID → placement label (`3g.40gb@4`), from job starts and instance rows.
    instances: HashMap<String, String>,
}

#[derive(Debug)]
struct RunningJob {
    variant: String,
    repetition: String,
    job: String,
    workload: String,
    device: String,
    instance: String,
}

impl Live {
    /// The GPU the run uses (its index for dcgm's `gpu` label) and how many jobs it plans.
    pub fn new(
        gpu_index: u32,
        gpu_uuid: &str,
        gpu_model: &str,
        simulated: bool,
        planned: u64,
    ) -> Live {
        Live {
            state: Mutex::new(State {
                gpu_index,
                gpu_uuid: gpu_uuid.to_string(),
                gpu_model: gpu_model.to_string(),
                simulated,
                planned,
                ..State::default()
            }),
        }
    }

    /// One event of the run's log, as [`crate::results::RunDir::event`] writes it.
    pub fn event(&self, t: f64, kind: &str, fields: &serde_json::Value) {
        let text = |k: &str| match &fields[k] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        };
        let mut s = lock(&self.state);
        s.t = s.t.max(t);
        match kind {
            "variant_start" => {
                s.variant = Some((text("variant"), text("repetition"), text("mode")));
            }
            "variant_end" | "variant_infeasible" | "variant_setup_failed" => s.variant = None,
            "job_start" => {
                let job = RunningJob {
                    variant: text("variant"),
                    repetition: text("repetition"),
                    job: text("job"),
                    workload: text("workload"),
                    device: text("device"),
                    instance: text("instance"),
                };
                if job.device != s.gpu_uuid {
                    s.instances.insert(job.device.clone(), job.instance.clone());
                }
                s.running.insert(text("pid"), job);
            }
            "job_end" => {
                s.running.remove(&text("pid"));
                *s.finished
                    .entry((text("variant"), text("outcome")))
                    .or_default() += 1;
            }
            _ => {}
        }
    }

    /// One VRAM sample at `t`, seconds on the run's clock.
    pub fn sample(&self, t: f64, rows: &[SampleRow]) {
        let mut s = lock(&self.state);
        s.t = s.t.max(t);
        for r in rows.iter().filter(|r| r.scope == Scope::Instance) {
            s.instances.insert(r.id.clone(), r.label.clone());
        }
        s.rows = rows.to_vec();
    }

    /// The exposition a scrape gets now.
    pub fn encode(&self) -> Result<String> {
        let s = lock(&self.state);
        let mut e = Exposition::default();
        let gpu_used = e.gauge(
            "migbench_gpu_memory_used",
            "Memory in use on the whole GPU",
            Some(Unit::Bytes),
        );
        let gpu_total = e.gauge(
            "migbench_gpu_memory_total",
            "Memory of the whole GPU",
            Some(Unit::Bytes),
        );
        // DCGM_FI_DEV_POWER_USAGE's figure, in its unit.
        let gpu_power = e.gauge(
            "migbench_gpu_power_usage",
            "Power the whole GPU draws (NVML's nvmlDeviceGetPowerUsage; the simulator's power model under --sim)",
            Some(Unit::Other("watts".into())),
        );
        let mig_used = e.gauge(
            "migbench_mig_instance_memory_used",
            "Memory in use in a MIG GPU instance (its CIs share it)",
            Some(Unit::Bytes),
        );
        let mig_total = e.gauge(
            "migbench_mig_instance_memory_total",
            "Memory of a MIG GPU instance: the size a job placed there can use",
            Some(Unit::Bytes),
        );
        let job_used = e.gauge(
            "migbench_job_memory_used",
            "Memory in use by a running job (all processes of its process group)",
            Some(Unit::Bytes),
        );
        let jobs = e.gauge(
            "migbench_jobs",
            "Jobs of the run by state: planned, running, finished",
            None,
        );
        let finished = e.counter(
            "migbench_jobs_finished",
            "Jobs that ended, by variant and outcome (ok, oom, failed, timeout, ...)",
        );
        let progress = e.gauge(
            "migbench_run_progress_ratio",
            "Jobs finished of the jobs the scenario plans, 0 to 1",
            None,
        );
        let clock = e.gauge(
            "migbench_run_clock",
            "The run's clock since it started: simulated seconds under --sim",
            Some(Unit::Seconds),
        );
        let variant = e.gauge(
            "migbench_variant_running",
            "1 for the variant that runs now",
            None,
        );

        let index = s.gpu_index.to_string();
        let gpu = [
            ("gpu", index.as_str()),
            ("UUID", s.gpu_uuid.as_str()),
            ("model_name", s.gpu_model.as_str()),
        ];
        // The placement label of a device, and its profile (`3g.40gb` of `3g.40gb@4/1c...`).
        let mig = |device: &str| -> Option<(String, String)> {
            let label = s.instances.get(device)?;
            let pool = label.split('/').next().unwrap_or(label);
            let profile = pool.split('@').next().unwrap_or(pool);
            Some((label.clone(), profile.to_string()))
        };
        let mut by_job: HashMap<String, f64> = HashMap::new();
        for r in &s.rows {
            match r.scope {
                Scope::Gpu => {
                    exposition::set(&gpu_used, &gpu, r.used_gib * GIB);
                    if let Some(w) = r.power_w {
                        exposition::set(&gpu_power, &gpu, w);
                    }
                    if let Some(c) = r.capacity_gib {
                        exposition::set(&gpu_total, &gpu, c * GIB);
                    }
                }
                Scope::Instance => {
                    let (label, profile) =
                        mig(&r.id).unwrap_or_else(|| (r.label.clone(), r.label.clone()));
                    let labels = [
                        gpu[0],
                        gpu[1],
                        ("GPU_I_PROFILE", profile.as_str()),
                        ("mig_instance", label.as_str()),
                        ("mig_uuid", r.id.as_str()),
                    ];
                    exposition::set(&mig_used, &labels, r.used_gib * GIB);
                    if let Some(c) = r.capacity_gib {
                        exposition::set(&mig_total, &labels, c * GIB);
                    }
                }
                Scope::Process => *by_job.entry(r.job_key()).or_default() += r.used_gib,
            }
        }
        for (pid, j) in &s.running {
            let used = by_job.get(pid).copied().unwrap_or(0.0);
            let (label, profile) = mig(&j.device).unwrap_or_else(|| ("GPU".into(), String::new()));
            let mut labels = vec![gpu[0], gpu[1]];
            if !profile.is_empty() {
                labels.push(("GPU_I_PROFILE", profile.as_str()));
                labels.push(("mig_uuid", j.device.as_str()));
            }
            labels.extend([
                ("mig_instance", label.as_str()),
                ("variant", j.variant.as_str()),
                ("repetition", j.repetition.as_str()),
                ("job_index", j.job.as_str()),
                ("workload", j.workload.as_str()),
                ("pid", pid.as_str()),
            ]);
            exposition::set(&job_used, &labels, used * GIB);
        }
        let done: u64 = s.finished.values().sum();
        for (state, n) in [
            ("planned", s.planned),
            ("running", s.running.len() as u64),
            ("finished", done),
        ] {
            exposition::set(&jobs, &[("state", state)], n as f64);
        }
        for ((v, outcome), n) in &s.finished {
            finished
                .get_or_create(&exposition::owned(&[("variant", v), ("outcome", outcome)]))
                .inc_by(*n as f64);
        }
        if s.planned > 0 {
            exposition::set(&progress, &[], done as f64 / s.planned as f64);
        }
        let how = if s.simulated {
            "simulated"
        } else {
            "monotonic"
        };
        exposition::set(&clock, &[("clock", how)], s.t);
        if let Some((name, rep, mode)) = &s.variant {
            let labels = [
                ("variant", name.as_str()),
                ("repetition", rep),
                ("mode", mode),
            ];
            exposition::set(&variant, &labels, 1.0);
        }
        drop(s);
        e.encode()
    }
}

/// What the `/metrics` endpoint keeps open (docs/fleet.md): a few scrapers at once, each with
/// time to spare at a scrape interval of seconds; a connection past these is closed.
pub const LIMITS: crate::http::Limits = crate::http::Limits {
    connections: 32,
    header_timeout: std::time::Duration::from_secs(5),
    lifetime: std::time::Duration::from_secs(60),
};

/// The `/metrics` server of one run: serves from its own thread until dropped.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<futures_util::future::AbortHandle>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Binds `addr` (`127.0.0.1:9400`) now, so that a bad or busy address fails before the run.
    pub fn start(addr: &str, live: Arc<Live>) -> Result<Server> {
        let parsed: SocketAddr = addr.parse().map_err(|e| {
            Error::Input(format!(
                "--metrics-listen {addr}: not an address ({e}); expected IP:PORT such as 127.0.0.1:9400"
            ))
        })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Harness(format!("cannot start the metrics server: {e}")))?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(parsed))
            .map_err(|e| Error::Input(format!("--metrics-listen {addr}: cannot listen: {e}")))?;
        let bound = listener
            .local_addr()
            .map_err(|e| Error::Harness(format!("--metrics-listen {addr}: {e}")))?;
        let serve = crate::http::serve_within(
            listener,
            move |request| {
                let live = Arc::clone(&live);
                let openmetrics =
                    request
                        .headers()
                        .get_all(hyper::header::ACCEPT)
                        .iter()
                        .any(|v| {
                            v.to_str()
                                .is_ok_and(|v| v.contains("application/openmetrics-text"))
                        });
                async move { respond(&live, request.uri().path(), openmetrics) }
            },
            Some(LIMITS),
        );
        let (serve, stop) = futures_util::future::abortable(serve);
        let thread = std::thread::spawn(move || {
            let _ = runtime.block_on(serve);
        });
        Ok(Server {
            addr: bound,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// OpenMetrics for a scraper that asks for it (Prometheus does), else the Prometheus text format
/// (curl, promtool).
fn respond(
    live: &Live,
    path: &str,
    openmetrics: bool,
) -> hyper::Response<crate::http::ChannelBody> {
    use crate::http::respond;
    use hyper::StatusCode;
    match path {
        "/metrics" => match live.encode() {
            Ok(text) if openmetrics => respond(StatusCode::OK, exposition::CONTENT_TYPE, text),
            Ok(text) => respond(
                StatusCode::OK,
                exposition::TEXT_CONTENT_TYPE,
                exposition::to_text_format(&text),
            ),
            Err(e) => respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                e.to_string(),
            ),
        },
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            "migbench serves /metrics only\n",
        ),
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.abort();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    /// What the server sends on a connection that sent `bytes`, until it closes it or a second
    /// passes (a kept-alive connection stays open for its next request; hyper closes one whose
    /// client half-closes, so the client does not).
    fn exchange(addr: SocketAddr, bytes: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(1)))
            .unwrap();
        let _ = s.write_all(bytes);
        let (mut got, mut buf) = (Vec::new(), [0u8; 4096]);
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&got).into_owned()
    }

    /// Request lines and headers as a client might write them, well or badly.
    fn request() -> impl Strategy<Value = Vec<u8>> {
        let method = prop_oneof![
            Just("GET".to_string()),
            Just("POST".to_string()),
            Just("HEAD".to_string()),
            "[A-Z]{0,12}",
        ];
        let path = prop_oneof![
            Just("/metrics".to_string()),
            Just("/".to_string()),
            "/[ -~]{0,40}",
            "[^\r\n]{0,40}",
        ];
        let header = prop_oneof![
            Just("accept: application/openmetrics-text; version=1.0.0".to_string()),
            Just("content-length: 5".to_string()),
            Just("transfer-encoding: chunked".to_string()),
            "[a-z-]{1,20}: [ -~]{0,60}",
            "[^\r\n]{0,60}",
        ];
        let garbage = proptest::collection::vec(any::<u8>(), 0..64);
        (
            method,
            path,
            proptest::collection::vec(header, 0..6),
            garbage,
        )
            .prop_map(|(method, path, headers, garbage)| {
                let mut text = format!("{method} {path} HTTP/1.1\r\nhost: x\r\n");
                for h in headers {
                    text.push_str(&h);
                    text.push_str("\r\n");
                }
                text.push_str("\r\n");
                let mut bytes = text.into_bytes();
                bytes.extend(garbage);
                bytes
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Any request gets a well-formed HTTP answer (a status the endpoint gives) or none, and
        /// the endpoint still answers a scrape after it: nothing a client sends takes it down.
        /// (Slow and idle clients: `crate::http`'s tests.)
        #[test]
        fn any_request_gets_an_answer_or_a_close_and_the_endpoint_stays_up(bytes in request()) {
            let live = Arc::new(Live::new(0, "GPU-0", "h100-80gb", true, 1));
            let server = Server::start("127.0.0.1:0", live).unwrap();
            let answer = exchange(server.addr, &bytes);
            prop_assert!(
                answer.is_empty() || answer.starts_with("HTTP/1.1 "),
                "{answer:?}"
            );
            let status = answer.get(9..12).unwrap_or("");
            prop_assert!(
                answer.is_empty() || ["200", "400", "404", "413", "414", "431", "501"].contains(&status),
                "{answer:?}"
            );
            let scrape = exchange(
                server.addr,
                b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
            );
            prop_assert!(scrape.starts_with("HTTP/1.1 200"), "{scrape:?}");
            prop_assert!(scrape.contains("migbench_"), "{scrape:?}");
        }
    }
}
