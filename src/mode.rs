//! The ways jobs can share one GPU — the question migbench answers.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How jobs share a GPU.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
pub enum SharingMode {
    /// One job at a time with the whole GPU to itself.
    #[serde(rename = "full")]
    Full,
    /// Jobs at once on the whole GPU, their contexts taking turns on the SMs (no MPS).
    #[serde(rename = "timeslice")]
    Timeslice,
    /// Jobs at once on the whole GPU through one MPS server, sharing the SMs spatially.
    #[serde(rename = "mps")]
    Mps,
    /// The GPU split into MIG instances, one job per instance at a time.
    #[serde(rename = "mig")]
    Mig,
    /// MIG instances, each running several jobs through its own MPS server.
    #[serde(rename = "mig+mps")]
    MigMps,
}

crate::named!(SharingMode: Full, Timeslice, Mps, Mig, MigMps);

impl SharingMode {
    pub const ALL: [SharingMode; 5] = [
        SharingMode::Full,
        SharingMode::Timeslice,
        SharingMode::Mps,
        SharingMode::Mig,
        SharingMode::MigMps,
    ];

    /// The name used in scenarios, JSON and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            SharingMode::Full => "full",
            SharingMode::Timeslice => "timeslice",
            SharingMode::Mps => "mps",
            SharingMode::Mig => "mig",
            SharingMode::MigMps => "mig+mps",
        }
    }

    pub fn uses_mig(self) -> bool {
        matches!(self, SharingMode::Mig | SharingMode::MigMps)
    }

    /// Whether the GPU guarantees one job's memory and SMs against its neighbours.
    pub fn isolation(self) -> &'static str {
        match self {
            SharingMode::Full => "exclusive",
            SharingMode::Mig => "guaranteed (MIG)",
            SharingMode::MigMps => "between instances only",
            SharingMode::Timeslice | SharingMode::Mps => "none",
        }
    }
}

impl fmt::Display for SharingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
