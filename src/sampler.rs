//! The VRAM sampler: asks the backend for memory in use at a fixed interval of the run's clock
//! ([`crate::clock::Clock::every`]): every so many milliseconds of wall time on hardware (from a
//! thread of its own), every so many simulated milliseconds on the simulator (at each instant
//! after every actor has acted at it, so no peak between two events is missed).
//!
//! Per job it derives the **peak** (the largest sample) and the **constant** level: the level the
//! job holds most of its run, defined as the most frequent value among its samples after rounding
//! to [`CONSTANT_BIN_GIB`] (the mode of the sampled levels; ties go to the higher level). A job
//! that loads weights, computes for minutes and spikes briefly in its VAE decode has its
//! compute-phase level as constant and its spike as peak.
//!
//! A job's memory is that of every process in its process group (see [`SampleRow::group`]), so a
//! server whose engine runs in a child process is measured whole.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::backend::{Backend, SampleRow, Scope};
use crate::clock::{lock, Every};
use crate::error::{Error, Result};
use crate::procfs;
use crate::results::stream::PartWriter;
use crate::results::SampleRecord;

/// Width of the bins in which the constant level is counted.
pub const CONSTANT_BIN_GIB: f64 = 0.25;

/// The run's `samples` table, shared by the samplers of its variants.
pub type SampleTable = Arc<Mutex<PartWriter<SampleRecord>>>;

/// Where a sampler's rows go: the run's table, tagged with the variant repetition.
pub struct SampleOut {
    pub table: SampleTable,
    pub variant: String,
    pub repetition: u32,
}

/// A running sampler: every sample goes to the run's `samples` table as it is taken, and only
/// what the variant's records need is kept ([`Summary`]), so memory does not grow with the
/// run's length. [`Sampler::stop`] returns the summary.
pub struct Sampler {
    backend: Arc<dyn Backend>,
    t0: f64,
    every: Every,
    state: Arc<Mutex<State>>,
}

struct State {
    out: SampleOut,
    summary: Summary,
    groups: ProcessGroups,
    /// Each job's memory at the last sample, by the PID it was started as.
    latest: HashMap<String, f64>,
    /// The time of the last sample (run seconds).
    last_t: Option<f64>,
    /// The first error writing the table: the variant fails with it when the sampler stops.
    failed: Option<Error>,
    /// Also told every sample: the `/metrics` endpoint of `run --metrics-listen`.
    live: Option<Arc<crate::fleet::live::Live>>,
}

impl State {
    /// Takes one sample at `t` (seconds on the clock).
    fn take(&mut self, backend: &dyn Backend, t: f64, t0: f64) {
        let Ok(mut rows) = backend.sample() else {
            return;
        };
        let t = t - t0;
        self.groups.fill(&mut rows);
        self.latest.clear();
        for r in rows.iter().filter(|r| r.scope == Scope::Process) {
            *self.latest.entry(r.job_key()).or_default() += r.used_gib;
        }
        if let Some(live) = &self.live {
            live.sample(t, &rows);
        }
        self.summary.add(t, &rows, &self.latest);
        self.last_t = Some(t);
        if self.failed.is_some() {
            return;
        }
        let mut table = lock(&self.out.table);
        for r in &rows {
            let row = SampleRecord::of(t, &self.out.variant, self.out.repetition, r);
            if let Err(e) = table.push(row) {
                self.failed = Some(e);
                return;
            }
        }
    }
}

impl Sampler {
    /// Samples `backend` every `interval` on its clock, from now on, into `out`; `t0` is the
    /// run's start.
    pub fn start(
        backend: Arc<dyn Backend>,
        interval: Duration,
        t0: f64,
        out: SampleOut,
    ) -> Sampler {
        let state = Arc::new(Mutex::new(State {
            out,
            summary: Summary::default(),
            groups: ProcessGroups::default(),
            latest: HashMap::new(),
            last_t: None,
            failed: None,
            live: None,
        }));
        let (tick_backend, tick_state) = (Arc::clone(&backend), Arc::clone(&state));
        let every = backend.clock().every(
            interval.as_secs_f64(),
            Box::new(move |t| lock(&tick_state).take(tick_backend.as_ref(), t, t0)),
        );
        Sampler {
            backend,
            t0,
            every,
            state,
        }
    }

    /// Tells `live` every sample from now on.
    pub fn watch(&self, live: Arc<crate::fleet::live::Live>) {
        lock(&self.state).live = Some(live);
    }

