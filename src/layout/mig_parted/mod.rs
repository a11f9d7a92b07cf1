//! NVIDIA mig-parted configuration files (`version: v1`), the YAML in which many fleets, and the
//! Kubernetes GPU operator's ConfigMap, declare MIG layouts:
//!
//! ```yaml
//! version: v1
//! mig-configs:
//!   all-balanced:
//!     - devices: all            # or a list of GPU indices: [0, 1]
//!       mig-enabled: true
//!       mig-devices:
//!         "1g.10gb": 2
//!         "3g.40gb": 1
//! ```
//!
//! [`MigPartedFile::parse`] checks a file by the rules of mig-parted's v1 spec (`api/spec/v1`) and
//! keeps the line and column of every value, so that a bad file is reported where it is wrong.
//! [`MigPartedFile::specs`] turns one label into a layout for a GPU; [`write`] writes layouts as a
//! file that `nvidia-mig-parted apply` accepts, one label each.
//!
//! mig-parted has no placements: `apply` tries orderings of the instances until the driver takes
//! one. A layout read from a file is placed by [`super::Layout::build`] like any other.
//! Writing is in [`write`].

mod write;
mod yaml;
pub use write::{devices_label, is_label_value, label, mig_devices, operator_label, write};
use yaml::{describe, kind, mapping, pos, string, version_shown};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

use super::{InstanceSpec, Layout};
use crate::catalog::GpuModel;
use crate::location::ScenarioError;

/// The only version of the spec there is.
pub const VERSION: &str = "v1";

/// A place in the file: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// A checked mig-parted file.
#[derive(Debug, Clone, PartialEq)]
pub struct MigPartedFile {
    pub path: PathBuf,
    /// Labels in file order, each with its entries.
    pub configs: Vec<(String, Vec<ConfigEntry>)>,
}

/// One entry of a label: the GPUs it is for and what they get.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigEntry {
    pub at: Pos,
    /// PCI device IDs (`0x233010DE`) the entry is limited to; any GPU when absent.
    pub device_filter: Option<Vec<String>>,
    /// GPU indices, or `None` for `all`.
    pub devices: Option<Vec<u32>>,
    pub mig_enabled: bool,
    /// `profile: count`, in file order, with where each profile is written.
    pub mig_devices: Vec<(String, u32, Pos)>,
    /// Where `mig-devices` is (the entry's place when absent).
    pub mig_devices_at: Pos,
}

impl ConfigEntry {
    /// Whether mig-parted applies this entry to GPU `index` of model `gpu`.
    fn applies_to(&self, gpu: &GpuModel, index: u32) -> bool {
        let device = self.devices.as_ref().is_none_or(|d| d.contains(&index));
        let filter = self
            .device_filter
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|id| same_device_id(id, &gpu.pci_device_ids)));
        device && filter
    }
}

/// Whether filter `0x233010DE` (mig-parted: device and vendor, optionally `:0xSSSSVVVV` with a
/// subsystem, which the catalog does not tell apart) names one of a model's device IDs.
fn same_device_id(filter: &str, catalog: &[String]) -> bool {
    let device = filter
        .split(':')
        .next()
        .and_then(crate::catalog::pci_device);
    device.is_some()
        && catalog
            .iter()
            .any(|c| crate::catalog::pci_device(c) == device)
}

impl MigPartedFile {
    /// Reads and checks a file.
    pub fn load(path: &Path) -> Result<MigPartedFile, ScenarioError> {
        let text = crate::input::read_to_string(path, crate::input::MIG_PARTED)
            .map_err(|e| ScenarioError::unreadable(path, "the mig-parted file", &e))?;
        MigPartedFile::parse(path, &text)
    }

