//! The simulated GPU: the same MIG rules, memory pools, OOMs and compute sharing as hardware,
//! with jobs that are real OS processes (`migbench synth`) following a workload's sim profile.
//!
//! Simulated time advances by events ([`clock`]): every job is an actor that takes turns on the
//! simulator's clock through its socket, so a simulated hour takes as long as its events take to
//! process, and the figures depend only on the scenario. Every figure the simulator produces is
//! simulated and labelled `backend = sim`.

pub mod clock;
pub mod engine;
pub(crate) mod gpu;
pub mod protocol;
pub mod server;
pub mod sharing;
pub mod synth;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clock::SimWorld;
use gpu::{SavedGpu, SimGpu};
use protocol::{Reply, Request, Until};

use super::{
    Backend, BackendKind, Change, Device, ForeignProcess, GpuInfo, GpuState, JobLaunch, JobRequest,
    SampleRow, Scope,
};
use crate::catalog::{Catalog, GpuModel};
use crate::clock::{Clock, Wake};
use crate::error::{Error, Result};
use crate::workload::Workload;

/// Work assumed for a workload without a measured full-GPU time.
pub(crate) const DEFAULT_WORK_S: f64 = 60.0;

/// The simulator behind the [`Backend`] interface.
pub struct SimBackend {
    world: Arc<SimWorld>,
    clock: Clock,
    socket: PathBuf,
    synth_exe: PathBuf,
    /// Where the GPU's configuration is saved after every change, when it outlives the process.
    state_file: Option<PathBuf>,
}

/// `migbench-sim-<PID>-<N>.sock`: the socket of the Nth simulated GPU of process PID.
const SOCKET_PREFIX: &str = "migbench-sim-";

impl SimBackend {
    /// Starts a simulated `model`, its time moving at most `pace` simulated seconds per real
    /// second (as fast as events allow when `None`). Jobs run as `synth_exe synth ...` (the
    /// migbench binary).
    pub fn start(
        model: &'static GpuModel,
        pace: Option<f64>,
        synth_exe: PathBuf,
    ) -> Result<SimBackend> {
        SimBackend::start_on(SimGpu::fresh(model), pace, synth_exe, None)
    }

    /// Like [`SimBackend::start`], on the simulated GPU saved in `state_file` (a new one if the
    /// file does not exist yet). Changes are saved there as they are made, so the GPU outlives
    /// this process — crashes included — as a real one would.
    pub fn start_saved(
        model: &'static GpuModel,
        pace: Option<f64>,
        synth_exe: PathBuf,
        state_file: &Path,
    ) -> Result<SimBackend> {
        let mut new = false;
        let gpu = match crate::input::read_to_string(state_file, crate::input::SMALL_JSON) {
            Ok(text) => {
                let saved: SavedGpu = serde_json::from_str(&text).map_err(|e| {
                    Error::Input(format!(
                        "{}:{}:{}: not a simulated GPU state: {}",
                        state_file.display(),
                        e.line(),
                        e.column(),
                        crate::location::json_error(&text, &e)
                    ))
                })?;
                if saved.model != model.key {
                    return Err(Error::Input(format!(
                        "{} holds a simulated {}, not a {}",
                        state_file.display(),
                        saved.model,
                        model.key
                    )));
                }
                SimGpu::restore(model, &saved)?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                new = true;
                SimGpu::fresh(model)
            }
            Err(e) => {
                return Err(Error::Input(format!(
                    "cannot read {}: {e}",
                    state_file.display()
                )))
            }
        };
        let backend = SimBackend::start_on(gpu, pace, synth_exe, Some(state_file.to_path_buf()))?;
        // Only a new GPU is written now: rewriting an existing one before this run holds the
        // GPU's lock could put back a state that the run holding it has since changed (a second
        // run, refused a moment later, did so while the first was making its layout).
        if new {
            backend.save()?;
        }
        Ok(backend)
    }