    /// The processes of the container whose ID the engine writes to `cidfile` count towards the
    /// job started as `pid` (its engine's client): NVML lists them by host PID, and they are
    /// not in the client's process group.
    pub fn container_job(&self, cidfile: std::path::PathBuf, pid: u32) {
        lock(&self.state).groups.containers.push(ContainerJob {
            cidfile,
            id: None,
            pid,
        });
    }

    /// The job started as `pid` at `start` (run seconds): its levels count from then on.
    pub fn job_started(&self, pid: u32, start: f64) {
        let mut state = lock(&self.state);
        let last_t = state.last_t;
        state.summary.started(pid.to_string(), start, last_t);
    }

    /// The job started as `pid` ended at `end`: samples after that are not its.
    pub fn job_ended(&self, pid: u32, end: f64) {
        lock(&self.state).summary.ended_at(&pid.to_string(), end);
    }

    /// Integrates the GPU's power from `t` (run seconds) on, until [`Sampler::power_until`].
    pub fn power_from(&self, t: f64) {
        lock(&self.state).summary.power.from = Some(t);
    }

    pub fn power_until(&self, t: f64) {
        let summary = &mut lock(&self.state).summary;
        summary.power.until = Some(t);
        for activity in summary.activity.values_mut() {
            activity.until = Some(t);
        }
    }

    /// The most recent memory of a job (by the PID it was started as), for progress display.
    pub fn latest(&self, pid: u32) -> Option<f64> {
        lock(&self.state).latest.get(&pid.to_string()).copied()
    }

    /// Stops sampling, with one last sample now so that a job's final level is seen, and
    /// writes what the table holds of it; the summary, or the error writing the table.
    pub fn stop(self) -> Result<Summary> {
        self.every.stop();
        let mut state = lock(&self.state);
        let now = self.backend.now();
        // Not twice at one instant: the last tick may have been now.
        if state.last_t.is_none_or(|t| t < now - self.t0) {
            state.take(self.backend.as_ref(), now, self.t0);
        }
        if let Some(e) = state.failed.take() {
            return Err(e);
        }
        lock(&state.out.table).flush()?;
        Ok(std::mem::take(&mut state.summary))
    }
}

/// What a variant's records need of its samples, kept as they are taken: the peaks of the GPU
/// and of each instance, and each job's levels while it ran.
#[derive(Debug, Default)]
pub struct Summary {
    /// The peak of the whole GPU and of each MIG instance, in the order first sampled.
    pub instances: Vec<InstancePeak>,
    /// The peak of the whole GPU.
    pub gpu_peak: Option<f64>,
    /// Whether any process was ever listed.
    pub process_rows: bool,
    /// By job key ([`SampleRow::job_key`]).
    jobs: HashMap<String, JobLevels>,
    /// Jobs started and not yet past their end, by key: `(start, end)`.
    open: HashMap<String, (f64, Option<f64>)>,
    /// The GPU's power integrated over the variant's jobs.
    pub power: WindowIntegral,
    /// Each MIG instance's share of SMs busy (GPM), integrated over the same window, by UUID:
    /// only instances whose rows carry it.
    pub activity: HashMap<String, WindowIntegral>,
}

/// A sampled figure integrated (trapezoids) over a window of run seconds, in constant room
/// however long the window: the GPU's power (joules, the energy where a GPU has no energy
/// counter), or a MIG instance's share of SMs busy (busy seconds).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct WindowIntegral {
    from: Option<f64>,
    until: Option<f64>,
    /// The last sample in the window, `(t, value)`, and the first one's time.
    last: Option<(f64, f64)>,
    first_t: Option<f64>,
    pub total: f64,
}

impl WindowIntegral {
    /// Counts samples from `from` to `until` (run seconds).
    pub fn between(from: f64, until: Option<f64>) -> WindowIntegral {
        WindowIntegral {
            from: Some(from),
            until,
            ..WindowIntegral::default()
        }
    }

    pub fn add(&mut self, t: f64, value: f64) {
        let Some(from) = self.from else { return };
        if t < from || self.until.is_some_and(|until| t > until) || !value.is_finite() {
            return;
        }
        if let Some((t0, v0)) = self.last {
            self.total += (t - t0).max(0.0) * (v0 + value) / 2.0;
        }
        self.first_t.get_or_insert(t);
        self.last = Some((t, value));
    }

