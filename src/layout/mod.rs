//! MIG layouts: which GPU instances a GPU is split into, where each sits, and what the split
//! leaves unused.
//!
//! A layout is written by people as a list of [`InstanceSpec`]s (`"3g.40gb"`, `"3g.40gb@4"`, or a
//! table with compute instances). [`Layout::build`] checks it against the catalog and assigns the
//! placements that were not given; [`enumerate`] lists every layout to which nothing more fits.

mod enumerate;
pub mod mig_parted;
mod validate;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use enumerate::{enumerate, EnumerateOptions};
pub use validate::LayoutError;

use crate::catalog::{CiProfile, GiProfile, GpuModel};

/// One GPU instance as a person writes it: a profile, optionally a start slice and a CI split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "InstanceSpecRepr", into = "InstanceSpecRepr")]
pub struct InstanceSpec {
    /// Profile name, alias or ID.
    pub profile: String,
    /// Start memory slice; assigned by the engine when absent.
    pub start: Option<u8>,
    /// Compute-instance profiles to split the GI into; one full-size CI when empty.
    pub compute: Vec<String>,
}

/// Accepts `"3g.40gb"`, `"3g.40gb@4"` or `{ profile = "3g.40gb", start = 4, compute = [...] }`.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
enum InstanceSpecRepr {
    Short(String),
    Full(InstanceTable),
}

/// The table form; a misspelt key is an error, not silently ignored.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct InstanceTable {
    profile: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    start: Option<u8>,
    /// Absent for one full-size CI; an empty list is a mistake, not a way of saying so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    compute: Option<Vec<String>>,
}

impl TryFrom<InstanceSpecRepr> for InstanceSpec {
    type Error = String;
    fn try_from(repr: InstanceSpecRepr) -> Result<Self, String> {
        match repr {
            InstanceSpecRepr::Short(text) => text.parse(),
            InstanceSpecRepr::Full(InstanceTable {
                compute: Some(compute),
                profile,
                ..
            }) if compute.is_empty() => Err(format!(
                "instance {}: compute = [] lists no compute instance; leave compute out for one \
                 full-size compute instance, or list its CI profiles (such as \"1c.3g.40gb\")",
                crate::bounds::quote(&profile)
            )),
            InstanceSpecRepr::Full(InstanceTable {
                profile,
                start,
                compute,
            }) => Ok(InstanceSpec {
                profile,
                start,
                compute: compute.unwrap_or_default(),
            }),
        }
    }
}

impl From<InstanceSpec> for InstanceSpecRepr {
    fn from(spec: InstanceSpec) -> Self {
        if spec.compute.is_empty() {
            InstanceSpecRepr::Short(spec.to_string())
        } else {
            InstanceSpecRepr::Full(InstanceTable {
                profile: spec.profile,
                start: spec.start,
                compute: Some(spec.compute),
            })
        }
    }
}

impl std::str::FromStr for InstanceSpec {
    type Err = String;
    /// Parses `PROFILE[@START]`.
    fn from_str(text: &str) -> Result<Self, String> {
        let (profile, start) = match text.trim().split_once('@') {
            None => (text.trim(), None),
            Some((profile, start)) => {
                let start = start.parse::<u8>().map_err(|_| {
                    format!("'{text}': the start after '@' must be a memory-slice number, found '{start}'")
                })?;
                (profile, Some(start))
            }
        };
        if profile.is_empty() {
            return Err(format!(
                "'{text}': expected a MIG profile such as 3g.40gb or 3g.40gb@4"
            ));
        }
        Ok(InstanceSpec {
            profile: profile.to_string(),
            start,
            compute: Vec::new(),
        })
    }
}

impl fmt::Display for InstanceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.profile)?;
        if let Some(start) = self.start {
            write!(f, "@{start}")?;
        }
        if !self.compute.is_empty() {
            write!(f, "({})", self.compute.join("+"))?;
        }
        Ok(())
    }
}

/// A GPU instance named by its profile and first memory slice, `3g.40gb@4`: as layouts write it,
/// and the name of the memory pool its compute instances share.
pub fn placed_name(profile: &str, start: u8) -> String {
    format!("{profile}@{start}")
}

/// A GPU instance with its placement and compute instances, checked against the catalog.
#[derive(Debug, Clone)]
pub struct PlacedInstance<'g> {
    pub profile: &'g GiProfile,
    pub start: u8,
    /// Compute instances, never empty (a GI without a split holds one full-size CI).
    pub compute: Vec<&'g CiProfile>,
}

