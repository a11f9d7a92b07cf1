//! Workload definitions: what a job runs and how much memory and time it needs.
//!
//! The shipped workloads are data files in `scenarios/workloads/`, compiled into the binary so that
//! scenarios can name them from anywhere; scenarios may also define their own.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::Error;

mod calibration;
mod curve;
mod oom;
pub use calibration::{Calibration, Fitted};
pub use curve::MemoryCurve;
pub use oom::{reports_oom, DEFAULT_OOM_PATTERNS};

const WORKLOAD_FILES: &[(&str, &str)] = &[
    (
        "ti2v-5b.toml",
        include_str!("../../scenarios/workloads/ti2v-5b.toml"),
    ),
    (
        "s2v-14b.toml",
        include_str!("../../scenarios/workloads/s2v-14b.toml"),
    ),
    (
        "qwen3-4b.toml",
        include_str!("../../scenarios/workloads/qwen3-4b.toml"),
    ),
    (
        "qwen3-14b.toml",
        include_str!("../../scenarios/workloads/qwen3-14b.toml"),
    ),
];

/// A job migbench can run: its command and its resource profile.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    pub name: String,
    pub title: String,
    pub kind: WorkloadKind,
    /// What one job produces (`video`, `request`), for time-per-unit figures.
    pub unit: String,
    /// argv of the real workload; never passed through a shell.
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// Extra environment for the job (in its container, for a container workload).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// A container image to run the job in (`vllm/vllm-openai:v0.10.1`); `command` is then the
    /// image's arguments (docs/containers.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The engine of a container workload; else the scenario's `engine`, `run --engine`, or
    /// podman.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<crate::container::Engine>,
    /// How the container is given its device: `cdi` (`--device nvidia.com/gpu=UUID`, podman's
    /// default) or `gpus` (`--gpus device=UUID`, docker's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_request: Option<crate::container::GpuRequest>,
    /// Ports a container publishes, `[IP:]HOST:CONTAINER`; HOST may be `{port}`, the port
    /// migbench picks for a server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
    /// Volumes a container mounts, `SOURCE:TARGET[:OPTIONS]` (model caches).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// Further engine options, put before the image as given (`--shm-size=16g`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub engine_options: Vec<String>,
    /// Kills a job that runs longer than this many seconds.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "checked::timeout_s"
    )]
    pub timeout_s: Option<f64>,
    /// Substrings of a job's output that mean it ran out of GPU memory; PyTorch's and CUDA's
    /// messages when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_patterns: Option<Vec<String>>,
    pub memory: MemoryProfile,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<Timing>,
    /// How migbench talks to a `server` workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerSpec>,
    pub sim: SimProfile,
    /// Where a calibrated profile came from (`migbench calibrate`): runs, jobs, residuals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
}

/// How to reach a model server: when it is ready and which model to ask for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    /// The `model` of each request; the first model `/v1/models` lists when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Paths polled in turn until each answers 200: the server is then ready.
    #[serde(default = "default_ready_paths")]
    pub ready_paths: Vec<String>,
    /// A server not ready after this many seconds is stopped and recorded `not_ready`.
    #[serde(
        default = "default_ready_timeout_s",
        deserialize_with = "checked::ready_timeout_s"
    )]
    pub ready_timeout_s: f64,
}

impl Default for ServerSpec {
    fn default() -> Self {
        ServerSpec {
            model: None,
            ready_paths: default_ready_paths(),
            ready_timeout_s: default_ready_timeout_s(),
        }
    }
}

fn default_ready_paths() -> Vec<String> {
    vec!["/health".into(), "/v1/models".into()]
}

fn default_ready_timeout_s() -> f64 {
    600.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    /// Runs to completion and produces one unit (a video).
    Batch,
    /// A model server that answers requests until stopped.
    Server,
}

/// GPU memory a job holds.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryProfile {
    /// The level held most of the run, in GiB.
    #[serde(deserialize_with = "checked::constant_gib")]
    pub constant_gib: f64,
    /// The maximum, in GiB.
    #[serde(deserialize_with = "checked::peak_gib")]
    pub peak_gib: f64,
    pub source: String,
}

/// Time per unit measured on a reference GPU.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// Catalog key of the GPU the figure was measured on.
    pub reference_gpu: String,
    /// Seconds per unit with the whole GPU to itself.
    #[serde(deserialize_with = "checked::full_gpu_s")]
    pub full_gpu_s: f64,
    pub source: String,
}

