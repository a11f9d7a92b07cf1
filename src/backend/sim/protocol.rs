//! What a simulated job (`migbench synth`) and the simulated GPU say to each other: one JSON
//! object per line over a Unix socket.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// The job's process has started (it now uses compute).
    Hello { job: u64, pid: u32 },
    /// How far along is my work?
    Progress,
    /// Set my memory to `gib`.
    Alloc { gib: f64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Ok,
    /// Fraction of the job's work done, 0 to 1.
    Progress {
        fraction: f64,
    },
    /// The allocation does not fit.
    Oom {
        requested_gib: f64,
        capacity_gib: f64,
        free_gib: f64,
        in_use_gib: f64,
    },
    Error {
        message: String,
    },
}
