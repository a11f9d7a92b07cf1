//! Errors and the exit codes they map to: 2 for bad input, 1 when the harness itself failed.

use crate::catalog::CatalogError;
use crate::layout::LayoutError;

/// What went wrong, worded for the person who typed the command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Catalog(#[from] CatalogError),

    #[error(
        "unknown workload '{}'; known workloads: {known}",
        crate::bounds::short(found)
    )]
    UnknownWorkload { found: String, known: String },

    #[error(transparent)]
    Layout(#[from] LayoutError),

    /// Any other input that cannot be used as given (a bad option value, a bad file).
    #[error("{0}")]
    Input(String),

    /// Stopped by Ctrl-C or SIGTERM after tearing down; what finished is recorded.
    #[error("{0}")]
    Interrupted(String),

    /// The harness failed (I/O, a tool that broke), not the user's input.
    #[error("{0}")]
    Harness(String),

    /// `compare` found a variant worse than its baseline beyond the threshold.
    #[error("{0}")]
    Regression(String),

    /// `discover --check-catalog` found the driver's profile tables differ from the catalog's.
    #[error("{0}")]
    CatalogDiffers(String),
}

impl Error {
    /// Process exit status for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Harness(_) | Error::Regression(_) | Error::CatalogDiffers(_) => 1,
            Error::Interrupted(_) => 130,
            _ => 2,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
