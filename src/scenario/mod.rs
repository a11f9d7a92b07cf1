//! Scenario files: which GPU, which workloads, and the variants (sharing modes) to compare.
//!
//! A scenario is declarative (what to run), kept apart from the orchestrator (how to run it).
//! [`Scenario::load`] parses and checks a file completely before anything runs: unknown keys,
//! unknown GPUs and workloads, and layouts the GPU cannot take are errors that name the file,
//! line and column, what was found and what is allowed.

mod location;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

pub use location::ScenarioError;

use crate::catalog::{Catalog, GpuModel};
use crate::layout::{InstanceSpec, Layout};
use crate::loadgen::LoadSpec;
use crate::mode::SharingMode;
use crate::workload::{self, Workload, WorkloadKind};

/// A scenario file as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub scenario: Header,
    pub gpu: GpuSpec,
    /// Workloads defined by this scenario, by name; shipped workloads need no entry.
    #[serde(default)]
    pub workloads: BTreeMap<String, Workload>,
    /// The load on every server of every variant that gives none of its own.
    #[serde(default)]
    pub load: Option<Spanned<LoadSpec>>,
    pub variants: Vec<Variant>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: String,
    /// The experiment this scenario reproduces, with its source.
    #[serde(default)]
    pub source: String,
    /// Simulated seconds per real second under `--sim` when `--time-scale` is not given. Serving
    /// scenarios need a lower one than batch jobs: token timings are milliseconds.
    #[serde(default)]
    pub time_scale: Option<Spanned<f64>>,
}

/// The GPU a scenario runs on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuSpec {
    /// Catalog key (`h100-80gb`) or NVML name.
    pub model: Spanned<String>,
    /// Which physical GPU on a real machine: an index or a `GPU-...` UUID. Default: index 0.
    #[serde(default)]
    pub index: Option<u32>,
    #[serde(default)]
    pub uuid: Option<String>,
    /// Price per GPU-hour, for cost per unit in reports.
    #[serde(default)]
    pub price_per_hour: Option<f64>,
}

/// One way of running the jobs: a sharing mode, its setup, and the jobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub name: Spanned<String>,
    pub mode: Spanned<SharingMode>,
    /// MIG layout (`mig`, `mig+mps`).
    #[serde(default)]
    pub layout: Option<Spanned<Vec<InstanceSpec>>>,
    /// MPS settings (`mps`, `mig+mps`).
    #[serde(default)]
    pub mps: Option<Spanned<MpsSettings>>,
    pub jobs: Vec<JobGroup>,
    /// The load on each of this variant's servers; replaces the scenario's `[load]`.
    #[serde(default)]
    pub load: Option<Spanned<LoadSpec>>,
    /// How many times to run the variant.
    #[serde(default = "one")]
    pub repetitions: u32,
}

/// MPS control-daemon defaults, set before any client starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MpsSettings {
    /// `set_default_active_thread_percentage`: the share of SMs a client may use (1–100).
    #[serde(default)]
    pub active_thread_percentage: Option<u8>,
    /// `set_default_device_pinned_mem_limit`: memory one client may allocate, GiB.
    #[serde(default)]
    pub pinned_memory_limit_gib: Option<f64>,
}

/// `count` jobs of one workload.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobGroup {
    pub workload: Spanned<String>,
    #[serde(default = "one")]
    pub count: u32,
    /// Seconds between the starts of successive jobs of this group (0: all at once).
    #[serde(default)]
    pub stagger_s: f64,
    /// Seconds after the variant starts before the first job of this group.
    #[serde(default)]
    pub start_s: f64,
    /// Layout instances (0-based, in layout order) these jobs may use; all when absent.
    /// Jobs queue for the first free instance when there are more jobs than instances.
    #[serde(default)]
    pub instances: Option<Spanned<Vec<usize>>>,
    /// Kills a job that runs longer; overrides the workload's timeout.
    #[serde(default)]
    pub timeout_s: Option<f64>,
    /// Arguments appended to the workload's command for these jobs (a server's memory fraction
    /// under MPS, say: `["--gpu-memory-utilization", "0.45"]`).
    #[serde(default)]
    pub args: Vec<String>,
}

fn one() -> u32 {
    1
}