    /// Checks `text` by the rules of mig-parted's v1 spec; `path` is used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<MigPartedFile, ScenarioError> {
        let err = |at: Pos, message: String| located(path, at, message);
        let docs = MarkedYaml::load_from_str(text).map_err(|e| {
            let m = e.marker();
            err(
                Pos {
                    line: m.line(),
                    column: m.col() + 1,
                },
                format!("not YAML: {}", e.info()),
            )
        })?;
        let Some(doc) = docs.first() else {
            return Err(err(
                Pos { line: 1, column: 1 },
                format!("the file is empty; a mig-parted file starts with `version: {VERSION}`"),
            ));
        };
        if let Some(second) = docs.get(1) {
            return Err(err(
                pos(second),
                "a mig-parted file holds one YAML document, found a second".into(),
            ));
        }
        // Until the file says `version: v1` it may be any file that happens to be YAML (a
        // scenario naming /etc/shadow): messages say where and what kind of thing is wrong, and
        // quote nothing of it.
        let top = match &doc.data {
            YamlData::Mapping(map) => map,
            _ => {
                return Err(err(
                    pos(doc),
                    format!(
                        "not a mig-parted file: expected a mapping with version and mig-configs, \
                         found {}",
                        kind(doc)
                    ),
                ))
            }
        };
        let field = |name: &str| {
            top.iter()
                .find(|(k, _)| string(k).as_deref() == Some(name))
                .map(|(_, v)| v)
        };
        match field("version") {
            None if !top.is_empty() => {
                return Err(err(
                    pos(doc),
                    format!(
                        "not a mig-parted file: no 'version' field; the file must say \
                         `version: {VERSION}`"
                    ),
                ))
            }
            Some(v) if string(v).as_deref() != Some(VERSION) => {
                return Err(err(
                    pos(v),
                    format!("unknown version {}; allowed: {VERSION}", version_shown(v)),
                ))
            }
            _ => {}
        }
        let top = mapping(doc, "the file", "a mapping with version and mig-configs")
            .map_err(|(at, m)| err(at, m))?;
        let mut configs = None;
        for (key, value) in &top {
            match key.as_str() {
                "version" => {}
                "mig-configs" => configs = Some(value),
                other => {
                    return Err(err(
                        pos(value),
                        format!(
                            "unexpected field '{}'; allowed: version, mig-configs",
                            crate::bounds::short(other)
                        ),
                    ))
                }
            }
        }
        let mut out = Vec::new();
        if let Some(configs) = configs {
            let labels = mapping(configs, "mig-configs", "a mapping of labels to entries")
                .map_err(|(at, m)| err(at, m))?;
            if labels.is_empty() {
                return Err(err(
                    pos(configs),
                    "at least one entry in 'mig-configs' is required".into(),
                ));
            }
            for (label, entries) in labels {
                let YamlData::Sequence(list) = &entries.data else {
                    return Err(err(
                        pos(entries),
                        format!(
                            "'{label}': expected a list of entries (- devices: ...), found {}",
                            describe(entries)
                        ),
                    ));
                };
                if list.is_empty() {
                    return Err(err(
                        pos(entries),
                        format!("at least one entry in '{label}' is required"),
                    ));
                }
                let entries = list
                    .iter()
                    .map(entry)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|(at, m)| err(at, format!("'{label}': {m}")))?;
                out.push((label, entries));
            }
        }
        Ok(MigPartedFile {
            path: path.to_path_buf(),
            configs: out,
        })
    }

    /// The labels, in file order.
    pub fn labels(&self) -> Vec<&str> {
        self.configs.iter().map(|(l, _)| l.as_str()).collect()
    }

    /// The layout that label `config` gives GPU `index` of model `gpu`, checked against the GPU's
    /// placements. A message without a place (the label or GPU is not in the file) is `Err(Left)`;
    /// one about a place in the file is `Err(Right)`.
    pub fn specs(
        &self,
        config: &str,
        gpu: &GpuModel,
        index: u32,
    ) -> Result<Vec<InstanceSpec>, Located> {
        let Some((_, entries)) = self.configs.iter().find(|(l, _)| l == config) else {
            return Err(Located::Unplaced(format!(
                "{} has no mig-config '{}'; its labels: {}",
                self.path.display(),
                crate::bounds::short(config),
                self.labels().join(", ")
            )));
        };
        // mig-parted applies every entry that matches, in order: the last one stands.
        let Some(entry) = entries.iter().rev().find(|e| e.applies_to(gpu, index)) else {
            return Err(Located::Unplaced(format!(
                "mig-config '{config}' in {} has no entry for GPU {index} ({}, PCI device {}): \
                 each entry's devices or device-filter leaves it out",
                self.path.display(),
                gpu.key,
                gpu.pci_device_ids.join(" or ")
            )));
        };
        let err = |at: Pos, message: String| Located::Placed(located(&self.path, at, message));
        if !entry.mig_enabled {
            return Err(err(
                entry.at,
                format!(
                    "mig-config '{config}' turns MIG off (mig-enabled: false) for GPU {index}; \
                     a mig or mig+mps variant needs mig-enabled: true (use mode full, timeslice \
                     or mps for a GPU without MIG)"
                ),
            ));
        }
        let mut specs = Vec::new();
        // GPU instances with split compute, by GI profile: mig-parted gives each compute
        // instance the last GPU instance of its profile while it fits, else a new one.
        let mut open: BTreeMap<String, (usize, u8)> = BTreeMap::new();
        let mut devices: Vec<&(String, u32, Pos)> = entry.mig_devices.iter().collect();
        // mig-parted's order: larger GPU instances first, then larger compute instances.
        devices.sort_by_key(|(name, ..)| {
            let f = fields(name).unwrap_or_default();
            (std::cmp::Reverse(f.1), std::cmp::Reverse(f.0))
        });
        // A count of 0 asks for nothing: mig-parted skips it, on any GPU.
        for (name, count, at) in devices.into_iter().filter(|d| d.1 > 0) {
            let (gi, ci) = resolve(gpu, name).map_err(|m| err(*at, m))?;
            for _ in 0..*count {
                match ci {
                    None => specs.push(InstanceSpec {
                        profile: gi.name.clone(),
                        start: None,
                        compute: Vec::new(),
                    }),
                    Some(ci) => {
                        let reuse = open.get(&gi.name).copied().filter(|&(i, used)| {
                            let same = specs[i].compute.iter().filter(|c| **c == ci.name).count();
                            used + ci.compute_slices <= gi.compute_slices
                                && same < usize::from(ci.instances)
                        });
                        match reuse {
                            Some((i, used)) => {
                                specs[i].compute.push(ci.name.clone());
                                open.insert(gi.name.clone(), (i, used + ci.compute_slices));
                            }
                            None => {
                                open.insert(gi.name.clone(), (specs.len(), ci.compute_slices));
                                specs.push(InstanceSpec {
                                    profile: gi.name.clone(),
                                    start: None,
                                    compute: vec![ci.name.clone()],
                                });
                            }
                        }
                    }
                }
            }
        }
        if specs.is_empty() {
            return Err(err(
                entry.mig_devices_at,
                format!(
                    "mig-config '{config}' enables MIG but creates no MIG device for GPU \
                     {index}; a mig variant needs at least one (such as \"{}\": 1)",
                    gpu.profiles[0].name
                ),
            ));
        }
        Layout::build(gpu, &specs).map_err(|e| {
            err(
                entry.mig_devices_at,
                format!(
                    "{} cannot take mig-config '{config}' as a layout: {e}",
                    gpu.key
                ),
            )
        })?;
        Ok(specs)
    }
}

