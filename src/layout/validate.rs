//! Checking a layout against the catalog, and placing the instances whose start was not given.

use std::collections::HashMap;

use super::{InstanceSpec, Layout, PlacedInstance};
use crate::catalog::{GiProfile, GpuModel};

/// Why a layout cannot be created on a GPU. Each names the offending instance by its position in
/// the layout (1-based, as people count) and says what is allowed instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LayoutError {
    /// An instance that does not read as `profile[@start][(ci+ci...)]`.
    #[error("{0}")]
    Syntax(String),

    #[error("the layout is empty: give at least one GPU instance")]
    Empty,

    #[error("instance {index} ({spec}): {message}")]
    UnknownProfile {
        index: usize,
        spec: String,
        message: String,
    },

    #[error("{count} instances of {profile} requested; {gpu} allows at most {max}")]
    TooMany {
        profile: String,
        count: usize,
        max: u8,
        gpu: String,
    },

    /// Two instances that cannot share the GPU's media engines ([`GiProfile::media_conflict`]).
    #[error(
        "instances {first} ({first_spec}) and {second} ({second_spec}) cannot be together: {why}"
    )]
    MediaEngines {
        first: usize,
        first_spec: String,
        second: usize,
        second_spec: String,
        why: String,
    },

    #[error("instance {index} ({spec}): {profile} cannot start at memory slice {start}; allowed placements: {allowed}")]
    WrongStart {
        index: usize,
        spec: String,
        profile: String,
        start: u8,
        allowed: String,
    },

    #[error("instances {first} ({first_spec}) and {second} ({second_spec}) overlap in memory slices {slices}")]
    Overlap {
        first: usize,
        first_spec: String,
        second: usize,
        second_spec: String,
        slices: String,
    },

    #[error(
        "instance {index} ({spec}) does not fit beside the others: {profile} needs {size} memory slices \
         at one of {allowed}, and the free slices are {free}"
    )]
    NoRoom {
        index: usize,
        spec: String,
        profile: String,
        size: u8,
        allowed: String,
        free: String,
    },

    #[error("instance {index} ({spec}): compute instance '{found}' is not offered by {profile}; allowed: {allowed}")]
    UnknownComputeProfile {
        index: usize,
        spec: String,
        found: String,
        profile: String,
        allowed: String,
    },

    #[error(
        "instance {index} ({spec}): the compute instances need {needed} compute slices, \
         but {profile} has {available}"
    )]
    ComputeSplitTooLarge {
        index: usize,
        spec: String,
        profile: String,
        needed: u8,
        available: u8,
    },

    #[error("instance {index} ({spec}): {count} × {ci} requested; {profile} offers at most {max}")]
    TooManyComputeInstances {
        index: usize,
        spec: String,
        ci: String,
        count: usize,
        max: u8,
        profile: String,
    },

    #[error("the layout needs {needed} compute slices; {gpu} has {available}")]
    TooMuchCompute {
        needed: u8,
        available: u8,
        gpu: String,
    },
}

