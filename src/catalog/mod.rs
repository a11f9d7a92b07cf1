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
    ("a800-40gb.toml", include_str!("gpus/a800-40gb.toml")),
    ("a800-80gb.toml", include_str!("gpus/a800-80gb.toml")),
    ("a30-24gb.toml", include_str!("gpus/a30-24gb.toml")),
    ("h100-80gb.toml", include_str!("gpus/h100-80gb.toml")),
    (
        "h100-pcie-80gb.toml",
        include_str!("gpus/h100-pcie-80gb.toml"),
    ),
    ("h800-80gb.toml", include_str!("gpus/h800-80gb.toml")),
    (
        "h800-pcie-80gb.toml",
        include_str!("gpus/h800-pcie-80gb.toml"),
    ),
    ("h100-94gb.toml", include_str!("gpus/h100-94gb.toml")),
    (
        "h800-nvl-94gb.toml",
        include_str!("gpus/h800-nvl-94gb.toml"),
    ),
    ("h100-96gb.toml", include_str!("gpus/h100-96gb.toml")),
    ("gh200-96gb.toml", include_str!("gpus/gh200-96gb.toml")),
    ("h20-96gb.toml", include_str!("gpus/h20-96gb.toml")),
    ("h200-141gb.toml", include_str!("gpus/h200-141gb.toml")),
    (
        "h200-nvl-141gb.toml",
        include_str!("gpus/h200-nvl-141gb.toml"),
    ),
    ("gh200-144gb.toml", include_str!("gpus/gh200-144gb.toml")),
    ("b200-180gb.toml", include_str!("gpus/b200-180gb.toml")),
    ("gb200-186gb.toml", include_str!("gpus/gb200-186gb.toml")),
    ("b300-288gb.toml", include_str!("gpus/b300-288gb.toml")),
    ("gb300-288gb.toml", include_str!("gpus/gb300-288gb.toml")),
    (
        "rtx-pro-6000-96gb.toml",
        include_str!("gpus/rtx-pro-6000-96gb.toml"),
    ),
    (
        "rtx-pro-5000-48gb.toml",
        include_str!("gpus/rtx-pro-5000-48gb.toml"),
    ),
    (
        "rtx-pro-4500-32gb.toml",
        include_str!("gpus/rtx-pro-4500-32gb.toml"),
    ),
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
    /// The key of a model whose profile table this one shares (an H800 has the H100's): its
    /// profiles and their caveats are taken from there, so one table is kept once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profiles_from: Option<String>,
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
    /// Empty in a file that names `profiles_from`; filled from that model on load.
    #[serde(default)]
    pub profiles: Vec<GiProfile>,
    /// The board's power, for the simulator's energy model.
    pub power: Power,
}

/// What a board draws: the simulator's power model is `idle_w` plus the share of SMs at work
/// times the rest of `board_w` (docs/energy.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Power {
    /// The board's maximum power (TDP) in watts, from its data sheet.
    pub board_w: f64,
    /// What it draws with no work, in watts.
    pub idle_w: f64,
    pub source: String,
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
    /// A variant of a plain profile (`+me`, `+gfx`, `+me.all`, `-me`): the same slices with other
    /// engines; the suffix every name of the profile ends with.
    #[serde(default, skip_serializing_if = "Variant::is_plain")]
    pub variant: Variant,
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

/// What sets a profile apart from the plain one of the same slices. Drivers name it by a suffix;
/// the rules it brings to a layout are in [`GiProfile::media_conflict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Variant {
    /// The plain profile (no suffix).
    #[default]
    #[serde(rename = "")]
    Plain,
    /// `+me`: carries the GPU's one set of media extensions.
    #[serde(rename = "+me")]
    MediaExtensions,
    /// `+me.all`: holds every media engine of the GPU.
    #[serde(rename = "+me.all")]
    AllMedia,
    /// `-me`: holds no media engine.
    #[serde(rename = "-me")]
    NoMedia,
    /// `+gfx`: can run graphics (RTX PRO).
    #[serde(rename = "+gfx")]
    Graphics,
}