    /// Seconds between the first and last samples in the window, when there were two or more.
    pub fn seconds(&self) -> Option<f64> {
        let (last, first) = (self.last?.0, self.first_t?);
        (last > first).then_some(last - first)
    }
}

/// The peak of one instance (or the whole GPU, labelled `GPU`).
#[derive(Debug, Clone, PartialEq)]
pub struct InstancePeak {
    pub label: String,
    pub uuid: String,
    pub capacity_gib: Option<f64>,
    pub peak_gib: f64,
}

/// One job's levels: counted per [`CONSTANT_BIN_GIB`] bin, so they take the same room however
/// long the job runs.
#[derive(Debug, Default)]
struct JobLevels {
    /// Levels while the job ran (or, before it is known to have started, since first seen).
    bins: HashMap<i64, usize>,
    peak: Option<f64>,
    first_t: Option<f64>,
    /// Whether a sample was taken while it ran.
    sampled: bool,
    /// Whether a process of it was ever listed, and whether every listing was as a plain
    /// compute process (never an MPS client).
    listed: bool,
    all_plain: bool,
    /// Told its end: not counted once past it.
    closed: bool,
}

impl Summary {
    fn add(&mut self, t: f64, rows: &[SampleRow], levels: &HashMap<String, f64>) {
        for r in rows.iter().filter(|r| r.scope != Scope::Process) {
            if r.scope == Scope::Gpu {
                self.gpu_peak = Some(self.gpu_peak.map_or(r.used_gib, |p| p.max(r.used_gib)));
                if let Some(watts) = r.power_w {
                    self.power.add(t, watts);
                }
            }
            if let (Scope::Instance, Some(pct), Some(from)) =
                (r.scope, r.utilization_pct, self.power.from)
            {
                let until = self.power.until;
                self.activity
                    .entry(r.id.clone())
                    .or_insert_with(|| WindowIntegral::between(from, until))
                    .add(t, pct / 100.0);
            }
            match self.instances.iter_mut().find(|p| p.label == r.label) {
                Some(p) => p.peak_gib = p.peak_gib.max(r.used_gib),
                None => self.instances.push(InstancePeak {
                    label: r.label.clone(),
                    uuid: r.id.clone(),
                    capacity_gib: r.capacity_gib,
                    peak_gib: r.used_gib,
                }),
            }
        }
        for r in rows.iter().filter(|r| r.scope == Scope::Process) {
            self.process_rows = true;
            let job = self.jobs.entry(r.job_key()).or_default();
            job.all_plain = (!job.listed || job.all_plain) && r.mps_client == Some(false);
            job.listed = true;
        }
        // Windows that ended before now close; open ones saw a sample.
        self.open
            .retain(|_, (_, end)| end.is_none_or(|end| t <= end));
        for (key, &(start, _)) in &self.open {
            if t >= start {
                self.jobs.entry(key.clone()).or_default().sampled = true;
            }
        }
        for (key, &level) in levels {
            let within = match self.open.get(key) {
                Some(&(start, _)) => t >= start,
                // Not known to have started yet (its start is told just after it is), or
                // ended: a job's key is counted while it is open only.
                None => !self.ended(key),
            };
            if within {
                let job = self.jobs.entry(key.clone()).or_default();
                job.first_t.get_or_insert(t);
                job.peak = Some(job.peak.map_or(level, |p| p.max(level)));
                *job.bins
                    .entry((level / CONSTANT_BIN_GIB).round() as i64)
                    .or_default() += 1;
            }
        }
    }

    /// Whether the job of `key` was started and has ended.
    fn ended(&self, key: &str) -> bool {
        self.jobs.get(key).is_some_and(|j| j.closed)
    }

    /// The job of `key` started at `start`; the last sample was at `last_t`.
    fn started(&mut self, key: String, start: f64, last_t: Option<f64>) {
        let job = self.jobs.entry(key.clone()).or_default();
        // Levels of an earlier process of the same PID are not this job's.
        if job.first_t.is_some_and(|t| t < start) {
            job.bins.clear();
            job.peak = None;
            job.first_t = None;
        }
        // Samples come in time order: one since `start` was taken while it ran.
        job.sampled = last_t.is_some_and(|t| t >= start);
        job.closed = false;
        self.open.insert(key, (start, None));
    }