impl<'g> Layout<'g> {
    /// Checks `specs` against `gpu` and returns the placed layout.
    ///
    /// Explicit starts are checked as given; the remaining instances are placed largest first
    /// into the free slices, backtracking if an early choice would leave no room for a later one.
    pub fn build(gpu: &'g GpuModel, specs: &[InstanceSpec]) -> Result<Layout<'g>, LayoutError> {
        if specs.is_empty() {
            return Err(LayoutError::Empty);
        }
        let profiles = resolve_profiles(gpu, specs)?;
        check_counts(gpu, specs, &profiles)?;
        let mut starts = check_explicit_starts(specs, &profiles)?;
        place_remaining(gpu, specs, &profiles, &mut starts)?;

        let mut instances = Vec::with_capacity(specs.len());
        for (index, (spec, profile)) in specs.iter().zip(&profiles).enumerate() {
            let compute = resolve_compute(index, spec, profile)?;
            instances.push(PlacedInstance {
                profile,
                start: starts[index].expect("every instance placed"),
                compute,
            });
        }
        let compute: u8 = profiles.iter().map(|p| p.compute_slices).sum();
        if compute > gpu.compute_slices {
            return Err(LayoutError::TooMuchCompute {
                needed: compute,
                available: gpu.compute_slices,
                gpu: gpu.key.clone(),
            });
        }
        instances.sort_by_key(|i| i.start);
        Ok(Layout { gpu, instances })
    }

    /// Parses a comma-separated layout (`3g.40gb,3g.40gb` or `4g.40gb@0,3g.40gb@4`) and builds it.
    pub fn parse(gpu: &'g GpuModel, text: &str) -> Result<Layout<'g>, LayoutError> {
        let specs = text
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(str::parse)
            .collect::<Result<Vec<InstanceSpec>, String>>()
            .map_err(LayoutError::Syntax)?;
        Layout::build(gpu, &specs)
    }
}

fn resolve_profiles<'g>(
    gpu: &'g GpuModel,
    specs: &[InstanceSpec],
) -> Result<Vec<&'g GiProfile>, LayoutError> {
    specs
        .iter()
        .enumerate()
        .map(|(index, spec)| {
            gpu.profile(&spec.profile)
                .map_err(|e| LayoutError::UnknownProfile {
                    index: index + 1,
                    spec: spec.to_string(),
                    message: e.to_string(),
                })
        })
        .collect()
}

fn check_counts(
    gpu: &GpuModel,
    specs: &[InstanceSpec],
    profiles: &[&GiProfile],
) -> Result<(), LayoutError> {
    let mut counts: HashMap<u32, usize> = HashMap::new();
    for p in profiles {
        *counts.entry(p.id).or_default() += 1;
    }
    // Report in catalog order so the message does not depend on hash order.
    for p in &gpu.profiles {
        let count = counts.get(&p.id).copied().unwrap_or(0);
        if count > usize::from(p.instances) {
            return Err(LayoutError::TooMany {
                profile: p.name.clone(),
                count,
                max: p.instances,
                gpu: gpu.key.clone(),
            });
        }
    }
    for (second, b) in profiles.iter().enumerate() {
        for (first, a) in profiles[..second].iter().enumerate() {
            if let Some(why) = a.media_conflict(b) {
                return Err(LayoutError::MediaEngines {
                    first: first + 1,
                    first_spec: specs[first].to_string(),
                    second: second + 1,
                    second_spec: specs[second].to_string(),
                    why: why.to_string(),
                });
            }
        }
    }
    Ok(())
}

fn check_explicit_starts(
    specs: &[InstanceSpec],
    profiles: &[&GiProfile],
) -> Result<Vec<Option<u8>>, LayoutError> {
    let mut taken: Vec<(usize, u16)> = Vec::new();
    for (index, (spec, profile)) in specs.iter().zip(profiles).enumerate() {
        let Some(start) = spec.start else { continue };
        if !profile.placements.contains(&start) {
            return Err(LayoutError::WrongStart {
                index: index + 1,
                spec: spec.to_string(),
                profile: profile.name.clone(),
                start,
                allowed: profile.placements_text(),
            });
        }
        let mask = profile.mask_at(start);
        if let Some(&(other, other_mask)) = taken.iter().find(|(_, m)| m & mask != 0) {
            return Err(LayoutError::Overlap {
                first: other + 1,
                first_spec: specs[other].to_string(),
                second: index + 1,
                second_spec: spec.to_string(),
                slices: slice_list(other_mask & mask),
            });
        }
        taken.push((index, mask));
    }
    Ok(specs.iter().map(|s| s.start).collect())
}

