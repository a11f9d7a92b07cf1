//! The orchestrator: runs a scenario's variants one after another, each under its sharing mode,
//! and records what happened to every job. One code path for every backend.
//!
//! Per variant: check the jobs can fit at all (else the variant is recorded infeasible and
//! skipped), set the GPU up, start each job as its own process group pinned to its device, apply
//! staggers, enforce timeouts, detect OOMs, tear down — also on Ctrl-C or SIGTERM.

mod jobs;
pub mod leftovers;
mod setup;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::backend::dry_run::DryRunBackend;
use crate::backend::{Backend, Scope};
use crate::clock::Actor;
use crate::error::{Error, Result};
use crate::gpu_lock::GpuLock;
use crate::journal::{GpuIdentity, Journal};
use crate::mode::SharingMode;
use crate::results::{
    self, InstanceRecord, JobRecord, Manifest, Outcome, RunDir, SampleRecord, Tables, VariantRecord,
};
use crate::sampler::{self, Sampler};
use crate::scenario::{Scenario, Variant};

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
    /// The simulated GPU's state file, when it outlives the process (for the journal).
    pub sim_state: Option<PathBuf>,
    /// Told every event and sample: `run --metrics-listen`.
    pub live: Option<Arc<crate::fleet::live::Live>>,
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

/// Set by the panic hook of [`watch_panics`]: some thread of migbench panicked.
static PANICKED: AtomicBool = AtomicBool::new(false);

/// Makes a panic in any thread stop the run: the jobs are stopped, the GPU put back, the journal
/// closed, and the run fails (exit status 1). The panic's message is still printed.
pub fn watch_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICKED.store(true, Ordering::SeqCst);
            previous(info);
        }));
    });
}

/// Whether a thread has panicked since [`watch_panics`].
pub(crate) fn panicked() -> bool {
    PANICKED.load(Ordering::SeqCst)
}

