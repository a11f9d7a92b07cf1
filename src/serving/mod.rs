//! Serving workloads: model servers (vLLM, or the simulated server) started as jobs, waited for,
//! driven by the [load generator](crate::loadgen), and stopped.

mod ready;
pub mod record;
pub mod servers;

pub use servers::{Servers, ServingRun, Stop};