    fn save(&self) -> Result<()> {
        let Some(path) = &self.state_file else {
            return Ok(());
        };
        let text = serde_json::to_string_pretty(&self.world.lock().gpu.save())
            .expect("simulated GPU state serializes");
        // Write then rename, so a crash never leaves half a file; the temporary file is this
        // process's own, so that two processes never rename each other's.
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| Error::Harness(format!("cannot save {}: {e}", path.display())))
    }

    /// Removes the sockets in the temp directory of simulated GPUs whose process is gone: a run
    /// killed with `kill -9` cannot remove its own (`migbench restore` calls this). The paths
    /// removed.
    pub fn remove_stale_sockets() -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let pid = name
                .to_str()
                .and_then(|n| n.strip_prefix(SOCKET_PREFIX)?.strip_suffix(".sock"))
                .and_then(|rest| rest.split_once('-')?.0.parse::<u32>().ok());
            let is_socket = entry.file_type().is_ok_and(|t| {
                use std::os::unix::fs::FileTypeExt;
                t.is_socket()
            });
            if pid.is_some_and(|pid| is_socket && !crate::procfs::is_running(pid))
                && std::fs::remove_file(entry.path()).is_ok()
            {
                removed.push(entry.path());
            }
        }
        removed
    }

    fn start_on(
        gpu: SimGpu,
        pace: Option<f64>,
        synth_exe: PathBuf,
        state_file: Option<PathBuf>,
    ) -> Result<SimBackend> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Unix socket paths are limited to ~100 bytes, so the socket lives in the temp directory.
        let socket =
            std::env::temp_dir().join(format!("{SOCKET_PREFIX}{}-{n}.sock", std::process::id()));
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket).map_err(|e| {
            Error::Harness(format!(
                "cannot open the simulator socket {}: {e}",
                socket.display()
            ))
        })?;
        let world = SimWorld::start(gpu, pace);
        let server_world = Arc::clone(&world);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let world = Arc::clone(&server_world);
                std::thread::spawn(move || serve(&world, stream));
            }
        });
        Ok(SimBackend {
            clock: Clock::new(Arc::clone(&world) as Arc<dyn crate::clock::TimeKeeper>),
            world,
            socket,
            synth_exe,
            state_file,
        })
    }
}

impl SimBackend {
    /// Tells the simulated GPU about a job before its process starts.
    fn register(&self, job: &JobRequest, work_s: f64, reference_sm: u32) {
        let sim_job = SimGpu::new_job(
            job.device.uuid.clone(),
            work_s,
            &job.workload.sim,
            reference_sm,
        );
        self.world.register_job(job.id, sim_job);
    }
}

impl Drop for SimBackend {
    fn drop(&mut self) {
        self.world.shut_down();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Answers one connection: a simulated job, which takes its turns through it, or a server's
/// HTTP side poking its engine. A job's end is not learnt here but from its process ending
/// ([`Backend::process_exited`]).
fn serve(world: &SimWorld, stream: UnixStream) {
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut job_id = None;
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        let reply = match serde_json::from_str::<Request>(&line) {
            Err(e) => Reply::Error {
                message: format!("bad request: {e}"),
            },
            Ok(request) => match handle(world, &mut job_id, request) {
                Some(reply) => reply,
                // The job ended while it waited for a turn: nobody is left to answer.
                None => break,
            },
        };
        let text = serde_json::to_string(&reply).expect("replies serialize");
        if writeln!(writer, "{text}").is_err() {
            break;
        }
    }
}

/// Job `id`'s turn as it sees it.
fn turn(world: &SimWorld, id: u64, until: Option<Until>) -> Reply {
    let w = world.lock();
    let now = w.now();
    let Some(j) = w.gpu.jobs.get(&id) else {
        return Reply::Error {
            message: format!("job {id} has ended"),
        };
    };
    let mut fraction = if j.work_s > 0.0 {
        (j.done_s / j.work_s).min(1.0)
    } else {
        1.0
    };
    // Woken for a fraction of its work, a job has done exactly that (not a rounding short).
    if let Some(Until::Fraction { fraction: f }) = until {
        if j.done_s >= f * j.work_s {
            fraction = fraction.max(f.min(1.0));
        }
    }
    Reply::Turn {
        now,
        done_s: j.done_s,
        fraction,
        reached: Vec::new(),
    }
}

/// Answers one request; `None` when the job is gone.
fn handle(world: &SimWorld, job_id: &mut Option<u64>, request: Request) -> Option<Reply> {
    let reply = match (request, *job_id) {
        (Request::Poke { job }, _) => {
            world.poke_job(job);
            Reply::Ok
        }
        (Request::Hello { job, pid }, None) => {
            // The process says hello at its first turn, and acts only in its turns.
            if !world.job_turn(job) {
                return Some(Reply::Error {
                    message: format!("job {job} is not registered with the simulated GPU"),
                });
            }
            *job_id = Some(job);
            let mut w = world.lock();
            if let Some(j) = w.gpu.jobs.get_mut(&job) {
                j.pid = Some(pid);
                j.active = true;
            }
            w.gpu.recompute_rates();
            drop(w);
            turn(world, job, None)
        }
        (Request::Alloc { gib }, Some(id)) => match world.lock().gpu.allocate(id, gib) {
            Ok(()) => Reply::Ok,
            // The job dies of this error; its memory goes when its process has ended.
            Err(oom) => Reply::Oom {
                requested_gib: oom.requested_gib,
                capacity_gib: oom.capacity_gib,
                free_gib: oom.free_gib,
                in_use_gib: oom.in_use_gib,
            },
        },
        (Request::Active { active }, Some(id)) => {
            let mut w = world.lock();
            if let Some(j) = w.gpu.jobs.get_mut(&id) {
                j.active = active;
            }
            w.gpu.recompute_rates();
            Reply::Ok
        }
        (Request::Wait { until, holds }, Some(id)) => {
            let wake = {
                let w = world.lock();
                let work_s = w.gpu.jobs.get(&id).map_or(0.0, |j| j.work_s);
                let now = w.now();
                match until {
                    Until::Fraction { fraction } => Wake::Work {
                        job: id,
                        done_s: fraction * work_s,
                    },
                    Until::Work { done_s } => Wake::Work { job: id, done_s },
                    Until::After { seconds } => Wake::At(now + seconds.max(0.0)),
                    Until::Poked => Wake::Never,
                }
            };
            world.job_release(id, wake, holds);
            if !world.job_turn(id) {
                return None;
            }
            turn(world, id, Some(until))
        }
        (Request::Run { done_s, holds }, Some(id)) => {
            if done_s.is_empty() || done_s.iter().any(|d| !d.is_finite()) {
                return Some(Reply::Error {
                    message: "a run needs finite amounts of work".into(),
                });
            }
            world.job_release_run(id, &done_s, holds);
            if !world.job_turn(id) {
                return None;
            }
            let mut reply = turn(world, id, None);
            if let Reply::Turn { reached, .. } = &mut reply {
                *reached = world.take_reached(id);
            }
            reply
        }
        (_, None) => Reply::Error {
            message: "say hello first".into(),
        },
        (Request::Hello { .. }, Some(_)) => Reply::Error {
            message: "hello twice".into(),
        },
    };
    Some(reply)
}

impl Backend for SimBackend {
    fn state_file(&self) -> Option<PathBuf> {
        self.state_file.clone()
    }