/// The error a caught panic becomes.
fn panicked_error(panic: &Box<dyn std::any::Any + Send>) -> Error {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    Error::Harness(format!(
        "migbench panicked ({message}); the jobs were stopped and the GPU put back"
    ))
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
    let clock = backend.clock();
    let info = backend.info();
    let found = backend.state()?;
    if !options.force {
        let foreign = backend.foreign_processes()?;
        if !foreign.is_empty() {
            let list: Vec<String> = foreign
                .iter()
                .map(|p| format!("pid {} ({}, {:.1} GiB)", p.pid, p.name, p.used_gib))
                .collect();
            return Err(Error::Input(format!(
                "GPU {} is busy: {} of other programs use it, and they would distort every \
                 figure; stop them, or pass --force to run anyway",
                info.uuid,
                list.join(", ")
            )));
        }
    }
    let mut run = RunDir::create(&options.out_dir, scenario.name())?;
    if let Some(live) = &options.live {
        run.observe(Arc::clone(live));
    }
    // Lock the GPU and start the journal before anything on it changes.
    let journal_path = run.path.join("journal.jsonl");
    let mut lock = match GpuLock::acquire(&options.state_dir, &info.uuid, &journal_path) {
        Ok(lock) => lock,
        Err(e) => {
            // Nothing was recorded yet: leave no empty run directory behind.
            let _ = std::fs::remove_dir_all(&run.path);
            return Err(e);
        }
    };
    let identity = GpuIdentity {
        backend: backend.kind(),
        model: info.model.clone(),
        uuid: info.uuid.clone(),
        index: scenario.file.gpu.index.unwrap_or(0),
        sim_state: options.sim_state.clone(),
    };
    let mut journal = Journal::create(&journal_path, identity, found)?;
    let mut manifest = Manifest {
        scenario: scenario.name().to_string(),
        scenario_file: scenario.path.display().to_string(),
        scenario_sha256: results::sha256_hex(scenario.text.as_bytes()),
        migbench_version: env!("CARGO_PKG_VERSION").to_string(),
        migbench_commit: crate::version::git_commit().to_string(),
        migbench_dirty: crate::version::git_dirty(),
        backend: backend.kind().as_str().to_string(),
        simulated: backend.kind() == crate::backend::BackendKind::Sim,
        clock: if clock.simulated() {
            "simulated"
        } else {
            "monotonic"
        }
        .into(),
        pace: options.pace.filter(|_| clock.simulated()),
        gpu_model: info.model.clone(),
        gpu_name: info.name.clone(),
        gpu_uuid: info.uuid.clone(),
        driver: info.driver.clone(),
        cuda: info.cuda.clone(),
        host: results::hostname(),
        slurm: crate::fleet::slurm::SlurmIds::from_env(),
        command: options.command.clone(),
        started_at: results::now_rfc3339(),
        ended_at: None,
        status: "running".into(),
    };
    run.write_manifest(&manifest)?;
    run.write_file("scenario.toml", scenario.text.as_bytes())?;
    for side in scenario.side_files() {
        let text = std::fs::read(scenario_dir(scenario).join(&side))
            .map_err(|e| Error::Input(format!("cannot read {side}: {e}")))?;
        if let Some(parent) = Path::new(&side).parent() {
            std::fs::create_dir_all(run.path.join(parent))
                .map_err(|e| Error::Harness(format!("cannot copy {side} into the run: {e}")))?;
        }
        run.write_file(&side, &text)?;
    }
    let t0 = backend.now();
    run.event(
        0.0,
        "run_start",
        serde_json::json!({ "scenario": scenario.name(), "backend": manifest.backend }),
    )?;

    let progress = Progress::new(options.progress, scenario);
    // Everything recorded so far; written to disk after every variant.
    let mut records = Tables::default();
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
                t0,
                options,
                stop,
                progress: &progress,
                actor,
            };
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                ctx.run(&mut run, &mut journal, &mut records)
            }))
            .unwrap_or_else(|panic| {
                // Whatever the variant had set up is undone from the journal.
                let _ = setup::tear_down(backend.as_ref(), &mut journal);
                Err(panicked_error(&panic))
            });
            // What was recorded is kept, whatever failed.
            let written = records.write(&run.path);
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
    if panicked() && outcome.is_ok() {
        outcome = Err(Error::Harness(
            "a migbench thread panicked (its message is above); the jobs were stopped and the \
             GPU put back"
                .into(),
        ));
    }
    let interrupted = stop.load(Ordering::Relaxed);
    manifest.ended_at = Some(results::now_rfc3339());
    manifest.status = match (&outcome, interrupted) {
        (Err(_), _) => "failed",
        (Ok(()), true) => "interrupted",
        (Ok(()), false) if setup_failures.is_empty() => "complete",
        (Ok(()), false) => "incomplete",
    }
    .into();
    // Every step of the ending is tried, whatever failed before (a full disk): the first
    // failure is the run's.
    let mut keep = |result: Result<()>| {
        if let Err(e) = result {
            if outcome.is_ok() {
                outcome = Err(e);
            }
        }
    };
    keep(run.event(
        backend.now() - t0,
        "run_end",
        serde_json::json!({ "status": manifest.status }),
    ));
    keep(run.write_manifest(&manifest));
    // A failed teardown leaves the journal open, and the lock naming it, for `migbench restore`.
    if journal.all_undone() {
        keep(journal.close());
        if journal.broken().is_none() {
            if backend.kind() == crate::backend::BackendKind::Sim && options.sim_state.is_none() {
                keep(lock.remove());
            } else {
                keep(lock.clear());
            }
        }
    }
    outcome?;
    Ok(RunReport {
        dir: run.path.clone(),
        jobs: records.jobs,
        variants: records.variants,
        serving: records.serving,
        interrupted,
        setup_failures,
    })
}

/// What `migbench run --dry-run` prints: the setup and teardown of every repetition of every
/// variant, made on `backend` (which prints instead of changing anything) by the same code a
/// real run uses. MPS directories are shown below `$RUN_DIR`, the run directory a real run makes.
pub fn dry_run(scenario: &Scenario, backend: &DryRunBackend) -> Result<Vec<String>> {
    let mut journal = Journal::disabled();
    let info = backend.info();
    backend.comment(&format!(
        "migbench dry run of {}: GPU {} ({}), assumed in its default state (MIG off, no \
         instances, no MPS); nothing is changed",
        scenario.path.display(),
        scenario.file.gpu.index.unwrap_or(0),
        info.name
    ));
    backend.comment(
        "instance IDs are those a driver gives on an empty GPU; a real run reads them back",
    );
    for variant in &scenario.file.variants {
        let name = variant.name.get_ref();
        let layout = scenario.layout(variant);
        let planned = jobs::plan(scenario, variant)?;
        let layout_text = layout
            .as_ref()
            .map(|l| format!(", layout {l}"))
            .unwrap_or_default();
        if let Some(reason) = jobs::infeasible(scenario, variant, layout.as_ref(), &planned) {
            backend.comment(&format!("variant {name}: infeasible, skipped: {reason}"));
            continue;
        }
        for repetition in 1..=variant.repetitions {
            backend.comment(&format!(
                "variant {name} (mode {}{layout_text}), repetition {repetition}: set up",
                variant.mode.get_ref()
            ));
            let mps_root = mps_root(Path::new("$RUN_DIR"), name, repetition);
            setup::set_up(backend, &mut journal, variant, layout.as_ref(), &mps_root)?;
            backend.comment(&format!(
                "variant {name}, repetition {repetition}: {} job(s) run, then tear down",
                planned.len()
            ));
            setup::tear_down(backend, &mut journal)?;
        }
    }
    Ok(backend.take_lines())
}

