//! Capacity planning: how many copies of a workload (or of a mix) run at once without running out
//! of memory, under each sharing mode.
//!
//! Memory is the hard limit; compute only decides speed. A *pool* is memory that jobs share: the
//! whole GPU under time-slicing and MPS, one GPU instance under MIG (its compute instances share
//! it too). Two questions per pool:
//! - **together**: every job may peak at the same moment, so the peaks must fit side by side;
//! - **staggered**: starts are spread so that only one job peaks at a time, so the constant levels
//!   plus the largest excess over a constant level must fit.

use std::collections::HashSet;

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
            let gpu_caps = [gpu_cap];
            plan.max_together = max_copies(
                &request.mix,
                1,
                copies_bound(&request.mix, &gpu_caps, Shared, Together),
                |jobs| fits_pool(jobs, gpu_cap, Together),
            );
            plan.max_staggered = max_copies(
                &request.mix,
                1,
                copies_bound(&request.mix, &gpu_caps, Shared, Staggered),
                |jobs| fits_pool(jobs, gpu_cap, Staggered),
            );
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

/// The memory a pool's jobs need, in the terms of both questions: the sum of their peaks, and
/// the sum of their constant levels with the largest excess over one.
#[derive(Debug, Clone, Copy, Default)]
struct Need {
    peaks: f64,
    constants: f64,
    max_excess: f64,
}

/// A thousandth of a GiB of slack absorbs rounding in the GiB figures of the tables.
const SLACK_GIB: f64 = 1e-3;

impl Need {
    fn of(jobs: &[&Workload]) -> Need {
        jobs.iter().fold(Need::default(), |need, w| need.with(w, 1))
    }

    /// With `k` more jobs of `w`.
    fn with(self, w: &Workload, k: usize) -> Need {
        if k == 0 {
            return self;
        }
        Need {
            peaks: self.peaks + k as f64 * w.memory.peak_gib,
            constants: self.constants + k as f64 * w.memory.constant_gib,
            max_excess: self.max_excess.max(w.peak_excess_gib()),
        }
    }

    fn gib(&self, peaks: Peaks) -> f64 {
        match peaks {
            Together => self.peaks,
            Staggered => self.constants + self.max_excess,
        }
    }
}

/// Whether `jobs` fit in a pool of `cap` GiB.
fn fits_pool(jobs: &[&Workload], cap: f64, peaks: Peaks) -> bool {
    Need::of(jobs).gib(peaks) <= cap + SLACK_GIB
}

