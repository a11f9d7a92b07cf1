//! Beyond one machine: what a lab with several GPU nodes and a nightly job needs.
//!
//! - [`slurm`]: the Slurm job a run ran in (for its manifest), and `migbench slurm submit`;
//! - [`live`]: `migbench run --metrics-listen`, the run's figures for Prometheus while it runs;
//! - [`openmetrics`]: `migbench report --openmetrics`, a report's final figures for
//!   node_exporter's textfile collector;
//! - [`history`]: `migbench history`, every night of the nightly history and its trends.

mod exposition;
pub mod history;
pub mod live;
pub mod openmetrics;
pub mod slurm;
