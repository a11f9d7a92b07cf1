//! migbench: should inference jobs share a GPU through MPS, be split into MIG instances, or run
//! one at a time on the whole GPU?
//!
//! The crate reads like the pipeline it implements:
//! - [`catalog`]: the GPU models and their MIG profiles, as data;
//! - [`layout`]: MIG layouts — validation, placement, enumeration, waste figures;
//! - [`workload`]: what a job runs and the memory and time it needs;
//! - [`plan`]: how many copies fit under each [`mode::SharingMode`];
//! - [`cli`] and [`commands`]: the `migbench` command line.

pub mod advise;
pub mod backend;
pub mod bounds;
pub mod calibrate;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod compare;
pub mod error;
pub mod fault;
pub mod gpu_lock;
pub mod journal;
pub mod layout;
pub mod loadgen;
pub mod mode;
pub mod orchestrator;
pub mod output;
pub mod plan;
pub mod procfs;
pub mod report;
pub mod results;
pub mod sampler;
pub mod scenario;
pub mod schema;
pub mod serving;
pub mod synth;
pub mod version;
pub mod workload;
