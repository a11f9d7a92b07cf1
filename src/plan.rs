//! Capacity planning: how many copies of a workload (or of a mix) run at once without running out
//! of memory, under each sharing mode.
//!
//! Memory is the hard limit; compute only decides speed. A *pool* is memory that jobs share: the
//! whole GPU under time-slicing and MPS, one GPU instance under MIG (its compute instances share
//! it too). Two questions per pool:
//! - **together**: every job may peak at the same moment, so the peaks must fit side by side;
//! - **staggered**: starts are spread so that only one job peaks at a time, so the constant levels
//!   plus the largest excess over a constant level must fit.

use serde::Serialize;

use crate::catalog::GpuModel;
use crate::layout::{self, EnumerateOptions, InstanceSpec, Layout, LayoutFigures};
use crate::mode::SharingMode;
use crate::workload::{Workload, WorkloadKind};

/// What to plan for.
#[derive(Debug, Clone)]
pub struct PlanRequest<'a> {
    pub gpu: &'a GpuModel,
    /// One workload, or a mix: a *copy* is then one job of every workload listed.
    pub mix: Vec<&'a Workload>,
    /// Fraction of each pool kept free (0.1 = 10%).
    pub headroom: f64,
}

/// The answer for one sharing mode.
#[derive(Debug, Clone, Serialize)]
pub struct ModePlan {
    pub mode: SharingMode,
    /// Copies that run at once when every job may peak at the same moment.
    pub max_together: usize,
    /// Copies that run at once when starts are staggered so only one job peaks at a time.
    pub max_staggered: usize,
    /// For MIG modes: the best layout for `max_together`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout: Option<PlannedLayout>,
    /// For MIG+MPS, where staggering changes the best layout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout_staggered: Option<PlannedLayout>,
    /// Further layouts achieving `max_together`, best first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<PlannedLayout>,
    pub isolation: &'static str,
    /// Explanations: why a mode cannot help, what to watch for.
    pub notes: Vec<String>,
}

/// A MIG layout with the jobs placed on it.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedLayout {
    /// The layout, placements pinned (`3g.40gb@0`).
    pub layout: Vec<InstanceSpec>,
    /// Profile names, largest first (`4g.40gb + 3g.40gb`).
    pub summary: String,
    pub copies: usize,
    /// Workloads on each instance, in layout order (empty for an idle instance).
    pub assignment: Vec<Vec<String>>,
    /// The fewest SMs any job gets (a GI's SMs divided among the jobs sharing it).
    pub sm_per_copy: u32,
    /// Slices of instances left idle by this plan: free for other work.
    pub idle_instances: usize,
    pub figures: LayoutFigures,
}

/// Plans every sharing mode for `request`, in [`SharingMode::ALL`] order.
pub fn plan(request: &PlanRequest) -> Vec<ModePlan> {
    let layouts = layout::enumerate(request.gpu, &EnumerateOptions::default());
    SharingMode::ALL
        .iter()
        .map(|&mode| plan_mode(request, mode, &layouts))
        .collect()
}

fn plan_mode(request: &PlanRequest, mode: SharingMode, layouts: &[Layout]) -> ModePlan {
    let gpu_cap = request.gpu.memory_gib() * (1.0 - request.headroom);
    let mut plan = ModePlan {
        mode,
        max_together: 0,
        max_staggered: 0,
        layout: None,
        layout_staggered: None,
        alternatives: Vec::new(),
        isolation: mode.isolation(),
        notes: Vec::new(),
    };
    match mode {
        SharingMode::Full => {
            let fits = request.mix.iter().all(|w| w.memory.peak_gib <= gpu_cap);
            plan.max_together = usize::from(fits);
            plan.max_staggered = plan.max_together;
            plan.notes
                .push("one job at a time: a mix runs one after another".into());
        }
        SharingMode::Timeslice | SharingMode::Mps => {
            plan.max_together = max_copies(&request.mix, |jobs| fits_pool(jobs, gpu_cap, Together));
            plan.max_staggered =
                max_copies(&request.mix, |jobs| fits_pool(jobs, gpu_cap, Staggered));
            if mode == SharingMode::Timeslice {
                plan.notes
                    .push("contexts take turns on all SMs; memory is shared as under MPS".into());
            }
        }
        SharingMode::Mig | SharingMode::MigMps => {
            let per_pool = if mode == SharingMode::Mig {
                OnePerInstance
            } else {
                Shared
            };
            let (together, ranked) = best_layouts(request, layouts, per_pool, Together);
            plan.max_together = together;
            let mut ranked = ranked.into_iter();
            plan.layout = ranked.next();
            plan.alternatives = ranked.collect();
            if per_pool == OnePerInstance {
                plan.max_staggered = together;
            } else {
                let (staggered, best) = best_layouts(request, layouts, per_pool, Staggered);
                plan.max_staggered = staggered;
                let best = best.into_iter().next();
                if best.as_ref().map(|b| &b.layout) != plan.layout.as_ref().map(|b| &b.layout) {
                    plan.layout_staggered = best;
                }
            }
        }
    }
    plan.notes.extend(explain(request, mode, &plan));
    plan
}

