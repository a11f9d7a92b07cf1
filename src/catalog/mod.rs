//! The GPU catalog: every GPU model migbench knows, with its MIG profiles and placements.
//!
//! The tables are data, not code: one TOML file per GPU under `src/catalog/gpus/`, compiled into
//! the binary so that `migbench` works from any directory. Each file names its sources, and values
//! that were assumed or are uncertain carry a [`Caveat`] that the commands show next to the value.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The GPU tables shipped with migbench, as `(file name, contents)`.
const GPU_FILES: &[(&str, &str)] = &[
    ("a100-40gb.toml", include_str!("gpus/a100-40gb.toml")),
    ("a100-80gb.toml", include_str!("gpus/a100-80gb.toml")),
    ("a30-24gb.toml", include_str!("gpus/a30-24gb.toml")),
    ("h100-80gb.toml", include_str!("gpus/h100-80gb.toml")),
    ("h100-94gb.toml", include_str!("gpus/h100-94gb.toml")),
    ("h200-141gb.toml", include_str!("gpus/h200-141gb.toml")),
    ("b200-180gb.toml", include_str!("gpus/b200-180gb.toml")),
];

/// One GPU model and the MIG geometry it offers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuModel {
    /// Short lower-case key used on the command line and in scenarios (`h100-80gb`).
    pub key: String,
    /// Human-readable name.
    pub name: String,
    /// Device names as NVML (and `nvidia-smi -L`) report them.
    pub nvml_names: Vec<String>,
    /// PCI device IDs of those devices (`0x2330`), as mig-parted's `device-filter` names GPUs
    /// (`0x233010DE`: device, then NVIDIA's vendor ID 10DE).
    #[serde(default)]
    pub pci_device_ids: Vec<String>,
    /// Total device memory in MiB, as nvidia-smi reports it.
    pub memory_mib: u64,
    /// Streaming multiprocessors of the whole GPU with MIG disabled.
    pub sm_count: u32,
    pub compute_slices: u8,
    pub memory_slices: u8,
    /// Where the table comes from.
    pub source: String,
    #[serde(default)]
    pub caveats: Vec<Caveat>,
    pub profiles: Vec<GiProfile>,
}

/// A GPU-instance profile, one row of `nvidia-smi mig -lgip` plus its placements.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GiProfile {
    /// Profile ID as nvidia-smi and `nvmlDeviceCreateGpuInstance` take it (not NVML's enum value).
    pub id: u32,
    pub name: String,
    /// Other names drivers print for the same profile (names change between drivers).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `+me`: the profile carries the GPU's one set of media extensions.
    #[serde(default)]
    pub media_extensions: bool,
    /// How many instances of this profile fit on an empty GPU.
    pub instances: u8,
    /// Memory as nvidia-smi prints it, in GiB.
    pub memory_gib: f64,
    pub sm: u32,
    pub compute_slices: u8,
    pub memory_slices: u8,
    /// Allowed start memory slices; an instance occupies `start..start + memory_slices`.
    pub placements: Vec<u8>,
    pub engines: Engines,
    pub compute_profiles: Vec<CiProfile>,
}

/// Copy and media engines of a GPU instance.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Engines {
    pub ce: u8,
    pub dec: u8,
    pub enc: u8,
    pub jpg: u8,
    pub ofa: u8,
}

/// A compute-instance profile offered inside a GPU instance (`1c.3g.40gb`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CiProfile {
    pub id: u32,
    pub name: String,
    pub compute_slices: u8,
    /// How many of this CI fit in an empty GI.
    pub instances: u8,
    /// SMs, where published; see [`GiProfile::ci_sm`] for the estimate otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sm: Option<u32>,
}