    /// A simulated GPU outlives the run only when it is saved in a file.
    fn outlives_run(&self) -> bool {
        self.state_file.is_some()
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Sim
    }

    fn info(&self) -> GpuInfo {
        let gpu = &self.world.lock().gpu;
        GpuInfo {
            model: gpu.model.key.clone(),
            name: gpu.model.name.clone(),
            uuid: gpu.uuid.clone(),
            driver: None,
            cuda: None,
            mig_enabled: gpu.mig_enabled,
        }
    }

    fn clock(&self) -> Clock {
        self.clock.clone()
    }

    fn process_exited(&self, job: u64) {
        self.world.process_exited(job);
    }

    fn job_ended(&self, job: u64) {
        self.world.job_ended(job);
    }

    fn state(&self) -> Result<GpuState> {
        Ok(self.world.lock().gpu.state())
    }

    fn in_effect(&self, change: &Change) -> Result<bool> {
        Ok(self.world.lock().gpu.in_effect(change))
    }

    fn foreign_processes(&self) -> Result<Vec<ForeignProcess>> {
        Ok(self.world.lock().gpu.foreign.clone())
    }

    fn apply(&self, change: &Change) -> Result<()> {
        self.apply_to_gpu(change)?;
        self.save()
    }

    fn devices(&self) -> Result<Vec<Device>> {
        Ok(self.world.lock().gpu.devices())
    }

    fn runs_containers(&self) -> bool {
        false
    }