/// A checked scenario, ready for the orchestrator.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub path: PathBuf,
    /// The file as read, kept for the run's manifest.
    pub text: String,
    pub file: ScenarioFile,
    pub gpu: &'static GpuModel,
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError::io(path, &e))?;
        Scenario::parse(path, text)
    }

    /// Parses and checks scenario text; `path` is used in messages.
    pub fn parse(path: &Path, text: String) -> Result<Scenario, ScenarioError> {
        let file: ScenarioFile = toml::from_str(&text)
            .map_err(|e| ScenarioError::at(path, &text, e.span(), e.message().to_string()))?;
        let err = |span: std::ops::Range<usize>, message: String| {
            ScenarioError::at(path, &text, Some(span), message)
        };
        let gpu = Catalog::builtin()
            .gpu(file.gpu.model.get_ref())
            .map_err(|e| err(file.gpu.model.span(), e.to_string()))?;
        for (name, w) in &file.workloads {
            // Workload tables carry no spans; point at their header.
            let header = format!("[workloads.{name}]");
            let at = text.find(&header).map_or(0..0, |i| i..i);
            if &w.name != name {
                return Err(err(
                    at,
                    format!("{header} must have name = \"{name}\", found \"{}\"", w.name),
                ));
            }
            w.check().map_err(|m| err(at.clone(), m))?;
        }
        if let Some(t) = &file.scenario.time_scale {
            if !(*t.get_ref() > 0.0 && t.get_ref().is_finite()) {
                return Err(err(
                    t.span(),
                    format!("time_scale must be above 0, found {}", t.get_ref()),
                ));
            }
        }
        if file.gpu.index.is_some() && file.gpu.uuid.is_some() {
            return Err(err(
                file.gpu.model.span(),
                "[gpu] takes index or uuid, not both".into(),
            ));
        }
        if file.gpu.price_per_hour.is_some_and(|p| p < 0.0) {
            return Err(err(
                file.gpu.model.span(),
                "[gpu] price_per_hour must not be negative".into(),
            ));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        for load in file
            .load
            .iter()
            .chain(file.variants.iter().filter_map(|v| v.load.as_ref()))
        {
            load.get_ref()
                .check(base)
                .map_err(|m| err(load.span(), m))?;
        }
        if file.variants.is_empty() {
            return Err(err(
                0..0,
                "a scenario needs at least one [[variants]]".into(),
            ));
        }
        let scenario = Scenario {
            path: path.to_path_buf(),
            text: text.clone(),
            file,
            gpu,
        };
        let mut names = std::collections::HashSet::new();
        for v in &scenario.file.variants {
            if !names.insert(v.name.get_ref().as_str()) {
                return Err(err(
                    v.name.span(),
                    format!("variant name '{}' is used twice", v.name.get_ref()),
                ));
            }
            scenario
                .check_variant(v)
                .map_err(|(span, m)| err(span, m))?;
        }
        Ok(scenario)
    }

    pub fn name(&self) -> &str {
        self.file.scenario.name.get_ref()
    }

    /// The workload a job names: the scenario's own definition first, then the shipped ones.
    pub fn workload(&self, name: &str) -> Result<&Workload, crate::error::Error> {
        match self.file.workloads.get(name) {
            Some(w) => Ok(w),
            None => workload::find(name),
        }
    }

    /// The load on the variant's servers: its own, else the scenario's.
    pub fn load_for<'a>(&'a self, variant: &'a Variant) -> Option<&'a LoadSpec> {
        variant
            .load
            .as_ref()
            .or(self.file.load.as_ref())
            .map(Spanned::get_ref)
    }

    /// The workload a job group runs, with the group's `args` appended to its command.
    pub fn job_workload(
        &self,
        group: &JobGroup,
    ) -> Result<std::borrow::Cow<'_, Workload>, crate::error::Error> {
        let workload = self.workload(group.workload.get_ref())?;
        if group.args.is_empty() {
            return Ok(std::borrow::Cow::Borrowed(workload));
        }
        let mut w = workload.clone();
        w.command.extend(group.args.iter().cloned());
        Ok(std::borrow::Cow::Owned(w))
    }

    /// The variant's MIG layout, placed (checked at load, so this cannot fail for a loaded one).
    pub fn layout(&self, variant: &Variant) -> Option<Layout<'static>> {
        let specs = variant.layout.as_ref()?;
        Layout::build(self.gpu, specs.get_ref()).ok()
    }

    fn check_variant(&self, v: &Variant) -> Result<(), (std::ops::Range<usize>, String)> {
        let mode = *v.mode.get_ref();
        match (&v.layout, mode.uses_mig()) {
            (None, true) => {
                return Err((v.mode.span(), format!("mode '{mode}' needs a layout = [...] of MIG instances")))
            }
            (Some(l), false) => {
                return Err((
                    l.span(),
                    format!("a layout is only allowed with modes mig and mig+mps; this variant's mode is '{mode}'"),
                ))
            }
            (Some(l), true) => {
                let layout = Layout::build(self.gpu, l.get_ref()).map_err(|e| {
                    (l.span(), format!("{} cannot take this layout: {e}", self.gpu.key))
                })?;
                for group in &v.jobs {
                    if let Some(idx) = &group.instances {
                        let count = slot_count(&layout);
                        if let Some(bad) = idx.get_ref().iter().find(|&&i| i >= count) {
                            return Err((
                                idx.span(),
                                format!("instance {bad} does not exist: the layout has {count} (0 to {})", count - 1),
                            ));
                        }
                    }
                }
            }
            (None, false) => {
                if let Some(idx) = v.jobs.iter().find_map(|g| g.instances.as_ref()) {
                    return Err((idx.span(), format!("instances are only allowed with modes mig and mig+mps; this variant's mode is '{mode}'")));
                }
            }
        }
        if let Some(mps) = &v.mps {
            if !matches!(mode, SharingMode::Mps | SharingMode::MigMps) {
                return Err((mps.span(), format!("mps settings are only allowed with modes mps and mig+mps; this variant's mode is '{mode}'")));
            }
            if let Some(p) = mps.get_ref().active_thread_percentage {
                if !(1..=100).contains(&p) {
                    return Err((
                        mps.span(),
                        format!("active_thread_percentage must be 1 to 100, found {p}"),
                    ));
                }
            }
            if let Some(g) = mps.get_ref().pinned_memory_limit_gib {
                if g <= 0.0 {
                    return Err((
                        mps.span(),
                        format!("pinned_memory_limit_gib must be above 0, found {g}"),
                    ));
                }
            }
        }
        if v.jobs.is_empty() {
            return Err((
                v.name.span(),
                "a variant needs at least one job: jobs = [{ workload = \"...\" }]".into(),
            ));
        }
        let mut serves = false;
        for group in &v.jobs {
            let w = self
                .job_workload(group)
                .map_err(|e| (group.workload.span(), e.to_string()))?;
            if let Some(server) = &w.sim.server {
                server
                    .fraction_in(&w.command)
                    .map_err(|e| (group.workload.span(), format!("{}: {e}", w.name)))?;
            }
            serves |= w.kind == WorkloadKind::Server;
            if group.count == 0
                || group.stagger_s < 0.0
                || group.start_s < 0.0
                || group.timeout_s.is_some_and(|t| t <= 0.0)
            {
                return Err((
                    group.workload.span(),
                    "jobs need count >= 1, stagger_s and start_s >= 0, and timeout_s > 0".into(),
                ));
            }
        }
        if serves && self.load_for(v).is_none() {
            return Err((
                v.name.span(),
                format!(
                    "variant '{}' runs servers but has no load: add a [load] table to the scenario or load = {{ ... }} to the variant",
                    v.name.get_ref()
                ),
            ));
        }
        if let (Some(load), false) = (&v.load, serves) {
            return Err((
                load.span(),
                format!(
                    "variant '{}' has a load but no server workload to put it on",
                    v.name.get_ref()
                ),
            ));
        }
        if v.repetitions == 0 {
            return Err((v.name.span(), "repetitions must be at least 1".into()));
        }
        Ok(())
    }
}

/// Places jobs can go to in a MIG layout: one per compute instance, in layout order.
pub fn slot_count(layout: &Layout) -> usize {
    layout.instances.iter().map(|i| i.compute.len()).sum()
}