/// What [`MigPartedFile::specs`] could not use: a message to place where the label is named, or
/// one placed in the mig-parted file.
#[derive(Debug, Clone, PartialEq)]
pub enum Located {
    Unplaced(String),
    Placed(ScenarioError),
}

fn located(path: &Path, at: Pos, message: String) -> ScenarioError {
    ScenarioError {
        file: path.to_path_buf(),
        line: at.line,
        column: at.column,
        message,
    }
}

/// The GI profile and, for a compute instance smaller than its GI (`1c.3g.40gb`), the CI profile
/// a mig-parted profile name stands for on `gpu`.
fn resolve<'g>(
    gpu: &'g GpuModel,
    name: &str,
) -> Result<
    (
        &'g crate::catalog::GiProfile,
        Option<&'g crate::catalog::CiProfile>,
    ),
    String,
> {
    let unknown = || {
        let names: Vec<&str> = gpu.profiles.iter().map(|p| p.name.as_str()).collect();
        format!(
            "'{}' is not a MIG profile of {}; its profiles: {} (and their compute instances, \
             such as 1c.{})",
            crate::bounds::short(name),
            gpu.key,
            names.join(", "),
            gpu.profiles
                .iter()
                .find(|p| p.compute_profiles.len() > 1)
                .map_or("3g.40gb", |p| p.name.as_str())
        )
    };
    let (c, g, _) = fields(name).ok_or_else(unknown)?;
    // `1c.3g.40gb` is a compute instance of a `3g.40gb` GPU instance; `3c.3g.40gb` fills it.
    let base = name.split(['+', '-']).next().unwrap_or(name);
    let gi_name = match base.split('.').count() {
        3 => name.split_once('.').map_or(name, |(_, rest)| rest),
        _ => name,
    };
    let gi = gpu.profile(gi_name).map_err(|_| unknown())?;
    if c == g {
        return Ok((gi, None));
    }
    let ci = gi.compute_profile(name).ok_or_else(|| {
        let cis: Vec<&str> = gi
            .compute_profiles
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        format!(
            "'{name}': {} offers no such compute instance; allowed: {}",
            gi.name,
            cis.join(", ")
        )
    })?;
    Ok((gi, Some(ci)))
}

