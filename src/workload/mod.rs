//! Workload definitions: what a job runs and how much memory and time it needs.
//!
//! The shipped workloads are data files in `scenarios/workloads/`, compiled into the binary so that
//! scenarios can name them from anywhere; scenarios may also define their own.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::Error;

mod oom;
pub use oom::{is_cuda_oom, DEFAULT_OOM_PATTERNS};

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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// Extra environment for the job.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Kills a job that runs longer than this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<f64>,
    /// Substrings of a job's output that mean it ran out of GPU memory; PyTorch's and CUDA's
    /// messages when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_patterns: Option<Vec<String>>,
    pub memory: MemoryProfile,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<Timing>,
    pub sim: SimProfile,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    /// Runs to completion and produces one unit (a video).
    Batch,
    /// A model server that answers requests until stopped.
    Server,
}

/// GPU memory a job holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryProfile {
    /// The level held most of the run, in GiB.
    pub constant_gib: f64,
    /// The maximum, in GiB.
    pub peak_gib: f64,
    pub source: String,
}

/// Time per unit measured on a reference GPU.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// Catalog key of the GPU the figure was measured on.
    pub reference_gpu: String,
    /// Seconds per unit with the whole GPU to itself.
    pub full_gpu_s: f64,
    pub source: String,
}

/// How the simulated GPU makes this workload behave.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimProfile {
    /// Speed at a share `s` of the SMs is `s^alpha`.
    pub alpha: f64,
    /// When the peak begins, as a fraction of the run.
    pub peak_at: f64,
    /// How long the peak lasts, as a fraction of the run.
    pub peak_for: f64,
    /// Makes the simulated job crash (exit 3) at this fraction of its run: for testing how
    /// failures are recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_at: Option<f64>,
    pub source: String,
}

impl Workload {
    /// Parses and checks one workload definition.
    pub fn from_toml(text: &str) -> Result<Workload, String> {
        let w: Workload = toml::from_str(text).map_err(|e| e.to_string())?;
        w.check()?;
        Ok(w)
    }

    /// The rules every workload definition must follow.
    pub fn check(&self) -> Result<(), String> {
        let m = &self.memory;
        if !(m.constant_gib >= 0.0 && m.peak_gib >= m.constant_gib && m.peak_gib > 0.0) {
            return Err(format!(
                "workload {}: memory must satisfy 0 <= constant_gib <= peak_gib and peak_gib > 0, found {} and {}",
                self.name, m.constant_gib, m.peak_gib
            ));
        }
        if self.command.is_empty() {
            return Err(format!(
                "workload {}: command must name a program",
                self.name
            ));
        }
        let s = &self.sim;
        if !(s.alpha > 0.0 && (0.0..=1.0).contains(&s.peak_at) && s.peak_at + s.peak_for <= 1.0) {
            return Err(format!(
                "workload {}: sim needs alpha > 0 and 0 <= peak_at <= peak_at + peak_for <= 1",
                self.name
            ));
        }
        if self.timeout_s.is_some_and(|t| t <= 0.0) {
            return Err(format!("workload {}: timeout_s must be above 0", self.name));
        }
        if let Some(fail_at) = self.sim.fail_at {
            if !(0.0..=1.0).contains(&fail_at) {
                return Err(format!(
                    "workload {}: sim.fail_at must be between 0 and 1",
                    self.name
                ));
            }
        }
        Ok(())
    }

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
