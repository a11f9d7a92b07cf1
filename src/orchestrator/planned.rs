//! A variant's jobs before they run: each job of its groups, when it may start, where it may
//! run, and whether the variant can fit at all.

use std::borrow::Cow;

use crate::error::Result;
use crate::layout::Layout;
use crate::scenario::{Scenario, Variant};
use crate::workload::Workload;

/// One job of a variant, before it runs.
#[derive(Debug, Clone)]
pub struct PlannedJob<'s> {
    /// Position in the variant (0-based, in the order the scenario lists groups).
    pub index: usize,
    /// The group's workload, with the group's `args` appended to its command.
    pub workload: Cow<'s, Workload>,
    /// Earliest start, in backend seconds after the variant starts.
    pub earliest: f64,
    /// Slots (compute instances in layout order) it may use; all when `None`.
    pub allowed: Option<Vec<usize>>,
    pub timeout: Option<f64>,
}

/// Expands the variant's job groups into jobs, ordered by earliest start.
pub fn expand<'s>(scenario: &'s Scenario, variant: &Variant) -> Result<Vec<PlannedJob<'s>>> {
    let mut jobs = Vec::new();
    for group in &variant.jobs {
        let workload = scenario.job_workload(group)?;
        for k in 0..group.count {
            jobs.push(PlannedJob {
                index: jobs.len(),
                workload: workload.clone(),
                earliest: group.start_s + f64::from(k) * group.stagger_s,
                allowed: group.instances.as_ref().map(|i| i.get_ref().clone()),
                timeout: group.timeout_s.or(workload.timeout_s),
            });
        }
    }
    jobs.sort_by(|a, b| {
        a.earliest
            .total_cmp(&b.earliest)
            .then(a.index.cmp(&b.index))
    });
    Ok(jobs)
}

/// Memory each slot offers: `(label, GiB)`; a GI's memory is shared by its compute instances.
fn slot_capacities(
    scenario: &Scenario,
    variant: &Variant,
    layout: Option<&Layout>,
) -> Vec<(String, f64)> {
    let pinned = variant
        .mps
        .as_ref()
        .and_then(|m| m.get_ref().pinned_memory_limit_gib)
        .unwrap_or(f64::INFINITY);
    let slots = match layout {
        None => vec![("the whole GPU".to_string(), scenario.gpu.memory_gib())],
        Some(l) => l
            .instances
            .iter()
            .flat_map(|i| {
                i.compute
                    .iter()
                    .map(move |_| (i.profile.name.clone(), i.profile.memory_gib))
            })
            .collect(),
    };
    slots.into_iter().map(|(l, g)| (l, g.min(pinned))).collect()
}

/// Why the variant cannot run at all: some job fits in none of the slots it may use, even alone.
/// Jobs that each fit but not together are run: their OOMs are the result being measured.
pub fn infeasible(
    scenario: &Scenario,
    variant: &Variant,
    layout: Option<&Layout>,
    jobs: &[PlannedJob],
) -> Option<String> {
    let slots = slot_capacities(scenario, variant, layout);
    for job in jobs {
        let usable: Vec<&(String, f64)> = match &job.allowed {
            Some(a) => a.iter().filter_map(|&i| slots.get(i)).collect(),
            None => slots.iter().collect(),
        };
        let best = usable.iter().max_by(|a, b| a.1.total_cmp(&b.1))?;
        let peak = job.workload.memory.peak_gib;
        if peak > best.1 + 1e-9 {
            return Some(format!(
                "{} needs {:.2} GiB at its peak; the largest place it may run, {}, has {:.2} GiB",
                job.workload.name, peak, best.0, best.1
            ));
        }
    }
    None
}

pub(super) fn allowed_slots(job: &PlannedJob, slots: usize) -> Vec<usize> {
    match &job.allowed {
        Some(a) => a.clone(),
        None => (0..slots).collect(),
    }
}