/// How the simulated GPU makes this workload behave.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SimProfile {
    /// MIG: speed on a slice with a share `s` of the reference GPU's SMs is `s^alpha`.
    #[serde(deserialize_with = "checked::alpha")]
    pub alpha: f64,
    /// MPS: each of `n` clients sharing all SMs runs at `min(1/n, thread cap)^mps_exponent` of
    /// its device's speed; `alpha` when absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "checked::mps_exponent"
    )]
    pub mps_exponent: Option<f64>,
    /// Time-slicing: each of `n >= 2` jobs runs at `timeslice_efficiency / n` of its device's
    /// speed (the rest is lost to context switches); 1 when absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "checked::timeslice_efficiency"
    )]
    pub timeslice_efficiency: Option<f64>,
    /// Part of the time alone on the reference GPU that the GPU does not speed up (host pre- and
    /// post-processing, offloaded weights): sharing does not slow it; 0 when absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "checked::host_fraction"
    )]
    pub host_fraction: Option<f64>,
    /// Part of the time alone on the reference GPU bound by memory bandwidth: it follows the
    /// share of memory slices (MIG) or of the bandwidth left by co-runners (MPS); 0 when absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "checked::bandwidth_fraction"
    )]
    pub bandwidth_fraction: Option<f64>,
    /// MPS: what each co-runner adds to the GPU part of a client's time (cache and memory-system
    /// contention beyond the shares); 0 when absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "checked::mps_interference"
    )]
    pub mps_interference: Option<f64>,
    /// Power: what a job draws with every SM of its device at work, as a share of the board's
    /// dynamic power (`board_w − idle_w` of the catalog); 1 when absent (docs/energy.md).
    /// `calibrate` fits it from runs with measured power.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "checked::power_share"
    )]
    pub power_share: Option<f64>,
    /// Memory over the run as measured, `[fraction, GiB]` from fraction 0 in ascending order;
    /// replayed instead of the constant level and the peak window when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_trace: Option<Vec<(f64, f64)>>,
    /// When the peak begins, as a fraction of the run.
    #[serde(deserialize_with = "checked::peak_at")]
    pub peak_at: f64,
    /// How long the peak lasts, as a fraction of the run.
    #[serde(deserialize_with = "checked::peak_for")]
    pub peak_for: f64,
    /// Makes the simulated job crash (exit 3) at this fraction of its run: for testing how
    /// failures are recorded.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "checked::fail_at"
    )]
    pub fail_at: Option<f64>,
    pub source: String,
    /// How the simulated model server behaves (`server` workloads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<SimServer>,
}

/// A simulated model server: its memory and its token rates on the whole reference GPU. Its
/// speed on a share of the SMs scales as `s^alpha`, like every simulated job's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SimServer {
    /// Catalog key of the GPU the rates are for.
    pub reference_gpu: String,
    /// Memory that is not KV cache: weights, activations, CUDA graphs.
    #[serde(deserialize_with = "checked::weights_gib")]
    pub weights_gib: f64,
    /// KV cache per token of context.
    #[serde(deserialize_with = "checked::kv_mib_per_token")]
    pub kv_mib_per_token: f64,
    /// The server preallocates this fraction of its device's memory (weights plus KV cache), as
    /// vLLM does with `--gpu-memory-utilization`...
    #[serde(deserialize_with = "checked::memory_fraction")]
    pub memory_fraction: f64,
    /// ...unless its command gives the fraction after this flag (the last one counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_fraction_flag: Option<String>,
    /// Prompt tokens per second, prefill alone.
    #[serde(deserialize_with = "checked::prefill_tokens_per_s")]
    pub prefill_tokens_per_s: f64,
    /// Output tokens per second of one sequence decoding alone.
    #[serde(deserialize_with = "checked::decode_tokens_per_s")]
    pub decode_tokens_per_s: f64,
    /// Output tokens per second of all sequences together as the batch grows without bound:
    /// a decode step of `b` sequences takes `1 / decode_tokens_per_s + b / batch_decode_tokens_per_s`.
    #[serde(deserialize_with = "checked::batch_decode_tokens_per_s")]
    pub batch_decode_tokens_per_s: f64,
    /// Most sequences decoding at once (vLLM's `--max-num-seqs`).
    #[serde(
        default = "default_max_num_seqs",
        deserialize_with = "checked::max_num_seqs"
    )]
    pub max_num_seqs: u32,
    /// Most tokens in one engine step (vLLM's `--max-num-batched-tokens`).
    #[serde(
        default = "default_max_batched_tokens",
        deserialize_with = "checked::max_batched_tokens"
    )]
    pub max_batched_tokens: u32,
    /// Seconds from start to ready (loading weights, profiling, warming up).
    #[serde(deserialize_with = "checked::startup_s")]
    pub startup_s: f64,
    pub source: String,
}