/// Where the MPS daemons of one repetition of a variant keep their pipes and logs.
fn mps_root(run_dir: &Path, variant: &str, repetition: u32) -> PathBuf {
    run_dir
        .join("mps")
        .join(variant)
        .join(format!("r{repetition}"))
}

/// One repetition of one variant.
struct VariantRun<'a> {
    scenario: &'a Scenario,
    variant: &'a Variant,
    repetition: u32,
    backend: Arc<dyn Backend>,
    t0: f64,
    options: &'a RunOptions,
    stop: &'a AtomicBool,
    progress: &'a Progress,
    /// The orchestrator, on the run's clock.
    actor: &'a Actor,
}

impl VariantRun<'_> {
    fn name(&self) -> &str {
        self.variant.name.get_ref()
    }

    fn mode(&self) -> SharingMode {
        *self.variant.mode.get_ref()
    }

    /// Runs the repetition and records it. `Ok(Some(error))`: setting the GPU up failed, the
    /// setup was undone, and the variant is recorded as `setup_failed` with its jobs `not_run`.
    fn run(
        &self,
        run: &mut RunDir,
        journal: &mut Journal,
        records: &mut Tables,
    ) -> Result<Option<Error>> {
        let backend = self.backend.as_ref();
        let layout = self.scenario.layout(self.variant);
        let planned = jobs::plan(self.scenario, self.variant)?;
        let layout_text = layout.as_ref().map(|l| l.to_string());
        run.event(
            backend.now() - self.t0,
            "variant_start",
            serde_json::json!({ "variant": self.name(), "repetition": self.repetition, "mode": self.mode(), "layout": layout_text }),
        )?;

        if let Some(reason) =
            jobs::infeasible(self.scenario, self.variant, layout.as_ref(), &planned)
        {
            run.event(
                backend.now() - self.t0,
                "variant_infeasible",
                serde_json::json!({ "variant": self.name(), "reason": reason }),
            )?;
            let why = Some(reason.clone());
            let outcome = (Outcome::Infeasible, why);
            self.record_not_run(
                records,
                &planned,
                layout_text,
                outcome,
                "infeasible",
                reason,
            );
            return Ok(None);
        }

        let mps_root = mps_root(&run.path, self.name(), self.repetition);
        let sampler = Sampler::start(
            Arc::clone(&self.backend),
            self.options.sample_interval,
            self.t0,
        );
        if let Some(live) = &self.options.live {
            sampler.watch(Arc::clone(live));
        }
        let setup_result =
            setup::set_up(backend, journal, self.variant, layout.as_ref(), &mps_root);
        let changed = !journal.all_undone();
        let (mut finished, served, jobs_result) = match &setup_result {
            // A panic in here unwinds through the runner, whose running jobs are then killed
            // (see `jobs::Running`'s drop), and ends as an error: the teardown below still runs.
            Ok(()) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if changed {
                    crate::fault::panic_at("after-setup");
                }
                jobs::Runner::new(self, run).map(|r| r.run_all(&planned, &sampler))
            }))
            .unwrap_or_else(|panic| Err(panicked_error(&panic)))
            .unwrap_or_else(|e| (Vec::new(), Default::default(), Err(e))),
            Err(_) => (Vec::new(), Default::default(), Ok(())),
        };
        // Tear down whatever happened: the GPU is left as found.
        let teardown = setup::tear_down(backend, journal);
        let samples = sampler.stop();
        if let Err(e) = setup_result {
            teardown?;
            let reason = format!("GPU setup failed and was undone: {e}");
            let event = run.event(
                backend.now() - self.t0,
                "variant_setup_failed",
                serde_json::json!({ "variant": self.name(), "repetition": self.repetition, "reason": reason }),
            );
            let outcome = (Outcome::NotRun, None);
            self.record_not_run(
                records,
                &planned,
                layout_text,
                outcome,
                "setup_failed",
                reason,
            );
            // A journal that could not be written is the harness failing, not the setup.
            return match journal.broken() {
                Some(why) => Err(Error::Harness(why.to_string())),
                None => event.map(|()| Some(e)),
            };
        }

        // What ran is recorded whatever failed since.
        attach_vram(&mut finished, &samples);
        let interrupted = self.stop.load(Ordering::Relaxed);
        let first = records.jobs.len();
        records.jobs.extend(finished);
        let (requests, serving) =
            jobs::serving_rows(self, &planned, &records.jobs[first..], &served);
        records.requests.extend(requests);
        records.serving.extend(serving);
        for s in &samples {
            for r in &s.rows {
                records.samples.push(SampleRecord {
                    t: s.t,
                    variant: self.name().to_string(),
                    repetition: self.repetition,
                    scope: r.scope.as_str().to_string(),
                    id: r.id.clone(),
                    label: r.label.clone(),
                    used_gib: r.used_gib,
                    capacity_gib: r.capacity_gib,
                    utilization_pct: r.utilization_pct,
                });
            }
        }
        records.instances.extend(self.instance_peaks(&samples));
        let status = match (&jobs_result, interrupted) {
            (Err(_), _) => "failed",
            (Ok(()), true) => "interrupted",
            (Ok(()), false) => "ran",
        };
        let reason = jobs_result.as_ref().err().map(|e| e.to_string());
        let summary = self.summary(
            layout_text,
            &records.jobs[first..],
            &samples,
            status,
            reason,
        );
        let event = run.event(
            backend.now() - self.t0,
            "variant_end",
            serde_json::json!({ "variant": self.name(), "repetition": self.repetition, "status": status, "makespan_s": summary.makespan_s }),
        );
        records.variants.push(summary);
        jobs_result?;
        teardown?;
        event.map(|()| None)
    }

    /// Records a repetition that ran no job: each planned job with `outcome` (and its reason),
    /// the variant with `status` and `reason`.
    fn record_not_run(
        &self,
        records: &mut Tables,
        planned: &[jobs::PlannedJob],
        layout: Option<String>,
        (outcome, job_reason): (Outcome, Option<String>),
        status: &str,
        reason: String,
    ) {
        let not_run: Vec<JobRecord> = planned
            .iter()
            .map(|job| self.record(job, outcome, job_reason.clone()))
            .collect();
        self.progress.skip(planned.len());
        let summary = self.summary(layout, &not_run, &[], status, Some(reason));
        records.variants.push(summary);
        records.jobs.extend(not_run);
    }

    /// The peak of the whole GPU and of each MIG instance over the variant.
    fn instance_peaks(&self, samples: &[sampler::Sample]) -> Vec<InstanceRecord> {
        let mut peaks: Vec<InstanceRecord> = Vec::new();
        let rows = samples.iter().flat_map(|s| s.rows.iter());
        for r in rows.filter(|r| r.scope != Scope::Process) {
            match peaks.iter_mut().find(|p| p.instance == r.label) {
                Some(p) => p.vram_peak_gib = p.vram_peak_gib.max(r.used_gib),
                None => peaks.push(InstanceRecord {
                    variant: self.name().to_string(),
                    repetition: self.repetition,
                    instance: r.label.clone(),
                    uuid: r.id.clone(),
                    capacity_gib: r.capacity_gib,
                    vram_peak_gib: r.used_gib,
                }),
            }
        }
        peaks
    }

    /// A job record for a job that did not run.
    fn record(
        &self,
        job: &jobs::PlannedJob,
        outcome: Outcome,
        reason: Option<String>,
    ) -> JobRecord {
        JobRecord {
            variant: self.name().to_string(),
            repetition: self.repetition,
            job: job.index,
            mode: self.mode().to_string(),
            workload: job.workload.name.clone(),
            unit: job.workload.unit.clone(),
            instance_profile: None,
            instance_uuid: None,
            start: None,
            end: None,
            duration_s: None,
            exit_code: None,
            pid: None,
            outcome: outcome.as_str().to_string(),
            vram_peak_gib: None,
            vram_constant_gib: None,
            reason,
            log: None,
        }
    }

    fn summary(
        &self,
        layout: Option<String>,
        jobs: &[JobRecord],
        samples: &[sampler::Sample],
        status: &str,
        reason: Option<String>,
    ) -> VariantRecord {
        let count = |o: Outcome| jobs.iter().filter(|j| j.outcome == o.as_str()).count() as u32;
        let start = jobs
            .iter()
            .filter_map(|j| j.start)
            .fold(f64::INFINITY, f64::min);
        let end = jobs
            .iter()
            .filter_map(|j| j.end)
            .fold(f64::NEG_INFINITY, f64::max);
        let makespan = (end > start).then_some(end - start);
        // A server's unit is a request: the serving table counts those, not the server jobs.
        let batch = |j: &&JobRecord| {
            self.scenario
                .workload(&j.workload)
                .is_ok_and(|w| w.kind != crate::workload::WorkloadKind::Server)
        };
        let has_batch = jobs.iter().any(|j| batch(&j));
        let units = jobs
            .iter()
            .filter(batch)
            .filter(|j| j.outcome == Outcome::Ok.as_str())
            .count() as u32;
        let gpu_peak = samples
            .iter()
            .flat_map(|s| s.rows.iter())
            .filter(|r| r.scope == Scope::Gpu)
            .map(|r| r.used_gib)
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
        VariantRecord {
            variant: self.name().to_string(),
            repetition: self.repetition,
            mode: self.mode().to_string(),
            layout,
            backend: self.backend.kind().as_str().to_string(),
            status: status.to_string(),
            reason,
            jobs: jobs.len() as u32,
            jobs_ok: count(Outcome::Ok),
            jobs_oom: count(Outcome::Oom),
            jobs_failed: count(Outcome::Failed)
                + count(Outcome::Timeout)
                + count(Outcome::NotReady),
            makespan_s: makespan,
            units,
            time_per_unit_s: makespan.filter(|_| units > 0).map(|m| m / f64::from(units)),
            units_per_hour: makespan
                .filter(|m| *m > 0.0 && has_batch)
                .map(|m| f64::from(units) * 3600.0 / m),
            gpu_vram_peak_gib: gpu_peak,
        }
    }
}