impl Variant {
    pub fn is_plain(&self) -> bool {
        *self == Variant::Plain
    }

    /// The suffix drivers and mig-parted put after the profile name (`""` for the plain one).
    pub fn suffix(self) -> &'static str {
        match self {
            Variant::Plain => "",
            Variant::MediaExtensions => "+me",
            Variant::AllMedia => "+me.all",
            Variant::NoMedia => "-me",
            Variant::Graphics => "+gfx",
        }
    }

    /// The variant a profile name's suffix says (`1g.24gb+me.all`), `Plain` without one.
    pub fn of_name(name: &str) -> Option<Variant> {
        match name.find(['+', '-']).map(|i| &name[i..]) {
            None => Some(Variant::Plain),
            Some("+me") => Some(Variant::MediaExtensions),
            Some("+me.all") => Some(Variant::AllMedia),
            Some("-me") => Some(Variant::NoMedia),
            Some("+gfx") => Some(Variant::Graphics),
            Some(_) => None,
        }
    }
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
            Catalog::from_files(GPU_FILES)
                .unwrap_or_else(|e| panic!("the built-in GPU tables are invalid: {e}"))
        })
    }

    /// Reads GPU tables given as `(file name, contents)`: each parsed, `profiles_from` filled
    /// in, each checked, and the catalog checked as a whole (no key, name or PCI ID twice).
    pub fn from_files(files: &[(&str, &str)]) -> Result<Catalog, String> {
        let mut gpus = Vec::with_capacity(files.len());
        for (file, text) in files {
            let gpu: GpuModel = toml::from_str(text).map_err(|e| format!("{file}: {e}"))?;
            gpus.push(gpu);
        }
        for i in 0..gpus.len() {
            let Some(from) = gpus[i].profiles_from.clone() else {
                continue;
            };
            let at = |e: String| format!("{}: {e}", files[i].0);
            if !gpus[i].profiles.is_empty() {
                return Err(at(format!(
                    "profiles_from = \"{from}\" and profiles of its own: give one or the other"
                )));
            }
            let source = gpus
                .iter()
                .find(|g| g.key == from && g.profiles_from.is_none())
                .ok_or_else(|| {
                    at(format!(
                        "profiles_from = \"{from}\" names no GPU with a profile table of its own"
                    ))
                })?;
            let (profiles, inherited) = source.profile_table();
            gpus[i].profiles = profiles;
            gpus[i].caveats.extend(inherited);
        }
        for (gpu, (file, _)) in gpus.iter().zip(files) {
            gpu.check().map_err(|e| format!("{file}: {e}"))?;
        }
        let catalog = Catalog { gpus };
        catalog.check()?;
        Ok(catalog)
    }

    /// No two models share a key, an NVML name or a PCI device ID: each identifies one model.
    fn check(&self) -> Result<(), String> {
        let mut seen: std::collections::HashMap<String, &str> = Default::default();
        for g in &self.gpus {
            let names = g
                .nvml_names
                .iter()
                .map(|n| format!("name {}", short_name(n)));
            let ids = g.pci_device_ids.iter().map(|id| match pci_device(id) {
                Some(d) => Ok(format!("PCI device ID {d:#06x}")),
                None => Err(format!(
                    "{}: PCI device ID '{id}' is not a hexadecimal ID such as 0x2330",
                    g.key
                )),
            });
            let mut all = vec![Ok(format!("key {}", g.key.to_ascii_lowercase()))];
            all.extend(names.map(Ok));
            all.extend(ids);
            for what in all {
                let what = what?;
                if let Some(other) = seen.insert(what.clone(), &g.key) {
                    return Err(format!("{what} is given by both {other} and {}", g.key));
                }
            }
        }
        Ok(())
    }

    pub fn gpus(&self) -> &[GpuModel] {
        &self.gpus
    }

    /// Looks a GPU up by key (`h100-80gb`, case-insensitive), by its NVML device name (with or
    /// without "NVIDIA ") or by its PCI device ID (`0x2330`, or `0x233010DE` as mig-parted
    /// writes it).
    pub fn gpu(&self, key_or_name: &str) -> Result<&GpuModel, CatalogError> {
        self.gpus
            .iter()
            .find(|g| g.key.eq_ignore_ascii_case(key_or_name.trim()))
            .or_else(|| self.by_nvml_name(key_or_name))
            .or_else(|| self.by_pci_device_id(key_or_name))
            .ok_or_else(|| CatalogError::UnknownGpu {
                found: key_or_name.to_string(),
                known: self.keys().join(", "),
            })
    }

    /// The model of a GPU as its driver describes it: by the board's PCI device ID where the
    /// catalog knows it, since names drift between drivers and board revisions, else by its
    /// NVML name. `pci_device_id` is NVML's `pciDeviceId`, the device ID above NVIDIA's vendor ID
    /// (`0x233010DE`).
    pub fn identify(
        &self,
        pci_device_id: Option<u32>,
        name: &str,
    ) -> Result<&GpuModel, CatalogError> {
        pci_device_id
            .and_then(|id| self.by_pci_device_id(&format!("{id:#010x}")))
            .or_else(|| self.by_nvml_name(name))
            .ok_or_else(|| CatalogError::UnknownGpu {
                found: match pci_device_id {
                    Some(id) => format!("{name} (PCI device ID {:#06x})", id >> 16),
                    None => name.to_string(),
                },
                known: self.keys().join(", "),
            })
    }

    /// The model whose NVML device name matches (as `nvmlDeviceGetName` returns it, or without
    /// its "NVIDIA " prefix, as data sheets and `lspci` write it).
    pub fn by_nvml_name(&self, name: &str) -> Option<&GpuModel> {
        let name = short_name(name);
        self.gpus
            .iter()
            .find(|g| g.nvml_names.iter().any(|n| short_name(n) == name))
    }

    /// The model with this PCI device ID.
    pub fn by_pci_device_id(&self, id: &str) -> Option<&GpuModel> {
        let wanted = pci_device(id)?;
        self.gpus.iter().find(|g| {
            g.pci_device_ids
                .iter()
                .any(|own| pci_device(own) == Some(wanted))
        })
    }

    pub fn keys(&self) -> Vec<&str> {
        self.gpus.iter().map(|g| g.key.as_str()).collect()
    }
}