/// `(c, g, gb)` of a profile name in mig-parted's format: `[Cc.]Gg.GBgb[+attr,...|-attr,...]`
/// (go-nvlib's `parseMigProfile`); `None` when it is not in that format.
fn fields(name: &str) -> Option<(u32, u32, u32)> {
    if name.contains('+') && name.contains('-') {
        return None;
    }
    let (base, attrs) = match name.split_once(['+', '-']) {
        Some((base, attrs)) => (base, Some(attrs)),
        None => (name, None),
    };
    if let Some(attrs) = attrs {
        let list: Vec<&str> = attrs.split(',').collect();
        let mut seen = std::collections::HashSet::new();
        for a in &list {
            let ok = !a.is_empty()
                && seen.insert(*a)
                && !a.starts_with(|c: char| c.is_ascii_digit() || c == '.')
                && !a.ends_with('.')
                && a.chars().all(|c| c.is_ascii_alphanumeric() || c == '.');
            if !ok {
                return None;
            }
        }
    }
    let field = |s: &str, unit: &str| -> Option<u32> {
        let n = s.strip_suffix(unit)?;
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        n.parse().ok().filter(|&v| v > 0)
    };
    let parts: Vec<&str> = base.split('.').collect();
    match parts[..] {
        [c, g, gb] => Some((field(c, "c")?, field(g, "g")?, field(gb, "gb")?)),
        [g, gb] => {
            let g = field(g, "g")?;
            Some((g, g, field(gb, "gb")?))
        }
        _ => None,
    }
}

pub(super) type Failure = (Pos, String);

