//! Serving workloads: model servers (vLLM, or the simulated server) started as jobs, waited for,
//! driven by the [load generator](crate::loadgen), and stopped.

pub mod engine;
pub mod http;
mod ready;
pub mod record;
pub mod servers;
pub mod sim_server;

pub use servers::{Servers, ServingRun, Stop};
