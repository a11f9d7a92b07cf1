//! `migbench sample-cost`: what one VRAM sample costs through this machine's NVML, timed as the
//! sampler calls it ([`Backend::sample`]: the GPU, each MIG instance, each process). It is what
//! `cargo bench --bench sampler` measures, for a machine with a GPU and no Rust toolchain (the
//! validation kit, scripts/gpu-validate.sh). It reads the GPU and changes nothing.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::backend::nvml::{self, NvmlBackend};
use crate::backend::{Backend, Scope};
use crate::catalog::Catalog;
use crate::cli::{Format, SampleCostArgs};
use crate::error::{Error, Result};
use crate::output;

#[derive(Debug, Serialize)]
struct Cost {
    gpu: String,
    index: u32,
    samples: usize,
    /// Rows of the first timed sample: the GPU, its MIG instances and the processes on it.
    rows: usize,
    processes: usize,
    mean_ms: f64,
    median_ms: f64,
    p99_ms: f64,
    min_ms: f64,
    max_ms: f64,
}

pub fn run(args: &SampleCostArgs) -> Result<String> {
    if args.samples == 0 {
        return Err(Error::Input("--samples 0: time at least one sample".into()));
    }
    let found = nvml::discover()?
        .into_iter()
        .find(|g| g.index == args.index)
        .ok_or_else(|| Error::Input(format!("no GPU {} on this machine", args.index)))?;
    let key = found.model.clone().map_err(Error::Input)?;
    let model = Catalog::builtin().gpu(&key)?;
    let backend = NvmlBackend::open(model, found.index, None)?;

    // A figure with processes in it, when asked: wait for them to show.
    let deadline = Instant::now() + Duration::from_secs_f64(args.wait_s);
    let processes = |rows: &[crate::backend::SampleRow]| {
        rows.iter().filter(|r| r.scope == Scope::Process).count()
    };
    let mut first = backend.sample()?;
    while processes(&first) < args.wait_processes {
        if Instant::now() >= deadline {
            return Err(Error::Harness(format!(
                "{} process(es) on GPU {} after {} s, waiting for {}",
                processes(&first),
                args.index,
                args.wait_s,
                args.wait_processes
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
        first = backend.sample()?;
    }

    let mut ms = Vec::with_capacity(args.samples);
    let mut rows = None;
    for _ in 0..args.samples {
        let start = Instant::now();
        let sample = backend.sample()?;
        ms.push(start.elapsed().as_secs_f64() * 1000.0);
        rows.get_or_insert((sample.len(), processes(&sample)));
    }
    let (rows, procs) = rows.unwrap_or_default();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    let cost = Cost {
        gpu: found.name,
        index: found.index,
        samples: ms.len(),
        rows,
        processes: procs,
        mean_ms: ms.iter().sum::<f64>() / ms.len() as f64,
        median_ms: at(0.5),
        p99_ms: at(0.99),
        min_ms: ms[0],
        max_ms: ms[ms.len() - 1],
    };
    if args.format.format == Format::Json {
        return output::json(&cost);
    }
    Ok(format!(
        "{} samples of GPU {} ({}), {} rows ({} processes): mean {:.3} ms, median {:.3} ms, \
         p99 {:.3} ms, min {:.3} ms, max {:.3} ms\n",
        cost.samples,
        cost.index,
        cost.gpu,
        cost.rows,
        cost.processes,
        cost.mean_ms,
        cost.median_ms,
        cost.p99_ms,
        cost.min_ms,
        cost.max_ms
    ))
}