/// Places every instance without a start, largest first, by depth-first search over placements.
fn place_remaining(
    gpu: &GpuModel,
    specs: &[InstanceSpec],
    profiles: &[&GiProfile],
    starts: &mut [Option<u8>],
) -> Result<(), LayoutError> {
    let mut pending: Vec<usize> = (0..specs.len()).filter(|&i| starts[i].is_none()).collect();
    pending.sort_by_key(|&i| {
        (
            std::cmp::Reverse(profiles[i].memory_slices),
            std::cmp::Reverse(profiles[i].compute_slices),
            i,
        )
    });
    let fixed: u16 = (0..specs.len())
        .filter_map(|i| starts[i].map(|s| profiles[i].mask_at(s)))
        .fold(0, |m, x| m | x);

    fn search(
        pending: &[usize],
        profiles: &[&GiProfile],
        used: u16,
        out: &mut [Option<u8>],
    ) -> bool {
        let Some((&first, rest)) = pending.split_first() else {
            return true;
        };
        let profile = profiles[first];
        for &start in &profile.placements {
            let mask = profile.mask_at(start);
            if used & mask == 0 {
                out[first] = Some(start);
                if search(rest, profiles, used | mask, out) {
                    return true;
                }
            }
        }
        out[first] = None;
        false
    }

    if search(&pending, profiles, fixed, starts) {
        return Ok(());
    }
    // Name the first instance (in placement order) that cannot be placed beside those before it.
    let n = (0..pending.len())
        .find(|&n| !search(&pending[..=n], profiles, fixed, &mut starts.to_vec()))
        .expect("a layout that cannot be placed has a first instance that cannot be placed");
    let mut before = starts.to_vec();
    search(&pending[..n], profiles, fixed, &mut before);
    let used = pending[..n]
        .iter()
        .filter_map(|&i| before[i].map(|s| profiles[i].mask_at(s)))
        .fold(fixed, |m, x| m | x);
    let index = pending[n];
    let profile = profiles[index];
    Err(LayoutError::NoRoom {
        index: index + 1,
        spec: specs[index].to_string(),
        profile: profile.name.clone(),
        size: profile.memory_slices,
        allowed: profile.placements_text(),
        free: slice_list(!used & ((1u32 << gpu.memory_slices) - 1) as u16),
    })
}

fn resolve_compute<'g>(
    index: usize,
    spec: &InstanceSpec,
    profile: &'g GiProfile,
) -> Result<Vec<&'g crate::catalog::CiProfile>, LayoutError> {
    if spec.compute.is_empty() {
        return Ok(vec![profile.default_compute()]);
    }
    let mut cis = Vec::with_capacity(spec.compute.len());
    for name in &spec.compute {
        let ci =
            profile
                .compute_profile(name)
                .ok_or_else(|| LayoutError::UnknownComputeProfile {
                    index: index + 1,
                    spec: spec.to_string(),
                    found: name.clone(),
                    profile: profile.name.clone(),
                    allowed: profile
                        .compute_profiles
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
        cis.push(ci);
    }
    for ci in &profile.compute_profiles {
        let count = cis.iter().filter(|c| c.id == ci.id).count();
        if count > usize::from(ci.instances) {
            return Err(LayoutError::TooManyComputeInstances {
                index: index + 1,
                spec: spec.to_string(),
                ci: ci.name.clone(),
                count,
                max: ci.instances,
                profile: profile.name.clone(),
            });
        }
    }
    let needed: u8 = cis.iter().map(|c| c.compute_slices).sum();
    if needed > profile.compute_slices {
        return Err(LayoutError::ComputeSplitTooLarge {
            index: index + 1,
            spec: spec.to_string(),
            profile: profile.name.clone(),
            needed,
            available: profile.compute_slices,
        });
    }
    Ok(cis)
}

/// `{0,1,5}` for a slice mask.
fn slice_list(mask: u16) -> String {
    let slices: Vec<String> = (0..16)
        .filter(|b| mask & (1 << b) != 0)
        .map(|b: u8| b.to_string())
        .collect();
    if slices.is_empty() {
        "none".to_string()
    } else {
        format!("{{{}}}", slices.join(","))
    }
}