/// One entry of a label, by `MigConfigSpec.UnmarshalJSON`'s rules.
fn entry(node: &MarkedYaml) -> Result<ConfigEntry, Failure> {
    let fields = mapping(
        node,
        "an entry",
        "a mapping with devices, mig-enabled and mig-devices",
    )?;
    let mut e = ConfigEntry {
        at: pos(node),
        device_filter: None,
        devices: None,
        mig_enabled: false,
        mig_devices: Vec::new(),
        mig_devices_at: pos(node),
    };
    let (mut devices, mut enabled, mut mig_devices) = (false, false, None);
    for (key, value) in fields {
        match key.as_str() {
            "device-filter" => e.device_filter = Some(device_filter(value)?),
            "devices" => {
                devices = true;
                e.devices = match &value.data {
                    _ if string(value).as_deref() == Some("all") => None,
                    YamlData::Sequence(list) => Some(
                        list.iter()
                            .map(|d| match &d.data {
                                YamlData::Value(Scalar::Integer(i)) => u32::try_from(*i)
                                    .map_err(|_| (pos(d), format!("devices: GPU index {i} is out of range; indices are 0 or more"))),
                                _ => Err((pos(d), format!("devices: expected GPU indices (numbers), found {}", describe(d)))),
                            })
                            .collect::<Result<_, _>>()?,
                    ),
                    _ => {
                        return Err((
                            pos(value),
                            format!(
                                "invalid input for 'devices': {}; allowed: all, or a list of GPU indices such as [0, 1]",
                                describe(value)
                            ),
                        ))
                    }
                };
            }
            "mig-enabled" => {
                enabled = true;
                let YamlData::Value(Scalar::Boolean(b)) = &value.data else {
                    return Err((
                        pos(value),
                        format!("mig-enabled: expected true or false, found {}", describe(value)),
                    ));
                };
                e.mig_enabled = *b;
            }
            "mig-devices" => {
                e.mig_devices_at = pos(value);
                mig_devices = Some(mig_device_counts(value)?);
            }
            other => {
                return Err((
                    pos(value),
                    format!(
                        "unexpected field '{}'; allowed: device-filter, devices, mig-enabled, mig-devices",
                        crate::bounds::short(other)
                    ),
                ))
            }
        }
    }
    for (given, name) in [(devices, "devices"), (enabled, "mig-enabled")] {
        if !given {
            return Err((e.at, format!("missing required field: {name}")));
        }
    }
    match (e.mig_enabled, mig_devices) {
        (true, None) => {
            return Err((
                e.at,
                "missing required field 'mig-devices' when 'mig-enabled' is true".into(),
            ))
        }
        (false, Some(d)) if !d.is_empty() => {
            return Err((
                e.mig_devices_at,
                "MIG devices included when 'mig-enabled' is false".into(),
            ))
        }
        (_, d) => e.mig_devices = d.unwrap_or_default(),
    }
    Ok(e)
}

fn device_filter(value: &MarkedYaml) -> Result<Vec<String>, Failure> {
    let bad = |n: &MarkedYaml| {
        (
            pos(n),
            format!(
                "device-filter: expected a PCI device ID such as \"0x233010DE\" or a list of them, found {}",
                describe(n)
            ),
        )
    };
    match &value.data {
        YamlData::Sequence(list) => list
            .iter()
            .map(|d| string(d).ok_or_else(|| bad(d)))
            .collect(),
        _ => string(value).map(|s| vec![s]).ok_or_else(|| bad(value)),
    }
}

/// `mig-devices`, by `MigConfig.AssertValidFormat`'s rules: valid profile names, counts of 0 or
/// more, not all of them 0 (an empty mapping is allowed: MIG on, no devices).
fn mig_device_counts(value: &MarkedYaml) -> Result<Vec<(String, u32, Pos)>, Failure> {
    let mut out = Vec::new();
    for (name, count) in mapping(value, "mig-devices", "a mapping of MIG profiles to counts")? {
        if fields(&name).is_none() {
            return Err((
                pos(count),
                format!(
                    "error validating values in 'mig-devices' field: invalid format for '{}': \
                     a MIG profile is written [Cc.]Gg.GBgb[+attr,...], such as 1g.10gb, \
                     1g.10gb+me or 1c.3g.40gb",
                    crate::bounds::short(&name)
                ),
            ));
        }
        let n = match &count.data {
            YamlData::Value(Scalar::Integer(i)) if *i >= 0 => u32::try_from(*i).ok(),
            _ => None,
        }
        .filter(|&n| n <= u32::from(u8::MAX))
        .ok_or_else(|| {
            (
                pos(count),
                format!(
                    "error validating values in 'mig-devices' field: invalid count for '{name}': \
                     {}; a count is a whole number from 0 to 255",
                    describe(count)
                ),
            )
        })?;
        out.push((name, n, pos(count)));
    }
    if !out.is_empty() && out.iter().all(|(_, n, _)| *n == 0) {
        return Err((
            pos(value),
            "error validating values in 'mig-devices' field: all counts for all MigProfiles are 0"
                .into(),
        ));
    }
    Ok(out)
}