/// Whether every job may peak at once, or only one at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peaks {
    Together,
    Staggered,
}
use Peaks::*;

/// Whether jobs may share a MIG instance (through MPS) or get one each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PerPool {
    OnePerInstance,
    Shared,
}
use PerPool::*;

/// Whether `jobs` fit in a pool of `cap` GiB.
fn fits_pool(jobs: &[&Workload], cap: f64, peaks: Peaks) -> bool {
    let need = match peaks {
        Together => jobs.iter().map(|w| w.memory.peak_gib).sum::<f64>(),
        Staggered => {
            jobs.iter().map(|w| w.memory.constant_gib).sum::<f64>()
                + jobs.iter().map(|w| w.peak_excess_gib()).fold(0.0, f64::max)
        }
    };
    // A thousandth of a GiB of slack absorbs rounding in the GiB figures of the tables.
    need <= cap + 1e-3
}

/// The most copies of `mix` for which `fits` holds (fits is monotone in the number of copies).
fn max_copies<'w>(mix: &[&'w Workload], mut fits: impl FnMut(&[&'w Workload]) -> bool) -> usize {
    // Each copy needs memory, so a GPU can hold only so many; the bound keeps a zero-memory
    // workload from looping forever.
    const MAX: usize = 1024;
    let mut jobs: Vec<&'w Workload> = Vec::new();
    for copies in 1..=MAX {
        jobs.extend(mix);
        if !fits(&jobs) {
            return copies - 1;
        }
    }
    MAX
}

/// The most copies any layout achieves, and the layouts achieving it, best first.
fn best_layouts(
    request: &PlanRequest,
    layouts: &[Layout],
    per_pool: PerPool,
    peaks: Peaks,
) -> (usize, Vec<PlannedLayout>) {
    let cap = |gib: f64| gib * (1.0 - request.headroom);
    let mut best = 0;
    let mut planned: Vec<PlannedLayout> = Vec::new();
    for layout in layouts {
        let caps: Vec<f64> = layout
            .instances
            .iter()
            .map(|i| cap(i.profile.memory_gib))
            .collect();
        let mut assignment = None;
        let copies = max_copies(&request.mix, |jobs| {
            assign(jobs, &caps, per_pool, peaks)
                .map(|a| assignment = Some(a))
                .is_some()
        });
        if copies == 0 || copies < best {
            continue;
        }
        if copies > best {
            best = copies;
            planned.clear();
        }
        // `assignment` holds the last one that fitted: the one for `copies`.
        let slots = assignment.expect("copies > 0 means an assignment was found");
        planned.push(planned_layout(layout, copies, slots));
    }
    planned.sort_by_cached_key(|p| {
        (
            p.figures.slices_unused(),
            std::cmp::Reverse(p.sm_per_copy),
            std::cmp::Reverse(p.idle_instances),
            format!("{:?}", p.layout),
        )
    });
    (best, planned)
}

fn planned_layout(layout: &Layout, copies: usize, slots: Vec<Vec<&Workload>>) -> PlannedLayout {
    let sm_per_copy = layout
        .instances
        .iter()
        .zip(&slots)
        .filter(|(_, jobs)| !jobs.is_empty())
        .map(|(i, jobs)| i.profile.sm / jobs.len() as u32)
        .min()
        .unwrap_or(0);
    PlannedLayout {
        layout: layout.specs(),
        summary: layout.summary(),
        copies,
        idle_instances: slots.iter().filter(|s| s.is_empty()).count(),
        assignment: slots
            .iter()
            .map(|jobs| jobs.iter().map(|w| w.name.clone()).collect())
            .collect(),
        sm_per_copy,
        figures: layout.figures(),
    }
}

/// Places `jobs` into pools of the given capacities, or says it cannot be done.
///
/// Jobs go largest first; each tries every pool (skipping pools identical to one already tried,
/// which would only repeat the search). Exact, and fast at the sizes a GPU allows.
fn assign<'w>(
    jobs: &[&'w Workload],
    caps: &[f64],
    per_pool: PerPool,
    peaks: Peaks,
) -> Option<Vec<Vec<&'w Workload>>> {
    let mut order: Vec<&Workload> = jobs.to_vec();
    order.sort_by(|a, b| b.memory.peak_gib.total_cmp(&a.memory.peak_gib));
    let mut pools: Vec<Vec<&Workload>> = vec![Vec::new(); caps.len()];

    fn place<'w>(
        order: &[&'w Workload],
        caps: &[f64],
        pools: &mut Vec<Vec<&'w Workload>>,
        per_pool: PerPool,
        peaks: Peaks,
    ) -> bool {
        let Some((&job, rest)) = order.split_first() else {
            return true;
        };
        let mut tried: Vec<(u64, Vec<&str>)> = Vec::new();
        for p in 0..caps.len() {
            if per_pool == OnePerInstance && !pools[p].is_empty() {
                continue;
            }
            let key = (
                caps[p].to_bits(),
                pools[p].iter().map(|w| w.name.as_str()).collect(),
            );
            if tried.contains(&key) {
                continue;
            }
            tried.push(key);
            pools[p].push(job);
            if fits_pool(&pools[p], caps[p], peaks) && place(rest, caps, pools, per_pool, peaks) {
                return true;
            }
            pools[p].pop();
        }
        false
    }

    place(&order, caps, &mut pools, per_pool, peaks).then_some(pools)
}