    fn ended_at(&mut self, key: &str, end: f64) {
        if let Some((_, e)) = self.open.get_mut(key) {
            *e = Some(end);
        }
        if let Some(job) = self.jobs.get_mut(key) {
            job.closed = true;
        }
    }

    /// Peak and constant VRAM of the job started as `pid`, over the samples while it ran.
    pub fn job_vram(&self, pid: u32) -> Option<(f64, f64)> {
        let job = self.jobs.get(&pid.to_string())?;
        Some((job.peak?, constant_of(&job.bins)?))
    }

    /// Whether a sample was taken while the job started as `pid` ran.
    pub fn sampled_while_running(&self, pid: u32) -> bool {
        self.jobs.get(&pid.to_string()).is_some_and(|j| j.sampled)
    }

    /// Whether NVML listed the job started as `pid`, and only ever as plain compute processes.
    pub fn only_outside_mps(&self, pid: u32) -> bool {
        self.jobs
            .get(&pid.to_string())
            .is_some_and(|j| j.listed && j.all_plain)
    }
}
impl SampleRow {
    /// The PID of the job a process row counts towards: its group's leader, else itself.
    pub fn job_key(&self) -> String {
        self.group
            .map_or_else(|| self.id.clone(), |g| g.to_string())
    }
}

/// Process groups by PID, read once per process from /proc; a process in a job's container
/// counts towards the job.
#[derive(Default)]
struct ProcessGroups {
    groups: HashMap<String, Option<u32>>,
    containers: Vec<ContainerJob>,
}

/// A job's container: its ID once the engine has written it.
struct ContainerJob {
    cidfile: std::path::PathBuf,
    id: Option<String>,
    pid: u32,
}

impl ProcessGroups {
    fn fill(&mut self, rows: &mut [SampleRow]) {
        for r in rows.iter_mut().filter(|r| r.scope == Scope::Process) {
            if let Some(known) = self.groups.get(&r.id) {
                r.group = *known;
                continue;
            }
            let pid: Option<u32> = r.id.parse().ok();
            let in_container = pid.and_then(crate::container::container_of);
            let group = match in_container {
                // Not known until the container's job is: asked again at the next sample.
                Some(id) => match self.container_job(&id) {
                    Some(job) => Some(job),
                    None => {
                        r.group = None;
                        continue;
                    }
                },
                None => pid.and_then(procfs::process_group),
            };
            self.groups.insert(r.id.clone(), group);
            r.group = group;
        }
    }

    /// The job (the PID it was started as) whose container has ID `id`.
    fn container_job(&mut self, id: &str) -> Option<u32> {
        for c in &mut self.containers {
            if c.id.is_none() {
                c.id = std::fs::read_to_string(&c.cidfile)
                    .ok()
                    .map(|t| t.trim().to_ascii_lowercase())
                    .filter(|t| !t.is_empty());
            }
            if c.id.as_deref() == Some(id) {
                return Some(c.pid);
            }
        }
        None
    }
}

/// Peak and constant VRAM of one series of levels (GiB), if it has any samples.
pub fn peak_and_constant(levels: &[f64]) -> Option<(f64, f64)> {
    let peak = levels
        .iter()
        .copied()
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))?;
    let mut bins: HashMap<i64, usize> = HashMap::new();
    for &l in levels {
        *bins
            .entry((l / CONSTANT_BIN_GIB).round() as i64)
            .or_default() += 1;
    }
    Some((peak, constant_of(&bins)?))
}

/// The most held level of levels counted by bin (ties go to the higher level).
fn constant_of(bins: &HashMap<i64, usize>) -> Option<f64> {
    let (bin, _) = bins.iter().max_by_key(|&(bin, n)| (n, bin))?;
    Some(*bin as f64 * CONSTANT_BIN_GIB)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_is_the_most_held_level_and_peak_the_maximum() {
        // Load at 0, hold 21 for most of the run, spike to 33, back to 21.
        let mut levels = vec![0.0, 21.0, 21.0, 21.0, 21.0, 21.1, 20.9, 33.0, 33.0, 21.0];
        levels.extend([21.0; 10]);
        assert_eq!(peak_and_constant(&levels), Some((33.0, 21.0)));
    }

    #[test]
    fn ties_go_to_the_higher_level_and_empty_has_none() {
        assert_eq!(peak_and_constant(&[5.0, 5.0, 8.0, 8.0]), Some((8.0, 8.0)));
        assert_eq!(peak_and_constant(&[]), None);
    }
}
