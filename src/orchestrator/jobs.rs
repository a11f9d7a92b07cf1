//! Jobs of one variant: when each may start, where it may run, and running them as process
//! groups with staggers, queues, timeouts and OOM detection.

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::planned::{allowed_slots, PlannedJob};
use super::process::{kill_group, watch_exit, Running};
use super::VariantRun;
use crate::backend::{Device, JobLaunch, JobRequest};
use crate::clock::Wake;
use crate::container::{self, Container, ContainerSpec, Owner};
use crate::error::Result;
use crate::journal::Journal;
use crate::mode::SharingMode;
use crate::results::ServingRecord;
use crate::results::{JobRecord, Outcome, RunDir};
use crate::sampler::Sampler;
use crate::serving::record::{self, Recorder, VariantInfo};
use crate::serving::{Servers, ServingRun, Stop};
use crate::workload::{reports_oom, Workload};

/// On the wall clock, the longest the orchestrator waits before it looks again (a Ctrl-C is
/// noticed within it); the progress lines are redrawn as often.
const WALL_LOOK_S: f64 = 0.1;

/// The `serving` rows of a variant repetition whose jobs (`records`) ran.
pub fn serving_rows(
    ctx: &VariantRun,
    planned: &[PlannedJob],
    records: &[JobRecord],
    served: &ServingRun,
) -> Vec<ServingRecord> {
    let mut servers: Vec<usize> = planned
        .iter()
        .filter(|j| j.workload.kind == crate::workload::WorkloadKind::Server)
        .map(|j| j.index)
        .collect();
    servers.sort_unstable();
    let info = VariantInfo {
        variant: ctx.name(),
        repetition: ctx.repetition,
        mode: ctx.mode(),
        backend: ctx.backend.kind(),
        price_per_hour: ctx
            .scenario
            .file
            .gpu
            .price_per_hour
            .as_ref()
            .map(|p| p.amount),
    };
    record::rows(&info, &servers, records, served)
}

/// Runs the jobs of one variant repetition.
pub struct Runner<'a, 'v> {
    ctx: &'a VariantRun<'v>,
    run: &'a mut RunDir,
    /// Where each container is journaled before it is created, and when it is gone.
    journal: &'a mut Journal,
    done: Vec<JobRecord>,
    /// The variant's model servers and their load.
    servers: Servers,
}

/// Job IDs unique within the process, for the backend's bookkeeping.
static NEXT_JOB_ID: AtomicU64 = AtomicU64::new(1);

impl<'a, 'v> Runner<'a, 'v> {
    pub fn new(
        ctx: &'a VariantRun<'v>,
        run: &'a mut RunDir,
        journal: &'a mut Journal,
    ) -> Result<Self> {
        let load = ctx.scenario.load_for(ctx.variant);
        let recorder = Recorder::new(ctx.name(), ctx.repetition, load, run.requests());
        let servers = Servers::new(
            ctx.actor,
            ctx.t0,
            load,
            super::scenario_dir(ctx.scenario),
            recorder,
        )?;
        Ok(Runner {
            ctx,
            run,
            journal,
            done: Vec::new(),
            servers,
        })
    }

    fn now(&self) -> f64 {
        self.ctx.backend.now() - self.ctx.t0
    }