impl PlacedInstance<'_> {
    pub fn mask(&self) -> u16 {
        self.profile.mask_at(self.start)
    }

    /// True when the GI is split into several compute instances (which then share its memory).
    pub fn is_split(&self) -> bool {
        self.compute.len() > 1 || self.compute[0].compute_slices != self.profile.compute_slices
    }

    /// The declarative form of this instance, with its placement pinned.
    pub fn spec(&self) -> InstanceSpec {
        InstanceSpec {
            profile: self.profile.name.clone(),
            start: Some(self.start),
            compute: if self.is_split() {
                self.compute.iter().map(|c| c.name.clone()).collect()
            } else {
                Vec::new()
            },
        }
    }
}

impl fmt::Display for PlacedInstance<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.spec().fmt(f)
    }
}

/// A valid, fully placed MIG layout on one GPU model.
#[derive(Debug, Clone)]
pub struct Layout<'g> {
    pub gpu: &'g GpuModel,
    /// Instances ordered by start slice.
    pub instances: Vec<PlacedInstance<'g>>,
}

/// What a layout uses and leaves unused of the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LayoutFigures {
    pub compute_slices_used: u8,
    pub compute_slices_unused: u8,
    pub memory_slices_used: u8,
    pub memory_slices_unused: u8,
    /// SMs the instances offer together, against `sm_total` of the whole GPU without MIG.
    pub sm_available: u32,
    pub sm_total: u32,
    /// Memory the instances offer together, against `memory_gib_total` of the whole GPU.
    pub memory_gib_available: f64,
    pub memory_gib_total: f64,
}

impl LayoutFigures {
    /// Slices left unused, compute and memory together: the layout's structural waste.
    pub fn slices_unused(&self) -> u8 {
        self.compute_slices_unused + self.memory_slices_unused
    }
}

impl<'g> Layout<'g> {
    /// Compute and memory figures of the layout.
    pub fn figures(&self) -> LayoutFigures {
        let compute: u8 = self
            .instances
            .iter()
            .map(|i| i.profile.compute_slices)
            .sum();
        let memory: u8 = self.instances.iter().map(|i| i.profile.memory_slices).sum();
        LayoutFigures {
            compute_slices_used: compute,
            compute_slices_unused: self.gpu.compute_slices - compute,
            memory_slices_used: memory,
            memory_slices_unused: self.gpu.memory_slices - memory,
            sm_available: self
                .instances
                .iter()
                .flat_map(|i| i.compute.iter().map(|c| i.profile.ci_sm(c)))
                .sum(),
            sm_total: self.gpu.sm_count,
            // Rounded to the 2 decimals the tables carry, so the sum does not depend on order.
            memory_gib_available: (self
                .instances
                .iter()
                .map(|i| i.profile.memory_gib)
                .sum::<f64>()
                * 100.0)
                .round()
                / 100.0,
            memory_gib_total: self.gpu.memory_gib(),
        }
    }

    /// The order in which the driver accepts the instances: largest first (UG: `-cgi 9,19,14,19`
    /// succeeds where `-cgi 19,19,14,9` fails with "Insufficient Resources").
    pub fn creation_order(&self) -> Vec<&PlacedInstance<'g>> {
        let mut order: Vec<&PlacedInstance> = self.instances.iter().collect();
        order.sort_by_key(|i| {
            (
                std::cmp::Reverse(i.profile.memory_slices),
                std::cmp::Reverse(i.profile.compute_slices),
                i.start,
            )
        });
        order
    }

    /// The declarative form, placements pinned: what a scenario or `--layout` would say.
    pub fn specs(&self) -> Vec<InstanceSpec> {
        self.instances.iter().map(PlacedInstance::spec).collect()
    }

    /// Instance profile names, largest first (`4g.40gb + 2g.20gb + 1g.10gb`), for short labels.
    pub fn summary(&self) -> String {
        let names: Vec<&str> = self
            .creation_order()
            .into_iter()
            .map(|i| i.profile.name.as_str())
            .collect();
        names.join(" + ")
    }
}

impl fmt::Display for Layout<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.instances.iter().map(|i| i.to_string()).collect();
        f.write_str(&parts.join(", "))
    }
}
