//! The orchestrator: runs a scenario's variants one after another, each under its sharing mode,
//! and records what happened to every job. One code path for every backend.
//!
//! Per variant: check the jobs can fit at all (else the variant is recorded infeasible and
//! skipped), set the GPU up, start each job as its own process group pinned to its device, apply
//! staggers, enforce timeouts, detect OOMs, tear down — also on Ctrl-C or SIGTERM.

mod bookkeeping;
mod dry_run;
mod energy;
mod jobs;
pub mod leftovers;
mod panics;
mod planned;
mod process;
mod record;
mod setup;
mod variant;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::backend::Backend;
use crate::clock::Actor;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::results::stream::PartWriter;
use crate::results::{self, JobRecord, Tables, VariantRecord};
use crate::sampler::SampleTable;
use crate::scenario::Scenario;
use bookkeeping::Books;
pub use dry_run::dry_run;
pub(crate) use panics::panicked;
use panics::panicked_error;
pub use panics::watch_panics;
use variant::VariantRun;

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Run directories go below this.
    pub out_dir: PathBuf,
    /// Time between VRAM samples, on the run's clock (simulated time on the simulator).
    pub sample_interval: Duration,
    /// With the simulator: at most this many simulated seconds per real second.
    pub pace: Option<f64>,
    /// Draw progress bars on stderr (only when it is a terminal).
    pub progress: bool,
    /// The command line, for the manifest.
    pub command: Vec<String>,
    /// Run even when other programs' compute processes use the GPU.
    pub force: bool,
    /// Where GPU lock files live ([`crate::gpu_lock::state_dir`]).
    pub state_dir: PathBuf,
    /// Told every event and sample: `run --metrics-listen`.
    pub live: Option<Arc<crate::fleet::live::Live>>,
    /// Also write `samples.csv` (`run --samples-csv`; the Parquet parts are the data).
    pub samples_csv: bool,
    /// The CDI spec to regenerate with NVIDIA's tool where one does not name a container's
    /// device (`run --cdi-refresh`); without it such a variant fails before its jobs start.
    pub cdi_refresh: Option<PathBuf>,
}

/// What a run produced.
#[derive(Debug)]
pub struct RunReport {
    pub dir: PathBuf,
    pub jobs: Vec<JobRecord>,
    pub variants: Vec<VariantRecord>,
    /// Serving metrics per server and per variant (runs with model servers).
    pub serving: Vec<results::ServingRecord>,
    /// Stopped by Ctrl-C or SIGTERM.
    pub interrupted: bool,
    /// Variants whose GPU setup failed (then undone), with why; the other variants ran.
    pub setup_failures: Vec<Error>,
}

/// Runs every variant of `scenario` on `backend`. `stop` is raised by Ctrl-C or SIGTERM.
pub fn run(
    scenario: &Scenario,
    backend: Arc<dyn Backend>,
    options: &RunOptions,
    stop: &AtomicBool,
) -> Result<RunReport> {
    // The orchestrator acts in turns on the run's clock, like every other actor of the run.
    let actor = backend.clock().actor("orchestrator");
    actor.turn();
    // A Ctrl-C or SIGTERM raises `stop`; the orchestrator, maybe waiting for an instant far
    // ahead, is poked to see it.
    let finished = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let poker = actor.poker();
        let finished = &finished;
        scope.spawn(move || {
            while !finished.load(Ordering::Relaxed) {
                if stop.load(Ordering::Relaxed) || panicked() {
                    // Taken now, even from an actor that holds the turn and will never end it.
                    poker.interrupt();
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let report = run_as(&actor, scenario, backend, options, stop);
        finished.store(true, Ordering::Relaxed);
        report
    })
}

fn run_as(
    actor: &Actor,
    scenario: &Scenario,
    backend: Arc<dyn Backend>,
    options: &RunOptions,
    stop: &AtomicBool,
) -> Result<RunReport> {
    let mut books = Books::open(scenario, backend.as_ref(), options)?;
    let progress = Progress::new(options.progress, scenario);
    // Everything recorded so far; written to disk after every variant.
    let mut records = Tables::default();
    // The samples go to disk as they are taken.
    let samples: SampleTable = Arc::new(std::sync::Mutex::new(PartWriter::create(
        &books.run.path,
        options.samples_csv,
    )));
    let mut outcome = Ok(());
    let mut setup_failures = Vec::new();
    'variants: for variant in &scenario.file.variants {
        for repetition in 1..=variant.repetitions {
            if stop.load(Ordering::Relaxed) {
                break 'variants;
            }
            let ctx = VariantRun {
                scenario,
                variant,
                repetition,
                backend: Arc::clone(&backend),
                t0: books.t0,
                options,
                stop,
                progress: &progress,
                actor,
            };
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                ctx.run(&mut books.run, &mut books.journal, &mut records, &samples)
            }))
            .unwrap_or_else(|panic| {
                // Whatever the variant had set up is undone from the journal.
                let _ = setup::tear_down(backend.as_ref(), &mut books.journal);
                Err(panicked_error(&panic))
            });
            // What was recorded is kept, whatever failed.
            let written = records.write(&books.run.path);
            match result.and_then(|r| written.map(|()| r)) {
                Ok(None) => {}
                // The GPU is back as found, so the other variants can still run.
                Ok(Some(setup_failure)) => setup_failures.push(setup_failure),
                Err(e) => {
                    outcome = Err(e);
                    break 'variants;
                }
            }
            if panicked() {
                break 'variants;
            }
        }
    }
    progress.finish();
    let samples_finished = crate::clock::lock(&samples).finish();
    let requests_finished = books.run.finish_requests();
    if outcome.is_ok() {
        outcome = samples_finished.and(requests_finished);
    }
    if panicked() && outcome.is_ok() {
        outcome = Err(Error::Harness(
            "a migbench thread panicked (its message is above); the jobs were stopped and the \
             GPU put back"
                .into(),
        ));
    }
    let interrupted = stop.load(Ordering::Relaxed);
    let dir = books.run.path.clone();
    books.close(
        backend.as_ref(),
        &mut outcome,
        interrupted,
        setup_failures.is_empty(),
    );
    outcome?;
    Ok(RunReport {
        dir,
        jobs: records.jobs,
        variants: records.variants,
        serving: records.serving,
        interrupted,
        setup_failures,
    })
}

/// The directory scenario-relative paths (a workload's `workdir`) are resolved against.
pub fn scenario_dir(scenario: &Scenario) -> &Path {
    scenario.path.parent().unwrap_or(Path::new("."))
}