    /// Runs every job; returns their records (in start order), what their servers served, and
    /// whether the harness failed meanwhile (a write error): then the jobs still running were
    /// stopped, and what had finished is in the records.
    pub fn run_all(
        mut self,
        planned: &[PlannedJob],
        sampler: &Sampler,
    ) -> (Vec<JobRecord>, ServingRun, Result<()>) {
        let devices = match self.ctx.backend.devices() {
            Ok(devices) => devices,
            Err(e) => return (Vec::new(), ServingRun::default(), Err(e)),
        };
        let mode = self.ctx.mode();
        // One job per device at a time for the whole GPU and for MIG; any number under
        // time-slicing and MPS.
        let exclusive = matches!(mode, SharingMode::Full | SharingMode::Mig);
        // Under mig+mps jobs are spread over their instances up front.
        let spread: Vec<Option<usize>> = planned
            .iter()
            .enumerate()
            .map(|(k, job)| {
                (mode == SharingMode::MigMps).then(|| {
                    let allowed = allowed_slots(job, devices.len());
                    allowed[k % allowed.len()]
                })
            })
            .collect();

        // Instants are compared on the clock as it reads, never after arithmetic that could round
        // them: a wake at a job's start must find it due.
        let clock = self.ctx.backend.clock();
        let variant_start = clock.now();
        let due = |job: &PlannedJob| variant_start + job.earliest;
        let mut pending: VecDeque<usize> = (0..planned.len()).collect();
        let mut running: Vec<Running> = Vec::new();
        let mut last_draw: Option<Instant> = None;
        let wall = !clock.simulated();
        let mut failure = None;
        loop {
            if self.ctx.stop.load(Ordering::Relaxed) || failure.is_some() || super::panicked() {
                for r in running.drain(..) {
                    self.stop_and_record(r, planned, Some(Outcome::Interrupted), sampler);
                }
                for k in pending.drain(..) {
                    let record = self.ctx.job_record(
                        &planned[k],
                        Outcome::Interrupted,
                        Some("not started: the run was interrupted".into()),
                    );
                    self.done.push(record);
                }
                break;
            }
            // Reap finished jobs and enforce timeouts.
            let now = clock.now();
            let mut still = Vec::with_capacity(running.len());
            for mut r in running.drain(..) {
                let exited = matches!(r.child.try_wait(), Ok(Some(_)));
                let deadline = planned[r.job].timeout.map(|t| r.started_at + t);
                if exited {
                    self.stop_and_record(r, planned, None, sampler);
                } else if deadline.is_some_and(|d| now >= d) {
                    r.timed_out = true;
                    self.stop_and_record(r, planned, None, sampler);
                } else {
                    still.push(r);
                }
            }
            running = still;
            // Servers whose load is done, or that never got ready, are stopped now.
            for (k, stop) in self.servers.poll() {
                if let Some(at) = running.iter().position(|r| r.job == k) {
                    let mut r = running.remove(at);
                    let outcome = match stop {
                        Stop::Served => Outcome::Ok,
                        Stop::NotReady(reason) => {
                            r.not_ready = Some(reason);
                            Outcome::NotReady
                        }
                    };
                    self.stop_and_record(r, planned, Some(outcome), sampler);
                }
            }
            // Start the jobs whose time has come and that have a place to run.
            let now = clock.now();
            let mut waiting = VecDeque::new();
            while let Some(k) = pending.pop_front() {
                let job = &planned[k];
                let slot = if due(job) > now {
                    None
                } else if let Some(s) = spread[k] {
                    Some(s)
                } else {
                    allowed_slots(job, devices.len())
                        .into_iter()
                        .find(|&s| !exclusive || !running.iter().any(|r| r.slot == s))
                };
                match slot.map(|s| self.launch(k, job, s, &devices[s])) {
                    Some(Ok(Some(r))) => {
                        sampler.job_started(r.pid, r.start);
                        // Its processes are the container's, not the client's children: they
                        // count towards the job by the container's cgroup.
                        if let Some(file) = r.container.as_ref().and_then(|c| c.cidfile.clone()) {
                            sampler.container_job(file, r.pid);
                        }
                        running.push(r);
                        crate::fault::panic_at("job-started");
                    }
                    Some(Ok(None)) => {}
                    Some(Err(e)) => {
                        failure = Some(e);
                        waiting.push_back(k);
                        break;
                    }
                    None => waiting.push_back(k),
                }
            }
            if failure.is_some() {
                pending.extend(waiting);
                continue;
            }
            pending = waiting;
            if pending.is_empty() && running.is_empty() {
                break;
            }
            if last_draw.is_none_or(|t| t.elapsed() >= Duration::from_millis(100)) {
                last_draw = Some(Instant::now());
                self.ctx.progress.at(self.now(), !wall);
                for r in &running {
                    let vram = sampler
                        .latest(r.pid)
                        .map_or_else(|| "-".into(), |g| format!("{g:.1} GiB"));
                    r.bar
                        .set_message(format!("{:.0} s, {vram}", self.now() - r.start));
                    r.bar.tick();
                }
            }
            // Sleep until the next start or timeout; a job's end, a server's event and a
            // Ctrl-C poke the orchestrator before that.
            let now = clock.now();
            let next_start = pending
                .iter()
                .map(|&k| due(&planned[k]))
                .filter(|&t| t > now);
            let next_timeout = running
                .iter()
                .filter_map(|r| planned[r.job].timeout.map(|t| r.started_at + t));
            let mut next = next_start.chain(next_timeout).fold(f64::INFINITY, f64::min);
            if wall {
                next = next.min(now + WALL_LOOK_S);
            }
            let wake = if next.is_finite() {
                Wake::At(next)
            } else {
                Wake::Never
            };
            self.ctx.actor.sleep(wake);
        }
        self.done.sort_by(|a, b| {
            a.start_s
                .unwrap_or(f64::MAX)
                .total_cmp(&b.start_s.unwrap_or(f64::MAX))
                .then(a.job.cmp(&b.job))
        });
        let served = self.servers.finish(self.ctx.actor);
        (self.done, served, failure.map_or(Ok(()), Err))
    }