/// Points of a memory trace: enough for a few hundred changes of level over a run, few enough to
/// pass on a simulated job's command line.
pub const MAX_TRACE_POINTS: usize = 512;

fn default_max_num_seqs() -> u32 {
    256
}

fn default_max_batched_tokens() -> u32 {
    8192
}

/// The fields checked while parsing: see [`crate::bounds`].
mod checked {
    use crate::bounds;

    crate::number_in!(opt timeout_s, "timeout_s", bounds::POSITIVE_SECONDS);
    crate::number_in!(ready_timeout_s, "ready_timeout_s", bounds::POSITIVE_SECONDS);
    crate::number_in!(constant_gib, "constant_gib", bounds::GIB);
    crate::number_in!(peak_gib, "peak_gib", bounds::POSITIVE_GIB);
    crate::number_in!(full_gpu_s, "full_gpu_s", bounds::POSITIVE_SECONDS);
    crate::number_in!(alpha, "alpha", bounds::ALPHA);
    crate::number_in!(opt mps_exponent, "mps_exponent", bounds::ALPHA);
    crate::number_in!(
        opt timeslice_efficiency,
        "timeslice_efficiency",
        bounds::ALPHA
    );
    crate::number_in!(opt host_fraction, "host_fraction", bounds::FRACTION);
    crate::number_in!(opt bandwidth_fraction, "bandwidth_fraction", bounds::FRACTION);
    crate::number_in!(opt mps_interference, "mps_interference", INTERFERENCE);
    crate::number_in!(opt power_share, "power_share", bounds::SHARE);
    crate::number_in!(peak_at, "peak_at", bounds::FRACTION);
    crate::number_in!(peak_for, "peak_for", bounds::FRACTION);
    crate::number_in!(opt fail_at, "fail_at", bounds::FRACTION);
    crate::number_in!(weights_gib, "weights_gib", bounds::POSITIVE_GIB);
    crate::number_in!(kv_mib_per_token, "kv_mib_per_token", bounds::KV_MIB);
    crate::number_in!(memory_fraction, "memory_fraction", bounds::SHARE);
    crate::number_in!(
        prefill_tokens_per_s,
        "prefill_tokens_per_s",
        bounds::TOKEN_RATE
    );
    crate::number_in!(
        decode_tokens_per_s,
        "decode_tokens_per_s",
        bounds::TOKEN_RATE
    );
    crate::number_in!(
        batch_decode_tokens_per_s,
        "batch_decode_tokens_per_s",
        bounds::TOKEN_RATE
    );
    crate::integer_in!(max_num_seqs, u32, "max_num_seqs", 1, MAX_BATCH);
    crate::integer_in!(max_batched_tokens, u32, "max_batched_tokens", 1, MAX_BATCH);
    crate::number_in!(startup_s, "startup_s", bounds::SECONDS);

    /// What one MPS co-runner may add to a client's GPU time: up to ten times it.
    const INTERFERENCE: bounds::Range = bounds::Range::closed(0.0, 10.0);

    /// Most sequences, or tokens, in one engine step of a simulated server.
    const MAX_BATCH: u32 = 1 << 20;
}

impl SimServer {
    /// The memory fraction `command` asks for: the value after the last `memory_fraction_flag`,
    /// else `memory_fraction`.
    pub fn fraction_in(&self, command: &[String]) -> Result<f64, String> {
        let Some(flag) = &self.memory_fraction_flag else {
            return Ok(self.memory_fraction);
        };
        let given = command.iter().enumerate().rev().find_map(|(i, arg)| {
            arg.strip_prefix(flag.as_str())
                .and_then(|rest| rest.strip_prefix('='))
                .map(str::to_string)
                .or_else(|| (arg == flag).then(|| command.get(i + 1).cloned().unwrap_or_default()))
        });
        match given {
            None => Ok(self.memory_fraction),
            Some(v) => match v.parse::<f64>() {
                Ok(f) if f > 0.0 && f <= 1.0 => Ok(f),
                _ => Err(format!(
                    "{flag} takes a fraction above 0 and at most 1, found '{v}'"
                )),
            },
        }
    }
}