/// A device name compared without case, surrounding space or NVIDIA's prefix.
fn short_name(name: &str) -> String {
    let name = name.trim().to_ascii_lowercase();
    name.strip_prefix("nvidia ")
        .unwrap_or(&name)
        .trim()
        .to_string()
}

/// The 16-bit device ID of `0x2330`, `2330` or `0x233010DE` (device then NVIDIA's vendor ID
/// 10DE, as mig-parted's `device-filter` writes it); `None` for anything else.
pub fn pci_device(id: &str) -> Option<u16> {
    let id = id.trim();
    let hex = id
        .strip_prefix("0x")
        .or_else(|| id.strip_prefix("0X"))
        .unwrap_or(id);
    let device = match hex.len() {
        1..=4 => hex,
        8 if hex[4..].eq_ignore_ascii_case("10de") => &hex[..4],
        _ => return None,
    };
    u16::from_str_radix(device, 16).ok()
}

impl GpuModel {
    /// Parses and checks one GPU table that has a profile table of its own.
    pub fn from_toml(text: &str) -> Result<GpuModel, String> {
        let gpu: GpuModel = toml::from_str(text).map_err(|e| e.to_string())?;
        if let Some(from) = &gpu.profiles_from {
            return Err(format!(
                "profiles_from = \"{from}\" needs the catalog: read it with Catalog::from_files"
            ));
        }
        gpu.check()?;
        Ok(gpu)
    }