    /// Starts job `k` on `device`; records a job that cannot even start as failed.
    fn launch(
        &mut self,
        k: usize,
        job: &PlannedJob,
        slot: usize,
        device: &Device,
    ) -> Result<Option<Running>> {
        let ctx = self.ctx;
        let id = NEXT_JOB_ID.fetch_add(1, Ordering::Relaxed);
        let log = self.run.job_log(ctx.name(), ctx.repetition, job.index)?;
        let started_at = ctx.backend.now();
        let start = started_at - ctx.t0;
        let mut container = None;
        let mut container_fields = None;
        let spawned = ctx
            .backend
            .launch(&JobRequest {
                id,
                workload: &job.workload,
                device,
            })
            .and_then(|mut launch| {
                let port = self
                    .servers
                    .prepare(
                        (k, job.index, id),
                        &job.workload,
                        device.profile.as_deref(),
                        &mut launch,
                    )?;
                // A container workload: its engine's client is the job's process (or, on the
                // simulator, the simulated job stands for it). Named before it is created.
                let run_name = self.run_name();
                let cid_dir = self.run.path.join("containers");
                let runs = ctx.backend.runs_containers();
                if let Some(c) = container_launch(
                    ctx.scenario,
                    ctx.name(),
                    ctx.repetition,
                    &run_name,
                    runs.then_some(cid_dir.as_path()),
                    job,
                    device,
                    &launch.env,
                )? {
                    // `{port}` in `ports` (and the image's arguments) is the server's port.
                    let mut c = c;
                    if let Some(port) = port {
                        for arg in &mut c.argv {
                            *arg = arg.replace(Workload::PORT, &port.to_string());
                        }
                    }
                    if ctx.backend.runs_containers() {
                        self.journal.made(c.container.made(&c.run))?;
                        self.run.event(
                            start,
                            "container_create",
                            serde_json::json!({
                                "variant": ctx.name(), "repetition": ctx.repetition, "job": job.index,
                                "engine": c.container.engine, "name": c.container.name,
                                "run": c.run, "argv": c.argv,
                            }),
                        )?;
                        launch = JobLaunch {
                            argv: c.argv.clone(),
                            env: Vec::new(),
                            cwd: None,
                        };
                        container = Some(c.container.clone());
                    }
                    container_fields = Some(serde_json::json!({
                        "engine": c.container.engine, "name": c.container.name, "argv": c.argv,
                        "simulated": !ctx.backend.runs_containers(),
                    }));
                }
                let out = File::create(&log).map_err(|e| {
                    crate::error::Error::Harness(format!("cannot create {}: {e}", log.display()))
                })?;
                let err = out
                    .try_clone()
                    .map_err(|e| crate::error::Error::Harness(e.to_string()))?;
                let mut cmd = Command::new(&launch.argv[0]);
                cmd.args(&launch.argv[1..]);
                // A container's environment is on its engine's command line.
                if container.is_none() {
                    cmd.envs(&job.workload.env);
                }
                cmd.envs(launch.env.iter().map(|(k, v)| (k, v)))
                    .stdin(Stdio::null())
                    .stdout(out)
                    .stderr(err)
                    // Its own process group: Ctrl-C reaches migbench, which stops jobs in order,
                    // and a timeout kills the job's children too.
                    .process_group(0);
                if let Some(cwd) = &launch.cwd {
                    cmd.current_dir(super::scenario_dir(ctx.scenario).join(cwd));
                }
                cmd.spawn()
                    .map(|child| (child, launch.argv.clone()))
                    .map_err(|e| {
                        crate::error::Error::Input(format!("cannot start {}: {e}", launch.argv[0]))
                    })
            });
        match spawned {
            Ok((child, argv)) => {
                let pid = child.id();
                let reaped = Arc::new(AtomicBool::new(false));
                watch_exit(
                    pid,
                    id,
                    Arc::clone(&ctx.backend),
                    ctx.actor.poker(),
                    Arc::clone(&reaped),
                );
                self.servers.started(k);
                let bar = ctx.progress.job_line(format!(
                    "{} #{} {} on {}",
                    ctx.name(),
                    job.index,
                    job.workload.name,
                    device.label
                ));
                let running = Running {
                    job: k,
                    id,
                    reaped,
                    backend: Arc::clone(&ctx.backend),
                    child,
                    pid,
                    container: container.clone(),
                    device: device.clone(),
                    slot,
                    start,
                    started_at,
                    log,
                    bar,
                    timed_out: false,
                    not_ready: None,
                };
                // A start that cannot be recorded (a full disk) is undone: dropping the job
                // kills it (see `Running`'s drop).
                self.run.event(
                    start,
                    "job_start",
                    serde_json::json!({
                        "variant": ctx.name(), "repetition": ctx.repetition, "job": job.index,
                        "workload": job.workload.name, "device": device.uuid, "instance": device.label,
                        "pid": pid, "argv": argv, "container": container_fields,
                    }),
                )?;
                Ok(Some(running))
            }
            Err(e) => {
                // Whatever the backend set up for the job goes with it, its container too.
                if let Some(c) = &container {
                    self.remove_container(c);
                }
                ctx.backend.job_ended(id);
                let mut record = ctx.job_record(job, Outcome::Failed, Some(e.to_string()));
                record.start_s = Some(start);
                record.end_s = Some(start);
                record.duration_s = Some(0.0);
                self.run.event(start, "job_end", job_end_fields(&record))?;
                self.done.push(record);
                ctx.progress.skip(1);
                Ok(None)
            }
        }
    }