/// Fills each job's peak and constant VRAM from its processes' samples while it ran.
fn attach_vram(jobs: &mut [JobRecord], samples: &[sampler::Sample]) {
    for job in jobs.iter_mut() {
        let (Some(pid), Some(start), Some(end)) = (job.pid, job.start, job.end) else {
            continue;
        };
        // At each instant, the memory of all the job's processes together.
        let key = pid.to_string();
        let levels: Vec<f64> = samples
            .iter()
            .filter(|s| s.t >= start && s.t <= end)
            .filter_map(|s| {
                let mut mine = s
                    .rows
                    .iter()
                    .filter(|r| r.scope == Scope::Process && r.job_key() == key)
                    .peekable();
                mine.peek()?;
                Some(mine.map(|r| r.used_gib).sum())
            })
            .collect();
        if let Some((peak, constant)) = sampler::peak_and_constant(&levels) {
            job.vram_peak_gib = Some(peak);
            job.vram_constant_gib = Some(constant);
        }
    }
}

/// Progress on stderr: an overall bar and a line per running job.
pub struct Progress {
    multi: MultiProgress,
    overall: ProgressBar,
}

impl Progress {
    fn new(enabled: bool, scenario: &Scenario) -> Progress {
        let target = if enabled {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(planned_jobs(scenario)));
        overall.set_style(
            ProgressStyle::with_template("{prefix:.bold} [{bar:30}] {pos}/{len} jobs  {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        overall.set_prefix(scenario.name().to_string());
        Progress { multi, overall }
    }

    /// A line for one running job.
    fn job_line(&self, label: String) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("  {spinner} {prefix} {msg}").expect("valid template"),
        );
        bar.set_prefix(label);
        bar
    }