    fn launch(&self, job: &JobRequest) -> Result<JobLaunch> {
        let w = job.workload;
        let num = |v: f64| format!("{v}");
        let mut argv = vec![self.synth_exe.display().to_string()];
        if let Some(server) = &w.sim.server {
            // A model server: its work never ends; it streams tokens at its share of the SMs.
            let reference_sm = Catalog::builtin().gpu(&server.reference_gpu)?.sm_count;
            let fraction = server.fraction_in(&w.command).map_err(Error::Input)?;
            self.register(job, f64::INFINITY, reference_sm);
            let model = w.server.as_ref().and_then(|s| s.model.clone());
            let profile = serde_json::to_string(server).expect("profiles serialize");
            argv.extend([
                "sim-server".into(),
                "--socket".into(),
                self.socket.display().to_string(),
                "--job".into(),
                job.id.to_string(),
                "--port".into(),
                Workload::PORT.into(),
                "--device-gib".into(),
                num(job.device.pool_gib),
                "--memory-fraction".into(),
                num(fraction),
                "--model".into(),
                model.unwrap_or_else(|| w.name.clone()),
                "--profile".into(),
                profile,
            ]);
        } else {
            let (work_s, reference_sm) = match &w.timing {
                Some(t) => (
                    t.full_gpu_s,
                    Catalog::builtin()
                        .gpu(&t.reference_gpu)
                        .map(|g| g.sm_count)?,
                ),
                None => (DEFAULT_WORK_S, self.world.lock().gpu.model.sm_count),
            };
            self.register(job, work_s, reference_sm);
            argv.extend([
                "synth".into(),
                "--socket".into(),
                self.socket.display().to_string(),
                "--job".into(),
                job.id.to_string(),
                "--constant-gib".into(),
                num(w.memory.constant_gib),
                "--peak-gib".into(),
                num(w.memory.peak_gib),
                "--peak-at".into(),
                num(w.sim.peak_at),
                "--peak-for".into(),
                num(w.sim.peak_for),
            ]);
            if let Some(fail_at) = w.sim.fail_at {
                argv.extend(["--fail-at".into(), num(fail_at)]);
            }
            if let Some(trace) = &w.sim.memory_trace {
                let json = serde_json::to_string(trace).expect("numbers serialize");
                argv.extend(["--memory-trace".into(), json]);
            }
        }
        Ok(JobLaunch {
            argv,
            env: job.device.job_env(),
            cwd: None,
        })
    }

    fn sample(&self) -> Result<Vec<SampleRow>> {
        let world = self.world.lock();
        let gpu = &world.gpu;
        let mut rows = vec![SampleRow {
            scope: Scope::Gpu,
            id: gpu.uuid.clone(),
            label: "GPU".into(),
            used_gib: gpu.jobs.values().map(|j| j.memory_gib).sum(),
            capacity_gib: Some(gpu.model.memory_gib()),
            utilization_pct: None,
            power_w: Some(gpu.power_w()),
            group: None,
            mps_client: None,
        }];
        for gi in &gpu.gis {
            let pool = gi.pool();
            rows.push(SampleRow {
                scope: Scope::Instance,
                id: gi.cis.first().map_or_else(String::new, |c| c.uuid.clone()),
                used_gib: gpu.pool_used(&pool, None),
                label: pool,
                capacity_gib: Some(gi.profile.memory_gib),
                utilization_pct: None,
                power_w: None,
                group: None,
                mps_client: None,
            });
        }
        for job in gpu.jobs.values() {
            if let Some(pid) = job.pid {
                rows.push(SampleRow::process(pid, job.device.clone(), job.memory_gib));
            }
        }
        Ok(rows)
    }

    fn energy_j(&self) -> Option<f64> {
        let mut world = self.world.lock();
        let now = world.now();
        world.gpu.advance(now);
        Some(world.gpu.energy_j())
    }
}

impl SimBackend {
    /// Makes a change on the simulated GPU, with the MPS daemon's directories and log.
    fn apply_to_gpu(&self, change: &Change) -> Result<()> {
        let mut world = self.world.lock();
        let gpu = &mut world.gpu;
        match change {
            Change::StartMps {
                device, log_dir, ..
            } => {
                // Only the log, in the run directory: a simulated daemon makes no sockets, and
                // its pipe directory would be outside the run directory (/tmp/mb-…).
                create_dirs(&[log_dir])?;
                gpu.apply(change)?;
                append_log(
                    log_dir,
                    &format!("simulated MPS control daemon started for {device}"),
                )
            }
            Change::StopMps {
                device, log_dir, ..
            } => {
                gpu.apply(change)?;
                append_log(
                    log_dir,
                    &format!("simulated MPS control daemon quit for {device}"),
                )
            }
            _ => gpu.apply(change),
        }
    }
}

fn create_dirs(dirs: &[&PathBuf]) -> Result<()> {
    for d in dirs {
        std::fs::create_dir_all(d)
            .map_err(|e| Error::Harness(format!("cannot create {}: {e}", d.display())))?;
    }
    Ok(())
}

fn append_log(dir: &Path, line: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("control.log"))
        .map_err(|e| {
            Error::Harness(format!(
                "cannot write the MPS log in {}: {e}",
                dir.display()
            ))
        })?;
    writeln!(f, "{line}").map_err(|e| Error::Harness(e.to_string()))
}
