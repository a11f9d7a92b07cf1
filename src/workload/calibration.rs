//! The provenance of a calibrated workload profile, as `migbench calibrate` writes it into the
//! workload file: which runs and jobs each figure was fitted on, and how well it fits them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// The migbench that fitted it (`migbench --version`).
    pub migbench: String,
    /// The run directories read, as given.
    pub runs: Vec<String>,
    /// One entry per figure of the profile.
    pub fitted: Vec<Fitted>,
}

/// One figure of the profile and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fitted {
    /// The key it sets (`timing.full_gpu_s`, `sim.alpha`, ...).
    pub key: String,
    pub value: f64,
    /// `fitted`, or `default` when no run could identify it (then `note` says which would).
    pub how: String,
    /// The jobs it was fitted on, `RUN_DIR:variant#repetition/job`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<String>,
    /// Root mean square of the relative errors of the fitted model on those jobs (0.02 = 2 %).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rms_residual: Option<f64>,
    /// The largest relative error on one of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_residual: Option<f64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}
