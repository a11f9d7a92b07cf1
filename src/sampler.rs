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
use crate::procfs;

/// Width of the bins in which the constant level is counted.
pub const CONSTANT_BIN_GIB: f64 = 0.25;

/// One sampling instant.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Backend seconds since the run started.
    pub t: f64,
    pub rows: Vec<SampleRow>,
}

/// A running sampler; [`Sampler::stop`] returns what it collected.
pub struct Sampler {
    backend: Arc<dyn Backend>,
    t0: f64,
    every: Every,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    samples: Vec<Sample>,
    groups: ProcessGroups,
    /// Each job's memory at the last sample, by the PID it was started as.
    latest: HashMap<String, f64>,
    /// Also told every sample: the `/metrics` endpoint of `run --metrics-listen`.
    live: Option<Arc<crate::fleet::live::Live>>,
}

impl State {
    /// Takes one sample at `t` (seconds on the clock).
    fn take(&mut self, backend: &dyn Backend, t: f64, t0: f64) {
        let Ok(mut rows) = backend.sample() else {
            return;
        };
        self.groups.fill(&mut rows);
        self.latest.clear();
        for r in rows.iter().filter(|r| r.scope == Scope::Process) {
            *self.latest.entry(r.job_key()).or_default() += r.used_gib;
        }
        if let Some(live) = &self.live {
            live.sample(t - t0, &rows);
        }
        self.samples.push(Sample { t: t - t0, rows });
    }
}

impl Sampler {
    /// Samples `backend` every `interval` on its clock, from now on; `t0` is the run's start.
    pub fn start(backend: Arc<dyn Backend>, interval: Duration, t0: f64) -> Sampler {
        let state = Arc::new(Mutex::new(State::default()));
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

    /// The most recent memory of a job (by the PID it was started as), for progress display.
    pub fn latest(&self, pid: u32) -> Option<f64> {
        lock(&self.state).latest.get(&pid.to_string()).copied()
    }

    /// Stops sampling, with one last sample now so that a job's final level is seen.
    pub fn stop(self) -> Vec<Sample> {
        self.every.stop();
        let mut state = lock(&self.state);
        let now = self.backend.now();
        // Not twice at one instant: the last tick may have been now.
        if state.samples.last().is_none_or(|s| s.t < now - self.t0) {
            state.take(self.backend.as_ref(), now, self.t0);
        }
        std::mem::take(&mut state.samples)
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
    let mut counts: HashMap<i64, usize> = HashMap::new();
    for &l in levels {
        *counts
            .entry((l / CONSTANT_BIN_GIB).round() as i64)
            .or_default() += 1;
    }
    let (bin, _) = counts
        .into_iter()
        .max_by_key(|&(bin, n)| (n, bin))
        .expect("levels is not empty");
    Some((peak, bin as f64 * CONSTANT_BIN_GIB))
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