    /// Removes a job's container and journals it gone; one that stays is said, and left in the
    /// journal for the run's end and `restore` to remove.
    fn remove_container(&mut self, c: &Container) {
        let run = self.run_name();
        match c.remove() {
            // A journal that cannot be written shows at the variant's end.
            Ok(()) => {
                let _ = self.journal.cleared(&c.made(&run));
            }
            Err(e) => eprintln!("migbench: warning: cannot remove container {}: {e}", c.name),
        }
    }

    /// The run's label: its directory's name.
    fn run_name(&self) -> String {
        self.run
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Stops (if still running) and records a job. `forced` is the outcome when migbench ends it.
    fn stop_and_record(
        &mut self,
        mut r: Running,
        planned: &[PlannedJob],
        forced: Option<Outcome>,
        sampler: &Sampler,
    ) {
        self.servers.ended(r.job);
        let forced = forced.or(r.timed_out.then_some(Outcome::Timeout));
        let status = match r.child.try_wait() {
            Ok(Some(status)) => Some(status),
            _ => {
                // The engine stops the container (SIGTERM, then SIGKILL); its client then ends.
                if let Some(c) = &r.container {
                    c.stop();
                }
                kill_group(&mut r.child)
            }
        };
        // The container's own log, then the container goes, whatever ended the job.
        let container_log = r.container.as_ref().map(|c| {
            let log = c.logs();
            self.remove_container(c);
            log
        });
        r.forget();
        let end = self.now();
        sampler.job_ended(r.pid, end);
        let job = &planned[r.job];
        let exit_code = status.map(|s| s.code().unwrap_or_else(|| -s.signal().unwrap_or(0)));
        let mut log_text = std::fs::read_to_string(&r.log).unwrap_or_default();
        // What the container wrote, as its engine kept it, where its client did not pass it on
        // (a client killed, detached or cut short).
        if let Some(container_log) = container_log {
            if !log_text.contains(container_log.trim()) {
                log_text.push('\n');
                log_text.push_str(&container_log);
            }
        }
        let outcome = match forced {
            Some(o) => o,
            None if status.is_some_and(|s| s.success()) => Outcome::Ok,
            None if reports_oom(&log_text, &job.workload.oom_patterns()) => Outcome::Oom,
            None => Outcome::Failed,
        };
        let reason = match outcome {
            Outcome::Ok => None,
            Outcome::Timeout => Some(format!(
                "killed after its timeout of {:.0} s",
                job.timeout.unwrap_or_default()
            )),
            Outcome::Interrupted => Some("stopped: the run was interrupted".into()),
            Outcome::NotReady => r.not_ready.take(),
            _ => last_line(&log_text),
        };
        let mut record = self.ctx.job_record(job, outcome, reason);
        record.instance_profile = r.device.profile.clone();
        record.instance_uuid = Some(r.device.uuid.clone());
        record.start_s = Some(r.start);
        record.end_s = Some(end);
        record.duration_s = Some(end - r.start);
        record.exit_code = exit_code;
        record.pid = Some(r.pid);
        record.log = r
            .log
            .strip_prefix(&self.run.path)
            .ok()
            .map(|p| p.display().to_string());
        // The event log is the durable record: a run that dies keeps every finished job.
        let _ = self.run.event(end, "job_end", job_end_fields(&record));
        self.ctx.progress.job_done(&r.bar);
        self.done.push(record);
    }
}

/// A container job's engine command line and the container it makes.
pub(super) struct ContainerLaunch {
    pub(super) container: Container,
    pub(super) argv: Vec<String>,
    /// The run's label: its directory's name.
    pub(super) run: String,
}

/// The container launch of `job` (of repetition `repetition` of variant `variant`, in run
/// `run`) on `device` with the launch's environment `env` (ports filled in), if its workload is a
/// container image. `cid_dir`: where the engine writes the container's ID, when it runs.
#[allow(clippy::too_many_arguments)]
pub(super) fn container_launch(
    scenario: &crate::scenario::Scenario,
    variant: &str,
    repetition: u32,
    run: &str,
    cid_dir: Option<&std::path::Path>,
    job: &PlannedJob,
    device: &Device,
    env: &[(String, String)],
) -> Result<Option<ContainerLaunch>> {
    let w = &job.workload;
    let Some(image) = &w.image else {
        return Ok(None);
    };
    let engine = scenario.engine_for(w);
    let gpu_request = w
        .gpu_request
        .unwrap_or_else(|| engine.default_gpu_request());
    let owner = Owner {
        run,
        variant,
        repetition,
        job: job.index,
        workload: &w.name,
    };
    let name = owner.name();
    let cidfile = match cid_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| {
                crate::error::Error::Harness(format!("cannot create {}: {e}", dir.display()))
            })?;
            Some(dir.join(format!("{name}.cid")))
        }
        None => None,
    };
    let spec = ContainerSpec {
        engine,
        gpu_request,
        image,
        command: &w.command,
        ports: &w.ports,
        volumes: &w.volumes,
        options: &w.engine_options,
    };
    // The backend's launch carries the device's environment and the workload's, filled in.
    let mut env = env.to_vec();
    for (k, v) in &w.env {
        if !env.iter().any(|(e, _)| e == k) {
            env.push((k.clone(), v.clone()));
        }
    }
    let argv = container::run_argv(&spec, &owner, device, &env, cidfile.as_deref());
    Ok(Some(ContainerLaunch {
        container: Container {
            engine,
            name,
            cidfile,
        },
        argv,
        run: run.to_string(),
    }))
}

fn job_end_fields(r: &JobRecord) -> serde_json::Value {
    serde_json::json!({
        "variant": r.variant, "repetition": r.repetition, "job": r.job, "workload": r.workload,
        "instance": r.instance_uuid, "start": r.start_s, "end": r.end_s, "duration_s": r.duration_s,
        "exit_code": r.exit_code, "pid": r.pid, "outcome": r.outcome, "reason": r.reason,
    })
}

/// The last non-empty line of a log, shortened: the usual place a program says why it failed.
fn last_line(log: &str) -> Option<String> {
    let line = log.lines().rev().map(str::trim).find(|l| !l.is_empty())?;
    Some(line.chars().take(300).collect())
}