/// A rule a workload definition breaks: the key it is about (`memory.peak_gib`, relative to the
/// workload's table), and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub key: &'static str,
    pub message: String,
}

impl Invalid {
    fn new(key: &'static str, message: String) -> Invalid {
        Invalid { key, message }
    }
}

impl Workload {
    /// Reads and checks a workload file; errors are located in it and quote none of it but
    /// the values the parser names (it quotes none of a file that is not TOML).
    pub fn load(path: &std::path::Path) -> Result<Workload, crate::location::ScenarioError> {
        use crate::location::{self, ScenarioError, Step};
        let bytes = crate::input::read(path, crate::input::SCENARIO)
            .map_err(|e| ScenarioError::unreadable(path, "the workload file", &e))?;
        let text = String::from_utf8(bytes)
            .map_err(|e| location::not_utf8(path, e.as_bytes(), &e.utf8_error()))?;
        let w: Workload =
            toml::from_str(&text).map_err(|e| location::toml_error(path, &text, &e))?;
        w.check().map_err(|e| {
            let steps: Vec<Step> = e.key.split('.').map(Step::Key).collect();
            let span = location::span_of(&text, &steps);
            ScenarioError::at(path, &text, span, e.message)
        })?;
        Ok(w)
    }

    /// Parses and checks one workload definition.
    pub fn from_toml(text: &str) -> Result<Workload, String> {
        let w: Workload = toml::from_str(text).map_err(|e| e.to_string())?;
        w.check().map_err(|e| e.message)?;
        Ok(w)
    }

    /// The rules every workload definition must follow beyond the range of each number (checked
    /// as it is parsed: [`crate::bounds`]).
    pub fn check(&self) -> Result<(), Invalid> {
        let name = &self.name;
        crate::bounds::check_name("workload name", name).map_err(|m| Invalid::new("name", m))?;
        let m = &self.memory;
        if m.peak_gib < m.constant_gib {
            return Err(Invalid::new(
                "memory.peak_gib",
                format!(
                    "workload {name}: memory.peak_gib must be at least constant_gib ({}), found {}",
                    m.constant_gib, m.peak_gib
                ),
            ));
        }
        if self.command.is_empty() && self.image.is_none() {
            return Err(Invalid::new(
                "command",
                format!("workload {name}: command must name a program"),
            ));
        }
        self.check_container()?;
        let s = &self.sim;
        if s.peak_at + s.peak_for > 1.0 {
            return Err(Invalid::new(
                "sim.peak_for",
                format!(
                    "workload {name}: sim.peak_at + sim.peak_for must be at most 1 (the peak ends by the end of the run), found {} + {}",
                    s.peak_at, s.peak_for
                ),
            ));
        }
        let split = s.host_fraction.unwrap_or(0.0) + s.bandwidth_fraction.unwrap_or(0.0);
        if split > 1.0 + 1e-9 {
            return Err(Invalid::new(
                "sim.bandwidth_fraction",
                format!(
                    "workload {name}: sim.host_fraction + sim.bandwidth_fraction must be at most 1 (they are parts of one time), found {split}"
                ),
            ));
        }
        if let Some(t) = &self.timing {
            self.known_gpu("timing.reference_gpu", &t.reference_gpu)?;
        }
        if let Some(trace) = &s.memory_trace {
            self.check_trace(trace)?;
        }
        self.check_server()
    }