/// Notes that explain an outcome a user might not expect.
fn explain(request: &PlanRequest, mode: SharingMode, plan: &ModePlan) -> Vec<String> {
    let gpu = request.gpu;
    let cap = gpu.memory_gib() * (1.0 - request.headroom);
    let mut notes = Vec::new();
    for w in &request.mix {
        if w.memory.peak_gib > cap {
            notes.push(format!(
                "{} needs {:.2} GiB at its peak; {} offers {:.2} GiB{}: it cannot run on this GPU",
                w.name,
                w.memory.peak_gib,
                gpu.key,
                cap,
                headroom_text(request.headroom)
            ));
            return notes;
        }
    }
    if mode.uses_mig() {
        // The largest instance short of the whole GPU tells whether MIG can share at all.
        let largest_partial = gpu
            .profiles
            .iter()
            .filter(|p| p.compute_slices < gpu.compute_slices)
            .max_by(|a, b| a.memory_gib.total_cmp(&b.memory_gib));
        let biggest = request
            .mix
            .iter()
            .max_by(|a, b| a.memory.peak_gib.total_cmp(&b.memory.peak_gib))
            .expect("a plan has at least one workload");
        if let Some(p) = largest_partial {
            if biggest.memory.peak_gib > p.memory_gib * (1.0 - request.headroom) {
                let whole = gpu
                    .profiles
                    .iter()
                    .find(|p| p.compute_slices == gpu.compute_slices);
                notes.push(format!(
                    "{} needs {:.2} GiB at its peak; the largest MIG instance short of the whole GPU is {} ({:.2} GiB){}, so under MIG it runs only in {}, the whole GPU as one instance: MIG brings no sharing here",
                    biggest.name,
                    biggest.memory.peak_gib,
                    p.name,
                    p.memory_gib,
                    headroom_text(request.headroom),
                    whole.map_or("no instance", |w| w.name.as_str()),
                ));
            }
        }
    }
    let shares_pool = match mode {
        SharingMode::Timeslice | SharingMode::Mps => plan.max_together.max(plan.max_staggered) > 1,
        SharingMode::MigMps => plan
            .layout
            .iter()
            .chain(&plan.layout_staggered)
            .any(|l| l.assignment.iter().any(|a| a.len() > 1)),
        _ => false,
    };
    if shares_pool && request.mix.iter().any(|w| w.kind == WorkloadKind::Server) {
        notes.push(
            "a vLLM server takes --gpu-memory-utilization of its whole device (default 0.9): \
             when servers share one pool, lower it so their shares add up to at most 1"
                .into(),
        );
    }
    if plan.max_staggered == 0 && matches!(mode, SharingMode::Timeslice | SharingMode::Mps) {
        let peaks: f64 = request.mix.iter().map(|w| w.memory.peak_gib).sum();
        let staggered: f64 = request
            .mix
            .iter()
            .map(|w| w.memory.constant_gib)
            .sum::<f64>()
            + request
                .mix
                .iter()
                .map(|w| w.peak_excess_gib())
                .fold(0.0, f64::max);
        notes.push(format!(
            "one copy needs {peaks:.2} GiB if its jobs peak together and {staggered:.2} GiB staggered; the GPU offers {cap:.2} GiB{}",
            headroom_text(request.headroom)
        ));
    }
    if plan.max_staggered > plan.max_together {
        notes.push(format!(
            "{} at once if started together; {} if starts are staggered so only one job peaks at a time",
            plan.max_together, plan.max_staggered
        ));
    }
    notes
}

fn headroom_text(headroom: f64) -> String {
    if headroom > 0.0 {
        format!(" after {:.0}% headroom", headroom * 100.0)
    } else {
        String::new()
    }
}