/// The most copies of `mix`, from `least` to `most`, for which `fits` holds (fits is monotone in
/// the number of copies), or 0 when not even `least` fits; `fits` last succeeds on the answer.
/// `most` is a bound ([`copies_bound`]); where it is exact, as it often is, one call settles it.
fn max_copies<'w>(
    mix: &[&'w Workload],
    least: usize,
    most: usize,
    mut fits: impl FnMut(&[&'w Workload]) -> bool,
) -> usize {
    let mut try_copies = |copies: usize| fits(&mix.repeat(copies));
    if most < least.max(1) {
        return 0;
    }
    if try_copies(most) {
        return most;
    }
    if least == most || !try_copies(least) {
        return 0;
    }
    largest(least, most, try_copies)
}

/// An upper bound on the copies of `mix` that pools of `caps` GiB hold: each workload alone in
/// the empty pools, as many jobs as fit (and one job per instance where instances are not
/// shared). Other jobs only take room, so no placement beats it; for a single workload it is
/// exact, since identical jobs fill the pools one after another.
fn copies_bound(mix: &[&Workload], caps: &[f64], per_pool: PerPool, peaks: Peaks) -> usize {
    // Each copy needs memory, so a GPU can hold only so many; the cap keeps a zero-memory
    // workload from counting forever.
    const MAX: usize = 1024;
    let most_per_pool = if per_pool == OnePerInstance { 1 } else { MAX };
    let mut bound = if per_pool == OnePerInstance {
        caps.len() / mix.len().max(1)
    } else {
        MAX
    };
    for w in mix {
        let per_copy = mix.iter().filter(|v| v.name == w.name).count();
        let room: usize = caps
            .iter()
            .map(|&cap| Search::room(Need::default(), cap, w, most_per_pool, peaks))
            .sum();
        bound = bound.min(room / per_copy);
    }
    if per_pool == Shared {
        // All of them together in all the memory, as if it were one pool.
        let per_copy = Need::of(mix);
        let per_copy = match peaks {
            Together => per_copy.peaks,
            Staggered => per_copy.constants,
        };
        let total: f64 = caps.iter().map(|cap| cap + 2.0 * SLACK_GIB).sum();
        if per_copy > 0.0 {
            bound = bound.min((total / per_copy).floor().min(MAX as f64) as usize);
        }
    }
    bound
}

/// The largest `k` from `low` to below `high` for which `holds`, which is monotone: it holds for
/// `low` and not for `high`. The last call that holds is the one for the answer.
fn largest(mut low: usize, mut high: usize, mut holds: impl FnMut(usize) -> bool) -> usize {
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        if holds(mid) {
            low = mid;
        } else {
            high = mid;
        }
    }
    low
}

/// The most copies any layout achieves, and the layouts achieving it, best first.
fn best_layouts(
    request: &PlanRequest,
    layouts: &[Layout],
    per_pool: PerPool,
    peaks: Peaks,
) -> (usize, Vec<PlannedLayout>) {
    let cap = |gib: f64| gib * (1.0 - request.headroom);
    // Layouts by their bound, highest first (stable: enumeration order among equals), so that
    // the best is found early and every layout whose bound is below it is never searched.
    let mut bounded: Vec<(usize, &Layout, Vec<f64>)> = layouts
        .iter()
        .map(|layout| {
            let caps: Vec<f64> = layout
                .instances
                .iter()
                .map(|i| cap(i.profile.memory_gib))
                .collect();
            (
                copies_bound(&request.mix, &caps, per_pool, peaks),
                layout,
                caps,
            )
        })
        .filter(|(most, _, _)| *most > 0)
        .collect();
    bounded.sort_by_key(|(most, _, _)| std::cmp::Reverse(*most));
    let mut best = 0;
    let mut planned: Vec<PlannedLayout> = Vec::new();
    for (most, layout, caps) in bounded {
        if most < best {
            break;
        }
        let mut assignment = None;
        // Fewer copies than the best so far would not be kept, so the search starts there.
        let copies = max_copies(&request.mix, best.max(1), most, |jobs| {
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
/// Jobs go largest first; each tries every pool in turn (skipping pools identical to one already
/// tried, which would only repeat the search), and the first placement found is the answer.
/// Exact. Two things keep it polynomial without changing which placement is found first: a
/// state (the jobs left, and the pools as a multiset of capacity and contents) that failed once
/// is not searched again, however the jobs got there; and a state is abandoned as soon as some
/// workload has more jobs left than the pools could still take of it alone.
fn assign<'w>(
    jobs: &[&'w Workload],
    caps: &[f64],
    per_pool: PerPool,
    peaks: Peaks,
) -> Option<Vec<Vec<&'w Workload>>> {
    let mut order: Vec<&Workload> = jobs.to_vec();
    order.sort_by(|a, b| b.memory.peak_gib.total_cmp(&a.memory.peak_gib));
    let mut names: Vec<&str> = order.iter().map(|w| w.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut search = Search {
        order,
        names,
        caps,
        per_pool,
        peaks,
        pools: vec![Vec::new(); caps.len()],
        failed: HashSet::new(),
    };
    search.place(0).then_some(search.pools)
}

/// A search state: the next job to place, and each pool's capacity (as bits) and how many jobs of
/// each workload it holds, sorted.
type StateKey = (usize, Vec<(u64, Vec<u32>)>);

/// The state of one [`assign`] search.
struct Search<'w, 'c> {
    /// The jobs, largest first.
    order: Vec<&'w Workload>,
    /// The distinct workload names, sorted: a job's kind is its name's index.
    names: Vec<&'w str>,
    caps: &'c [f64],
    per_pool: PerPool,
    peaks: Peaks,
    pools: Vec<Vec<&'w Workload>>,
    /// States known to have no placement: [`Search::key`].
    failed: HashSet<StateKey>,
}

impl<'w> Search<'w, '_> {
    fn kind(&self, w: &Workload) -> usize {
        self.names
            .binary_search(&w.name.as_str())
            .unwrap_or_default()
    }

    /// Places `order[next..]`; true (with `pools` holding the placement) when it can be done.
    fn place(&mut self, next: usize) -> bool {
        let Some(&job) = self.order.get(next) else {
            return true;
        };
        if !self.could_take_the_rest(next) {
            return false;
        }
        let key = self.key(next);
        if self.failed.contains(&key) {
            return false;
        }
        let mut tried: Vec<(u64, Vec<&str>)> = Vec::new();
        for p in 0..self.caps.len() {
            if self.per_pool == OnePerInstance && !self.pools[p].is_empty() {
                continue;
            }
            let same = (
                self.caps[p].to_bits(),
                self.pools[p].iter().map(|w| w.name.as_str()).collect(),
            );
            if tried.contains(&same) {
                continue;
            }
            tried.push(same);
            self.pools[p].push(job);
            if fits_pool(&self.pools[p], self.caps[p], self.peaks) && self.place(next + 1) {
                return true;
            }
            self.pools[p].pop();
        }
        self.failed.insert(key);
        false
    }

    /// The jobs left and the pools, in a form equal for every state that differs only in which
    /// of two identical pools holds what.
    fn key(&self, next: usize) -> StateKey {
        let mut pools: Vec<(u64, Vec<u32>)> = self
            .pools
            .iter()
            .zip(self.caps)
            .map(|(jobs, cap)| {
                let mut counts = vec![0u32; self.names.len()];
                for w in jobs {
                    counts[self.kind(w)] += 1;
                }
                (cap.to_bits(), counts)
            })
            .collect();
        pools.sort_unstable();
        (next, pools)
    }

    /// Whether, for every workload, the pools as they are could still take as many more of its
    /// jobs as are left, each workload alone: a bound no placement of the rest can beat.
    fn could_take_the_rest(&self, next: usize) -> bool {
        let mut left = vec![0usize; self.names.len()];
        let mut example: Vec<Option<&Workload>> = vec![None; self.names.len()];
        for w in &self.order[next..] {
            left[self.kind(w)] += 1;
            example[self.kind(w)] = Some(w);
        }
        if self.per_pool == OnePerInstance {
            let empty = self.pools.iter().filter(|p| p.is_empty()).count();
            if left.iter().sum::<usize>() > empty {
                return false;
            }
        }
        let held: Vec<Need> = self.pools.iter().map(|p| Need::of(p)).collect();
        left.iter().zip(&example).all(|(&need, w)| {
            let Some(w) = *w else { return true };
            let mut room = 0;
            for ((pool, held), &cap) in self.pools.iter().zip(&held).zip(self.caps) {
                if self.per_pool == OnePerInstance && !pool.is_empty() {
                    continue;
                }
                let most = if self.per_pool == OnePerInstance {
                    1
                } else {
                    need
                };
                room += Self::room(*held, cap, w, most, self.peaks);
                if room >= need {
                    return true;
                }
            }
            false
        })
    }

    /// How many more jobs of `w` (at most `most`) a pool holding `held` of `cap` GiB could take.
    /// Rounded up, never down: multiplying instead of adding one by one may round differently,
    /// and a bound that came out short would cut off a placement.
    fn room(held: Need, cap: f64, w: &Workload, most: usize, peaks: Peaks) -> usize {
        let limit = cap + SLACK_GIB + 1e-9 * cap.abs().max(1.0);
        let fits = |k: usize| held.with(w, k).gib(peaks) <= limit;
        if fits(most) {
            return most;
        }
        // fits(0) holds: the pool's jobs fitted as they were placed.
        largest(0, most, fits)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    /// The search as it was before states were remembered and bounded, given `budget` steps:
    /// `None` when it runs out (it is exponential on large GPUs).
    fn unbounded<'w>(
        jobs: &[&'w Workload],
        caps: &[f64],
        per_pool: PerPool,
        peaks: Peaks,
        budget: &mut u32,
    ) -> Option<Option<Vec<Vec<&'w Workload>>>> {
        fn place<'w>(
            order: &[&'w Workload],
            caps: &[f64],
            pools: &mut Vec<Vec<&'w Workload>>,
            per_pool: PerPool,
            peaks: Peaks,
            budget: &mut u32,
        ) -> Option<bool> {
            *budget = budget.checked_sub(1)?;
            let Some((&job, rest)) = order.split_first() else {
                return Some(true);
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
                if fits_pool(&pools[p], caps[p], peaks)
                    && place(rest, caps, pools, per_pool, peaks, budget)?
                {
                    return Some(true);
                }
                pools[p].pop();
            }
            Some(false)
        }
        let mut order: Vec<&Workload> = jobs.to_vec();
        order.sort_by(|a, b| b.memory.peak_gib.total_cmp(&a.memory.peak_gib));
        let mut pools = vec![Vec::new(); caps.len()];
        let placed = place(&order, caps, &mut pools, per_pool, peaks, budget)?;
        Some(placed.then_some(pools))
    }

    fn names(pools: &Option<Vec<Vec<&Workload>>>) -> Option<Vec<Vec<String>>> {
        pools.as_ref().map(|p| {
            p.iter()
                .map(|jobs| jobs.iter().map(|w| w.name.clone()).collect())
                .collect()
        })
    }

    /// Wherever the old search finishes, the new one finds the same placement (or none).
    #[test]
    fn remembering_failed_states_finds_the_same_placements() {
        let shipped = crate::workload::builtin();
        let mut mixes: Vec<Vec<&Workload>> = shipped.iter().map(|w| vec![w]).collect();
        mixes.push(vec![&shipped[0], &shipped[1]]);
        mixes.push(vec![&shipped[0], &shipped[2]]);
        let mut compared = 0;
        for gpu in Catalog::builtin().gpus() {
            for layout in layout::enumerate(gpu, &EnumerateOptions::default()) {
                let caps: Vec<f64> = layout
                    .instances
                    .iter()
                    .map(|i| i.profile.memory_gib)
                    .collect();
                for mix in &mixes {
                    for (per_pool, peaks) in [
                        (OnePerInstance, Together),
                        (Shared, Together),
                        (Shared, Staggered),
                    ] {
                        let mut jobs: Vec<&Workload> = Vec::new();
                        loop {
                            jobs.extend(mix);
                            let new = assign(&jobs, &caps, per_pool, peaks);
                            let mut budget = 20_000;
                            if let Some(old) = unbounded(&jobs, &caps, per_pool, peaks, &mut budget)
                            {
                                assert_eq!(names(&new), names(&old), "{} {layout}", gpu.key);
                                compared += 1;
                            }
                            if new.is_none() {
                                break;
                            }
                        }
                    }
                }
            }
        }
        assert!(compared > 1000, "{compared}");
    }
}