    /// The rules for container workloads: an image named plainly, ports and volumes the engine
    /// takes, and the container keys only with an image.
    fn check_container(&self) -> Result<(), Invalid> {
        let name = &self.name;
        let Some(image) = &self.image else {
            let given = [
                ("engine", self.engine.is_some()),
                ("gpu_request", self.gpu_request.is_some()),
                ("ports", !self.ports.is_empty()),
                ("volumes", !self.volumes.is_empty()),
                ("engine_options", !self.engine_options.is_empty()),
            ];
            if let Some(&(key, _)) = given.iter().find(|(_, g)| *g) {
                return Err(Invalid::new(
                    key,
                    format!(
                        "workload {name}: {key} is for a container workload, which names its `image`"
                    ),
                ));
            }
            return Ok(());
        };
        if image.is_empty()
            || image.starts_with('-')
            || image.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Invalid::new(
                "image",
                format!(
                    "workload {name}: image must name an image (`vllm/vllm-openai:v0.10.1`): not \
                     empty, not starting with '-', no spaces; found '{}'",
                    image.escape_debug()
                ),
            ));
        }
        if self.workdir.is_some() {
            return Err(Invalid::new(
                "workdir",
                format!(
                    "workload {name}: workdir is the directory of a host job; a container's is \
                     the image's (or engine_options = [\"--workdir\", \"/DIR\"])"
                ),
            ));
        }
        if self.engine == Some(crate::container::Engine::Podman)
            && self.gpu_request == Some(crate::container::GpuRequest::Gpus)
        {
            return Err(Invalid::new(
                "gpu_request",
                format!(
                    "workload {name}: podman takes GPUs as CDI devices: gpu_request = \"cdi\" \
                     (\"gpus\" is docker's --gpus with the NVIDIA runtime)"
                ),
            ));
        }
        for p in &self.ports {
            let host = crate::container::parse_port(p)
                .map_err(|m| Invalid::new("ports", format!("workload {name}: ports: {m}")))?;
            // migbench picks a port for a server only: a batch job's `{port}` stays unfilled.
            if host.is_none() && self.kind != WorkloadKind::Server {
                return Err(Invalid::new(
                    "ports",
                    format!(
                        "workload {name}: ports: '{p}': {{port}} is the port migbench picks for a \
                         server (kind = \"server\"); a batch workload publishes fixed ports \
                         (HOST:CONTAINER, HOST a number)"
                    ),
                ));
            }
        }
        for v in &self.volumes {
            crate::container::check_volume(v)
                .map_err(|m| Invalid::new("volumes", format!("workload {name}: volumes: {m}")))?;
        }
        Ok(())
    }

    /// The host ports a container workload publishes that are fixed (not `{port}`).
    pub fn fixed_host_ports(&self) -> Vec<u16> {
        self.ports
            .iter()
            .filter_map(|p| crate::container::parse_port(p).ok().flatten())
            .collect()
    }

    /// A memory trace starts at fraction 0, ascends, and stays within `[0, memory.peak_gib]`.
    fn check_trace(&self, trace: &[(f64, f64)]) -> Result<(), Invalid> {
        let bad = |m: String| {
            Err(Invalid::new(
                "sim.memory_trace",
                format!("workload {}: sim.memory_trace: {m}", self.name),
            ))
        };
        if trace.first().is_none_or(|(f, _)| *f != 0.0) {
            return bad("the first point must be at fraction 0".into());
        }
        if trace.len() > MAX_TRACE_POINTS {
            return bad(format!(
                "at most {MAX_TRACE_POINTS} points, found {}",
                trace.len()
            ));
        }
        for (i, &(f, gib)) in trace.iter().enumerate() {
            if !crate::bounds::FRACTION.contains(f) || (i > 0 && f <= trace[i - 1].0) {
                return bad(format!(
                    "point {i}: fractions must ascend within 0 to 1, found {f}"
                ));
            }
            if !(0.0..=self.memory.peak_gib + 1e-9).contains(&gib) {
                return bad(format!(
                    "point {i}: GiB must be from 0 to memory.peak_gib ({}), found {gib}",
                    self.memory.peak_gib
                ));
            }
        }
        Ok(())
    }

    /// The memory the simulator replays: the measured trace, else constant and peak levels.
    pub fn memory_curve(&self) -> MemoryCurve {
        match &self.sim.memory_trace {
            Some(trace) => MemoryCurve::Trace(trace.clone()),
            None => MemoryCurve::Levels {
                constant: self.memory.constant_gib,
                peak: self.memory.peak_gib,
                peak_at: self.sim.peak_at,
                peak_for: self.sim.peak_for,
            },
        }
    }

    /// A reference GPU (at `key`) must be in the catalog: the simulator scales by it, and every
    /// job would fail at run time otherwise.
    fn known_gpu(&self, key: &'static str, gpu: &str) -> Result<(), Invalid> {
        crate::catalog::Catalog::builtin()
            .gpu(gpu)
            .map(|_| ())
            .map_err(|e| Invalid::new(key, format!("workload {}: {key}: {e}", self.name)))
    }

    /// The rules for `server` workloads: a `[sim.server]` profile, and no server tables on a
    /// batch workload.
    fn check_server(&self) -> Result<(), Invalid> {
        let name = &self.name;
        match (self.kind, &self.sim.server) {
            (WorkloadKind::Batch, _) if self.server.is_some() || self.sim.server.is_some() => {
                return Err(Invalid::new(
                    "kind",
                    format!(
                        "workload {name}: [server] and [sim.server] are for kind = \"server\" only"
                    ),
                ))
            }
            (WorkloadKind::Server, None) => {
                return Err(Invalid::new(
                    "kind",
                    format!(
                        "workload {name}: a server needs a [sim.server] profile (memory and token rates) for the simulator"
                    ),
                ))
            }
            _ => {}
        }
        if let Some(spec) = &self.server {
            if let Some(bad) = spec.ready_paths.iter().find(|p| !p.starts_with('/')) {
                return Err(Invalid::new(
                    "server.ready_paths",
                    format!(
                        "workload {name}: every ready path must start with /, found {}",
                        crate::bounds::quote(bad)
                    ),
                ));
            }
        }
        if let Some(s) = &self.sim.server {
            self.known_gpu("sim.server.reference_gpu", &s.reference_gpu)?;
            s.fraction_in(&self.command)
                .map_err(|e| Invalid::new("command", format!("workload {name}: command: {e}")))?;
        }
        Ok(())
    }

    /// The port placeholder a server's command (and environment) carries.
    pub const PORT: &'static str = "{port}";

    /// The patterns that mark an out-of-memory failure in this workload's output.
    pub fn oom_patterns(&self) -> Vec<&str> {
        match &self.oom_patterns {
            Some(p) => p.iter().map(String::as_str).collect(),
            None => DEFAULT_OOM_PATTERNS.to_vec(),
        }
    }

    /// Memory above the constant level during the peak.
    pub fn peak_excess_gib(&self) -> f64 {
        self.memory.peak_gib - self.memory.constant_gib
    }
}

