//! One configuration simulated in-process: the simulator's own GPU ([`SimGpu`]: MIG rules,
//! memory pools, OOMs, the sharing models) and the memory curve `migbench synth` replays, driven
//! by a small event loop that places jobs as the orchestrator does (in order of earliest start,
//! on the first free allowed slot under `full` and `mig`, on the first allowed slot under
//! time-slicing and MPS, spread over their slots under `mig+mps`). No process, no socket, no
//! clock thread: the same physics at the cost of a few hundred floating-point events, which is
//! what lets `advise` try every configuration. `tests/advise.rs` checks it against `run --sim`.

use std::collections::BTreeMap;

use crate::backend::sim::gpu::{MpsDaemon, SimGpu};
use crate::catalog::{Catalog, GpuModel};
use crate::layout::Layout;
use crate::mode::SharingMode;
use crate::workload::{MemoryCurve, Workload};

/// Seconds of a workload without `[timing]`, as the simulator assumes.
const DEFAULT_WORK_S: f64 = crate::backend::sim::DEFAULT_WORK_S;

/// One way of running the jobs.
#[derive(Debug, Clone)]
pub struct Config<'g> {
    pub mode: SharingMode,
    pub layout: Option<Layout<'g>>,
    pub thread_percentage: Option<u8>,
    pub pinned_gib: Option<f64>,
    /// Seconds between successive job starts: the workloads of the mix take turns, in `order`.
    pub stagger_s: f64,
    /// Per workload of the mix, its place in the turn of starts (0 first).
    pub order: Vec<usize>,
    /// Per workload of the mix, the slots its jobs may use (all when `None`).
    pub allowed: Vec<Option<Vec<usize>>>,
}

/// What one job did.
#[derive(Debug, Clone, PartialEq)]
pub struct JobResult {
    pub workload: usize,
    pub earliest: f64,
    pub start: f64,
    pub end: f64,
    pub oom: bool,
}

/// What a configuration did.
#[derive(Debug, Clone)]
pub struct Simulated {
    pub jobs: Vec<JobResult>,
    /// The fullest any pool (or MPS pinned limit) got, as a fraction of its capacity.
    pub fullest: f64,
    /// Slots the layout offers (1 without MIG).
    pub slots: usize,
    /// The whole GPU's energy to the last job's end, by the simulator's power model, in J.
    pub energy_j: f64,
}

impl Simulated {
    pub fn makespan(&self) -> f64 {
        self.jobs.iter().map(|j| j.end).fold(0.0, f64::max)
    }
    pub fn ok(&self) -> usize {
        self.jobs.iter().filter(|j| !j.oom).count()
    }
    pub fn oom(&self) -> usize {
        self.jobs.len() - self.ok()
    }
}

/// When copy `k` of workload `w` may start: the `(k * mix + order[w])`-th turn.
pub fn earliest(config: &Config, w: usize, k: u32) -> f64 {
    let mix = config.order.len() as f64;
    (f64::from(k) * mix + config.order[w] as f64) * config.stagger_s
}

/// Jobs in the order the orchestrator plans them: group by group (one group per workload of the
/// mix, `copies` jobs each), then by earliest start.
fn planned(copies: u32, config: &Config) -> Vec<(usize, f64)> {
    let mut jobs: Vec<(usize, usize, f64)> = Vec::new();
    for w in 0..config.order.len() {
        for k in 0..copies {
            jobs.push((jobs.len(), w, earliest(config, w, k)));
        }
    }
    jobs.sort_by(|a, b| a.2.total_cmp(&b.2).then(a.0.cmp(&b.0)));
    jobs.into_iter().map(|(_, w, t)| (w, t)).collect()
}

struct Running {
    k: usize,
    id: u64,
    slot: usize,
    /// The fraction of its work at which it next acts.
    target: f64,
}