/// A value in a table that no public source states, or that sources disagree on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Caveat {
    pub kind: CaveatKind,
    /// Column the caveat applies to (`placements`, `memory_gib`, `engines.dec`, ...).
    pub field: String,
    /// Profile row it is narrowed to; all rows when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    pub note: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaveatKind {
    /// Not found in a public source; an educated assumption.
    Assumed,
    /// Sources disagree; the table holds one of the values.
    Uncertain,
}

impl CaveatKind {
    /// The mark shown next to a value in tables.
    pub fn mark(self) -> &'static str {
        match self {
            CaveatKind::Assumed => "*",
            CaveatKind::Uncertain => "?",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            CaveatKind::Assumed => "assumed",
            CaveatKind::Uncertain => "uncertain",
        }
    }
}

/// A GPU or MIG profile the catalog does not have, with what it has instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("unknown GPU '{}'; known GPUs: {known}", crate::bounds::short(found))]
    UnknownGpu { found: String, known: String },

    #[error(
        "unknown MIG profile '{}' on {gpu}; allowed: {allowed}",
        crate::bounds::short(found)
    )]
    UnknownProfile {
        gpu: String,
        found: String,
        allowed: String,
    },
}

/// All GPU models migbench knows.
#[derive(Debug, Clone)]
pub struct Catalog {
    gpus: Vec<GpuModel>,
}

impl Catalog {
    /// The catalog compiled into the binary.
    pub fn builtin() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| {
            let gpus = GPU_FILES
                .iter()
                .map(|(file, text)| {
                    GpuModel::from_toml(text)
                        .unwrap_or_else(|e| panic!("built-in GPU table {file} is invalid: {e}"))
                })
                .collect();
            Catalog { gpus }
        })
    }

    pub fn gpus(&self) -> &[GpuModel] {
        &self.gpus
    }

    /// Looks a GPU up by key (`h100-80gb`, case-insensitive) or by its NVML device name.
    pub fn gpu(&self, key_or_name: &str) -> Result<&GpuModel, CatalogError> {
        self.gpus
            .iter()
            .find(|g| g.key.eq_ignore_ascii_case(key_or_name))
            .or_else(|| self.by_nvml_name(key_or_name))
            .ok_or_else(|| CatalogError::UnknownGpu {
                found: key_or_name.to_string(),
                known: self.keys().join(", "),
            })
    }

    /// The model whose NVML device name matches (as `nvmlDeviceGetName` returns it).
    pub fn by_nvml_name(&self, name: &str) -> Option<&GpuModel> {
        let name = name.trim();
        self.gpus
            .iter()
            .find(|g| g.nvml_names.iter().any(|n| n.eq_ignore_ascii_case(name)))
    }

    pub fn keys(&self) -> Vec<&str> {
        self.gpus.iter().map(|g| g.key.as_str()).collect()
    }
}

impl GpuModel {
    /// Parses and checks one GPU table.
    pub fn from_toml(text: &str) -> Result<GpuModel, String> {
        let gpu: GpuModel = toml::from_str(text).map_err(|e| e.to_string())?;
        gpu.check()?;
        Ok(gpu)
    }

    /// Internal consistency of a table: the rules the layout engine relies on.
    fn check(&self) -> Result<(), String> {
        let mut ids = std::collections::HashSet::new();
        for p in &self.profiles {
            if !ids.insert(p.id) {
                return Err(format!("profile ID {} appears twice", p.id));
            }
            if p.placements.is_empty() {
                return Err(format!("profile {} has no placements", p.name));
            }
            if let Some(start) = p
                .placements
                .iter()
                .find(|&&s| s + p.memory_slices > self.memory_slices)
            {
                return Err(format!(
                    "profile {} placement {start}:{} runs past memory slice {}",
                    p.name, p.memory_slices, self.memory_slices
                ));
            }
            if p.compute_slices > self.compute_slices {
                return Err(format!(
                    "profile {} has more compute slices than the GPU",
                    p.name
                ));
            }
            if !p
                .compute_profiles
                .iter()
                .any(|c| c.compute_slices == p.compute_slices)
            {
                return Err(format!(
                    "profile {} lacks a full-size compute profile",
                    p.name
                ));
            }
        }
        for c in &self.caveats {
            if let Some(name) = &c.profile {
                if self.profile(name).is_err() {
                    return Err(format!("caveat names unknown profile {name}"));
                }
            }
        }
        Ok(())
    }