    /// The profiles, and the caveats on them, for a model that shares this table: caveats on
    /// the whole GPU (its names, memory, SMs) stay here.
    fn profile_table(&self) -> (Vec<GiProfile>, Vec<Caveat>) {
        const OWN: [&str; 5] = [
            "nvml_names",
            "pci_device_ids",
            "memory_mib",
            "sm_count",
            "power.board_w",
        ];
        let caveats = self
            .caveats
            .iter()
            .filter(|c| !OWN.contains(&c.field.as_str()))
            .map(|c| Caveat {
                note: format!("as on {}: {}", self.key, c.note),
                ..c.clone()
            })
            .collect();
        (self.profiles.clone(), caveats)
    }

    /// Internal consistency of a table: the rules the layout engine relies on.
    fn check(&self) -> Result<(), String> {
        let power = &self.power;
        if !(power.board_w.is_finite() && (1.0..=5000.0).contains(&power.board_w)) {
            return Err(format!(
                "power.board_w = {}: a board draws 1 to 5000 W",
                power.board_w
            ));
        }
        if !(power.idle_w.is_finite() && (0.0..power.board_w).contains(&power.idle_w)) {
            return Err(format!(
                "power.idle_w = {}: from 0 to below board_w ({})",
                power.idle_w, power.board_w
            ));
        }
        if self.profiles.is_empty() {
            return Err("no MIG profiles: give [[profiles]] or profiles_from".into());
        }
        if !(1..=16).contains(&self.memory_slices) {
            return Err(format!(
                "memory_slices = {}: the placement grid must have 1 to 16 units",
                self.memory_slices
            ));
        }
        let mut ids = std::collections::HashSet::new();
        for p in &self.profiles {
            if !ids.insert(p.id) {
                return Err(format!("profile ID {} appears twice", p.id));
            }
            for name in std::iter::once(&p.name).chain(&p.aliases) {
                if Variant::of_name(name) != Some(p.variant) {
                    return Err(format!(
                        "profile {name} (ID {}): its name must end in '{}' (variant = \"{}\"), \
                         or the variant must say what its suffix means",
                        p.id,
                        p.variant.suffix(),
                        p.variant.suffix()
                    ));
                }
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

    /// The profiles layouts are made of unless others are named: the plain ones, and a variant
    /// only where it allows more instances of its shape than the plain profiles do (the RTX PRO
    /// 5000's three 1g.12gb-me beside one 1g.12gb), as otherwise it would only repeat layouts.
    pub fn default_profiles(&self) -> Vec<&GiProfile> {
        let plain_most = |p: &GiProfile| {
            self.profiles
                .iter()
                .filter(|q| q.variant.is_plain())
                .filter(|q| {
                    (q.compute_slices, q.memory_slices) == (p.compute_slices, p.memory_slices)
                })
                .map(|q| q.instances)
                .max()
                .unwrap_or(0)
        };
        self.profiles
            .iter()
            .filter(|p| p.variant.is_plain() || p.instances > plain_most(p))
            .collect()
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
    /// `+me` or `+me.all`: the instance carries the GPU's media extensions, of which there is one
    /// set.
    pub fn media_extensions(&self) -> bool {
        matches!(self.variant, Variant::MediaExtensions | Variant::AllMedia)
    }

    /// Why this instance and `other` cannot be on one GPU together for their media engines, if
    /// they cannot: a GPU has one set of media extensions (UG: one `+me` instance), and a
    /// `+me.all` instance holds every media engine, so beside it only `-me` instances fit (the
    /// instance counts of `nvidia-smi mig -lgip` on an RTX PRO 6000; docs/mig.md).
    pub fn media_conflict(&self, other: &GiProfile) -> Option<&'static str> {
        let all_media = |a: &GiProfile, b: &GiProfile| {
            a.variant == Variant::AllMedia && b.variant != Variant::NoMedia
        };
        if self.media_extensions() && other.media_extensions() {
            Some("both carry media extensions; a GPU has one set, so at most one +me or +me.all instance is allowed")
        } else if all_media(self, other) || all_media(other, self) {
            Some("a +me.all instance holds every media engine, so only -me instances fit beside it")
        } else {
            None
        }
    }

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