/// Simulates `copies` of the mix under `config` on `gpu`.
pub fn simulate(
    gpu: &'static GpuModel,
    mix: &[&Workload],
    copies: u32,
    config: &Config,
) -> Simulated {
    let mut sim = SimGpu::new(gpu);
    set_up(&mut sim, config);
    let devices = sim.devices();
    let jobs = planned(copies, config);
    let curves: Vec<MemoryCurve> = mix.iter().map(|w| w.memory_curve()).collect();
    let exclusive = matches!(config.mode, SharingMode::Full | SharingMode::Mig);
    let allowed = |w: usize| -> Vec<usize> {
        match &config.allowed[w] {
            Some(a) => a.iter().copied().filter(|&s| s < devices.len()).collect(),
            None => (0..devices.len()).collect(),
        }
    };
    let spread: Vec<Option<usize>> = jobs
        .iter()
        .enumerate()
        .map(|(k, &(w, _))| {
            let a = allowed(w);
            (config.mode == SharingMode::MigMps && !a.is_empty()).then(|| a[k % a.len()])
        })
        .collect();
    let mut results: BTreeMap<usize, JobResult> = BTreeMap::new();
    let mut pending: Vec<usize> = (0..jobs.len()).collect();
    let mut running: Vec<Running> = Vec::new();
    let mut fullest: f64 = 0.0;
    let mut now = 0.0;
    let end_job = |sim: &mut SimGpu,
                   results: &mut BTreeMap<usize, JobResult>,
                   r: &Running,
                   now: f64,
                   oom: bool| {
        sim.jobs.remove(&r.id);
        if let Some(j) = results.get_mut(&r.k) {
            j.end = now;
            j.oom = oom;
        }
    };
    loop {
        // Start the jobs whose time has come and that have a place to run.
        let mut waiting = Vec::new();
        for k in pending.drain(..) {
            let (w, earliest) = jobs[k];
            let slot = if earliest > now {
                None
            } else if let Some(s) = spread[k] {
                Some(s)
            } else {
                allowed(w)
                    .into_iter()
                    .find(|&s| !exclusive || !running.iter().any(|r| r.slot == s))
            };
            let Some(slot) = slot else {
                waiting.push(k);
                continue;
            };
            let id = k as u64 + 1;
            let workload = mix[w];
            let (work_s, reference_sm) = match &workload.timing {
                Some(t) => (
                    t.full_gpu_s,
                    Catalog::builtin()
                        .gpu(&t.reference_gpu)
                        .map_or(gpu.sm_count, |g| g.sm_count),
                ),
                None => (DEFAULT_WORK_S, gpu.sm_count),
            };
            let mut job = SimGpu::new_job(
                devices[slot].uuid.clone(),
                work_s,
                &workload.sim,
                reference_sm,
            );
            job.pid = Some(id as u32);
            job.active = true;
            sim.register(id, job);
            sim.recompute_rates();
            results.insert(
                k,
                JobResult {
                    workload: w,
                    earliest,
                    start: now,
                    end: now,
                    oom: false,
                },
            );
            let r = Running {
                k,
                id,
                slot,
                target: 0.0,
            };
            match step(&mut sim, &curves[w], &r, config, &mut fullest) {
                Some(target) => running.push(Running { target, ..r }),
                None => {
                    end_job(&mut sim, &mut results, &r, now, true);
                    sim.recompute_rates();
                }
            }
        }
        pending = waiting;
        if pending.is_empty() && running.is_empty() {
            break;
        }
        // The next event: a job reaching its next point, or a start coming due.
        let next_start = pending
            .iter()
            .map(|&k| jobs[k].1)
            .filter(|&t| t > now)
            .fold(f64::INFINITY, f64::min);
        let next_work = running
            .iter()
            .filter_map(|r| {
                let work = sim.jobs[&r.id].work_s;
                sim.when_done(r.id, r.target * work, now)
            })
            .fold(f64::INFINITY, f64::min);
        let next = next_start.min(next_work);
        if !next.is_finite() {
            break;
        }
        now = next;
        sim.advance(now);
        let mut still = Vec::new();
        let mut changed = false;
        for r in running.drain(..) {
            let j = &sim.jobs[&r.id];
            let due = r.target * j.work_s;
            if j.done_s + 1e-9 * j.work_s.max(1.0) < due {
                still.push(r);
                continue;
            }
            sim.reach(r.id, due);
            changed = true;
            if r.target >= 1.0 {
                end_job(&mut sim, &mut results, &r, now, false);
                continue;
            }
            match step(&mut sim, &curves[jobs[r.k].0], &r, config, &mut fullest) {
                Some(target) => still.push(Running { target, ..r }),
                None => end_job(&mut sim, &mut results, &r, now, true),
            }
        }
        running = still;
        if changed {
            sim.recompute_rates();
        }
    }
    sim.advance(now);
    Simulated {
        jobs: results.into_values().collect(),
        fullest,
        slots: devices.len(),
        energy_j: sim.energy_j(),
    }
}

/// Job `r` at `r.target` of its work: takes the memory its curve holds there. Returns its next
/// point, or `None` when the allocation did not fit (the job dies of it).
fn step(
    sim: &mut SimGpu,
    curve: &MemoryCurve,
    r: &Running,
    config: &Config,
    fullest: &mut f64,
) -> Option<f64> {
    let want = curve.at(r.target);
    if want != sim.jobs[&r.id].memory_gib {
        sim.allocate(r.id, want).ok()?;
        let device = sim.jobs[&r.id].device.clone();
        if let Some((pool, capacity, _)) = sim.device_resources(&device) {
            *fullest = fullest.max(sim.pool_used(&pool, None) / capacity);
        }
        if let Some(limit) = config.pinned_gib {
            *fullest = fullest.max(want / limit);
        }
    }
    Some(curve.next_change(r.target).unwrap_or(1.0))
}

/// MIG instances and MPS daemons as the orchestrator's setup makes them.
fn set_up(sim: &mut SimGpu, config: &Config) {
    if let Some(layout) = &config.layout {
        sim.set_mig_mode(true).expect("a fresh GPU takes MIG mode");
        for gi in layout.creation_order() {
            sim.create_gi(gi.profile.id, gi.start)
                .expect("an enumerated layout is placeable");
            for (index, ci) in gi.compute.iter().enumerate() {
                sim.create_ci(gi.start, index, ci.id)
                    .expect("an enumerated layout's compute instances fit");
            }
        }
    }
    if matches!(config.mode, SharingMode::Mps | SharingMode::MigMps) {
        for d in sim.devices() {
            sim.start_mps(MpsDaemon {
                device: d.uuid,
                pipe_dir: std::path::PathBuf::new(),
                active_thread_percentage: config.thread_percentage,
                pinned_memory_limit_gib: config.pinned_gib,
            })
            .expect("one daemon per device");
        }
    }
}