    /// The run's clock reads `t` seconds after the run started (simulated seconds if
    /// `simulated`).
    fn at(&self, t: f64, simulated: bool) {
        let (h, m, s) = ((t / 3600.0) as u64, (t / 60.0) as u64 % 60, t as u64 % 60);
        let what = if simulated { " simulated" } else { "" };
        self.overall
            .set_message(format!("t = {h:02}:{m:02}:{s:02}{what}"));
    }

    fn job_done(&self, bar: &ProgressBar) {
        bar.finish_and_clear();
        self.multi.remove(bar);
        self.overall.inc(1);
    }

    fn skip(&self, n: usize) {
        self.overall.inc(n as u64);
    }

    fn finish(&self) {
        self.overall.finish();
    }
}

/// Jobs the scenario plans, over every variant and repetition.
pub fn planned_jobs(scenario: &Scenario) -> u64 {
    scenario
        .file
        .variants
        .iter()
        .map(|v| u64::from(v.repetitions) * v.jobs.iter().map(|g| u64::from(g.count)).sum::<u64>())
        .sum()
}

/// The directory scenario-relative paths (a workload's `workdir`) are resolved against.
pub fn scenario_dir(scenario: &Scenario) -> &Path {
    scenario.path.parent().unwrap_or(Path::new("."))
}
