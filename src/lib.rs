//! migbench: should inference jobs share a GPU through MPS, be split into MIG instances, or run
//! one at a time on the whole GPU?
//!
//! The crate reads like the pipeline it implements, one line a module (docs/mig.md and
//! docs/nvidia-smi.md hold the GPU facts the code relies on).
//!
//! What is given:
//! - [`catalog`]: the GPU models and their MIG profiles and placements, as data;
//! - [`layout`]: MIG layouts — validation, placement, enumeration, what a layout leaves unused;
//! - [`workload`]: what a job runs and the memory and time it needs;
//! - [`mode`]: the sharing modes — MPS, MIG, MIG with MPS, one at a time on the whole GPU;
//! - [`scenario`]: scenario files — a GPU, workloads, and the variants to compare;
//! - [`bounds`]: the ranges every number and name of those files must lie in;
//! - [`location`]: errors that point into an input file, `file:line:column: message`;
//! - [`schema`]: JSON Schemas of those files, derived from their types, for editors.
//!
//! Planning and running:
//! - [`plan`]: how many copies fit at once under each mode;
//! - [`advise`]: every sensible configuration simulated and ranked, the best written as a scenario;
//! - [`calibrate`]: a workload's simulation profile fitted from measured runs;
//! - [`backend`]: the GPU driven — simulated (`sim`: the GPU, its clock, the `migbench synth`
//!   jobs and the simulated model server) or real (`nvml`, through NVML and nvidia-smi);
//! - [`clock`]: the run's one clock, simulated or wall time, owned by the backend;
//! - [`gpu_lock`]: one migbench run per GPU, by a lock file per GPU UUID;
//! - [`journal`]: every change made to a GPU, so each can be undone, after a crash too;
//! - [`orchestrator`]: runs each variant's jobs under its mode and records what happened;
//! - [`progress`]: what the terminal shows while a run goes;
//! - [`procfs`]: what Linux's /proc says about a job's processes;
//! - [`sampler`]: VRAM in use, sampled at a fixed interval of the run's clock;
//! - [`serving`]: model servers started as jobs, waited for and stopped;
//! - [`http`]: HTTP/1 on hyper for the simulated server and the metrics endpoint;
//! - [`loadgen`]: the load generator that drives those servers and measures TTFT, TPOT, throughput;
//! - [`fault`]: faults on purpose (`MIGBENCH_FAULT`), for the tests that prove the GPU ends as found.
//!
//! What comes out:
//! - [`results`]: a run's directory — manifest, event log, Parquet tables, logs;
//! - [`report`]: tables and plots of the runs below some directories;
//! - [`compare`]: which variants got worse between two sets of results;
//! - [`fleet`]: many machines — Slurm submission, Prometheus metrics while a run goes,
//!   OpenMetrics files and the history of nightly runs;
//! - [`overlap`]: the most intervals open at once (jobs running, requests in flight).
//!
//! The command line:
//! - [`cli`]: what can be typed;
//! - [`commands`]: one module a subcommand, turning arguments into output;
//! - [`output`]: terminal tables and JSON shared by the commands;
//! - [`error`]: the errors and the exit statuses they map to;
//! - [`version`]: the package version and the commit it was built from.

pub mod advise;
pub mod backend;
pub mod bounds;
pub mod calibrate;
pub mod catalog;
pub mod cdi;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod compare;
pub mod container;
pub mod error;
pub mod fault;
pub mod fleet;
pub mod gpu_lock;
pub mod http;
pub mod import;
pub mod input;
pub mod journal;
pub mod layout;
pub mod loadgen;
pub mod location;
pub mod mode;
pub mod orchestrator;
pub mod output;
pub mod overlap;
pub mod plan;
pub mod procfs;
pub mod progress;
pub mod report;
pub mod results;
pub mod sampler;
pub mod scenario;
pub mod schema;
pub mod serving;
pub mod tool;
pub mod version;
pub mod workload;