    /// Total memory in GiB.
    pub fn memory_gib(&self) -> f64 {
        self.memory_mib as f64 / 1024.0
    }

    /// Looks a profile up by name, alias or numeric profile ID (`3g.40gb`, `3g.39gb`, `9`).
    pub fn profile(&self, name_or_id: &str) -> Result<&GiProfile, CatalogError> {
        let wanted = name_or_id.trim().trim_start_matches("MIG ");
        let by_id = wanted.parse::<u32>().ok();
        self.profiles
            .iter()
            .find(|p| {
                Some(p.id) == by_id
                    || p.name.eq_ignore_ascii_case(wanted)
                    || p.aliases.iter().any(|a| a.eq_ignore_ascii_case(wanted))
            })
            .ok_or_else(|| CatalogError::UnknownProfile {
                gpu: self.key.clone(),
                found: name_or_id.to_string(),
                allowed: self.profile_names().join(", "),
            })
    }

    pub fn profile_names(&self) -> Vec<&str> {
        self.profiles.iter().map(|p| p.name.as_str()).collect()
    }

    /// The caveat on `field` for `profile` (or on the whole column), if any.
    pub fn caveat(&self, profile: Option<&str>, field: &str) -> Option<&Caveat> {
        self.caveats.iter().find(|c| {
            c.field == field
                && match (&c.profile, profile) {
                    (None, _) => true,
                    (Some(p), Some(q)) => p == q,
                    (Some(_), None) => false,
                }
        })
    }

    /// The caveats that apply to one profile row (its own and whole-column ones).
    pub fn caveats_for<'a>(&'a self, profile: &'a str) -> impl Iterator<Item = &'a Caveat> + 'a {
        self.caveats
            .iter()
            .filter(move |c| c.profile.as_deref().is_none_or(|p| p == profile))
    }
}

impl GiProfile {
    /// The compute profile that fills the whole GI (what `-cgi ... -C` creates).
    pub fn default_compute(&self) -> &CiProfile {
        self.compute_profiles
            .iter()
            .find(|c| c.compute_slices == self.compute_slices)
            .expect("checked on load: every profile has a full-size compute profile")
    }

    /// Looks a compute profile up by name or ID within this GI profile.
    pub fn compute_profile(&self, name_or_id: &str) -> Option<&CiProfile> {
        let by_id = name_or_id.parse::<u32>().ok();
        self.compute_profiles
            .iter()
            .find(|c| Some(c.id) == by_id || c.name.eq_ignore_ascii_case(name_or_id))
    }

    /// SMs of a compute instance: the published figure, else the GI's SMs in proportion to the
    /// compute slices (an estimate, flagged by the `compute_profiles.sm` caveat).
    pub fn ci_sm(&self, ci: &CiProfile) -> u32 {
        ci.sm.unwrap_or_else(|| {
            if ci.compute_slices == self.compute_slices {
                self.sm
            } else {
                self.sm * u32::from(ci.compute_slices) / u32::from(self.compute_slices)
            }
        })
    }

    /// The memory slices an instance at `start` occupies, as a bit mask.
    pub fn mask_at(&self, start: u8) -> u16 {
        (((1u32 << self.memory_slices) - 1) << start) as u16
    }

    /// Placements written as nvidia-smi's `-lgipp` does: `{0,2,4}:2`.
    pub fn placements_text(&self) -> String {
        let starts: Vec<String> = self.placements.iter().map(u8::to_string).collect();
        format!("{{{}}}:{}", starts.join(","), self.memory_slices)
    }
}