/// The workloads shipped with migbench.
pub fn builtin() -> &'static [Workload] {
    static WORKLOADS: OnceLock<Vec<Workload>> = OnceLock::new();
    WORKLOADS.get_or_init(|| {
        WORKLOAD_FILES
            .iter()
            .map(|(file, text)| {
                Workload::from_toml(text)
                    .unwrap_or_else(|e| panic!("built-in workload {file} is invalid: {e}"))
            })
            .collect()
    })
}

/// Looks a shipped workload up by name (case-insensitive).
pub fn find(name: &str) -> Result<&'static Workload, Error> {
    builtin()
        .iter()
        .find(|w| w.name.eq_ignore_ascii_case(name.trim()))
        .ok_or_else(|| Error::UnknownWorkload {
            found: name.to_string(),
            known: builtin()
                .iter()
                .map(|w| w.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn the_memory_fraction_is_the_last_value_of_its_flag() {
        let server = find("qwen3-4b").unwrap().sim.server.clone().unwrap();
        let flag = "--gpu-memory-utilization";
        assert_eq!(server.fraction_in(&argv(&["vllm", "serve", "m"])), Ok(0.9));
        assert_eq!(
            server.fraction_in(&argv(&["vllm", flag, "0.9", flag, "0.45"])),
            Ok(0.45)
        );
        assert_eq!(
            server.fraction_in(&argv(&["vllm", "--gpu-memory-utilization=0.3"])),
            Ok(0.3)
        );
        let err = server.fraction_in(&argv(&["vllm", flag])).unwrap_err();
        assert_eq!(
            err,
            "--gpu-memory-utilization takes a fraction above 0 and at most 1, found ''"
        );
        assert!(server.fraction_in(&argv(&["vllm", flag, "1.5"])).is_err());
        let no_flag = SimServer {
            memory_fraction_flag: None,
            ..server
        };
        assert_eq!(no_flag.fraction_in(&argv(&["vllm", flag, "0.1"])), Ok(0.9));
    }

    #[test]
    fn server_tables_belong_to_server_workloads() {
        let mut w = find("ti2v-5b").unwrap().clone();
        w.server = Some(ServerSpec::default());
        assert!(w
            .check()
            .unwrap_err()
            .message
            .contains("are for kind = \"server\" only"));
        let mut w = find("qwen3-4b").unwrap().clone();
        w.sim.server = None;
        assert!(w
            .check()
            .unwrap_err()
            .message
            .contains("needs a [sim.server] profile"));
    }
}
