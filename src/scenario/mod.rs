//! Scenario files: which GPU, which workloads, and the variants (sharing modes) to compare.
//!
//! A scenario is declarative (what to run), kept apart from the orchestrator (how to run it).
//! [`Scenario::load`] parses and checks a file completely before anything runs: unknown keys,
//! unknown GPUs and workloads, and layouts the GPU cannot take are errors that name the file,
//! line and column, what was found and what is allowed.

mod file;
pub mod load;
pub mod price;

use std::path::{Path, PathBuf};

use toml::Spanned;

pub use crate::location::ScenarioError;
use crate::location::{self, Step};
pub use file::*;

use crate::bounds;
use crate::catalog::{Catalog, GpuModel};
use crate::layout::Layout;
use crate::loadgen::LoadSpec;
use crate::mode::SharingMode;
use crate::workload::{self, Workload, WorkloadKind};

/// Where a run directory keeps its copies of the files its scenario names ([`Scenario::side_files`]):
/// a folder of their own, so that no name a scenario gives (`journal.jsonl`, `events.jsonl`,
/// `logs`) can land on one of the run's own files.
pub const SIDE_DIR: &str = "scenario-files";

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
    /// The files beside the scenario that it names by a relative path inside its directory (the
    /// mig-parted files of its layouts), as written: a run keeps a copy of each at the same
    /// place below its [`SIDE_DIR`], so that its `scenario.toml` still reads.
    pub fn side_files(&self) -> Vec<String> {
        let mut files: Vec<String> = self
            .file
            .variants
            .iter()
            .filter_map(|v| match v.layout.as_ref().map(|l| l.get_ref()) {
                Some(LayoutSource::MigParted(r)) => Some(r.mig_parted.clone()),
                _ => None,
            })
            .filter(|f| {
                Path::new(f)
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)))
            })
            .collect();
        files.sort();
        files.dedup();
        files
    }

    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let bytes = crate::input::read(path, crate::input::SCENARIO)
            .map_err(|e| ScenarioError::io(path, &e))?;
        let text = String::from_utf8(bytes)
            .map_err(|e| location::not_utf8(path, e.as_bytes(), &e.utf8_error()))?;
        Scenario::parse(path, text)
    }

    /// Parses and checks scenario text; `path` is used in messages, and the files it names are
    /// read beside it.
    pub fn parse(path: &Path, text: String) -> Result<Scenario, ScenarioError> {
        let base = path.parent().unwrap_or(Path::new("."));
        Scenario::parse_in(path, text, base)
    }

    /// [`Scenario::parse`], reading the files it names below `base` (a run keeps its copies of
    /// them apart: [`SIDE_DIR`]).
    pub fn parse_in(path: &Path, text: String, base: &Path) -> Result<Scenario, ScenarioError> {
        let file: ScenarioFile =
            toml::from_str(&text).map_err(|e| location::toml_error(path, &text, &e))?;
        let err = |span: std::ops::Range<usize>, message: String| {
            ScenarioError::at(path, &text, Some(span), message)
        };
        // Where a value without a span of its own sits; the start of the file if nowhere.
        let at = |steps: &[Step]| location::span_of(&text, steps).unwrap_or(0..0);
        let name = &file.scenario.name;
        bounds::check_name("scenario name", name.get_ref()).map_err(|m| err(name.span(), m))?;
        let gpu = Catalog::builtin()
            .gpu(file.gpu.model.get_ref())
            .map_err(|e| err(file.gpu.model.span(), e.to_string()))?;
        for (name, w) in &file.workloads {
            let table = [Step::Key("workloads"), Step::Key(name)];
            bounds::check_name("workload name", name)
                .map_err(|m| err(location::key_span_of(&text, &table).unwrap_or(0..0), m))?;
            if &w.name != name {
                return Err(err(
                    at(&[table[0], table[1], Step::Key("name")]),
                    format!(
                        "[workloads.{name}] must have name = \"{name}\", found {}",
                        bounds::quote(&w.name)
                    ),
                ));
            }
            w.check().map_err(|e| {
                let mut steps = table.to_vec();
                steps.extend(e.key.split('.').map(Step::Key));
                err(at(&steps), e.message)
            })?;
        }
        if let Some(t) = &file.scenario.time_scale {
            if !(*t.get_ref() > 0.0 && t.get_ref().is_finite()) {
                return Err(err(
                    t.span(),
                    format!("time_scale must be above 0, found {}", t.get_ref()),
                ));
            }
        }
        if let Some(code) = &file.gpu.currency {
            price::check_currency(code).map_err(|m| err(file.gpu.model.span(), m))?;
        }
        // One currency per scenario: every code written (after an amount, or as `currency`)
        // is the same, so a cost is never a sum of two currencies.
        let codes: Vec<(&str, &str)> = file
            .gpu
            .prices()
            .filter_map(|(key, p)| Some((key, p.currency.as_deref()?)))
            .chain(file.gpu.currency.as_deref().map(|c| ("currency", c)))
            .collect();
        let mut codes = codes.into_iter();
        if let Some((first_key, first)) = codes.next() {
            if let Some((key, code)) = codes.find(|(_, c)| *c != first) {
                let other = match key {
                    "currency" => format!("currency = {}", bounds::quote(code)),
                    _ => format!("{key} is in {}", bounds::quote(code)),
                };
                return Err(err(
                    file.gpu.model.span(),
                    format!(
                        "[gpu] {first_key} is in {first} but {other}: a scenario's prices are in one currency; give the currency once"
                    ),
                ));
            }
        }
        if file.gpu.index.is_some() && file.gpu.uuid.is_some() {
            return Err(err(
                file.gpu.model.span(),
                "[gpu] takes index or uuid, not both".into(),
            ));
        }
        let loads = file
            .load
            .iter()
            .map(|l| (vec![Step::Key("load")], l))
            .chain(file.variants.iter().enumerate().filter_map(|(i, v)| {
                let steps = vec![Step::Key("variants"), Step::Index(i), Step::Key("load")];
                v.load.as_ref().map(|l| (steps, l))
            }));
        for (mut steps, load) in loads {
            load::check_ranges(load.get_ref()).map_err(|(key, m)| {
                steps.extend(key.split('.').map(Step::Key));
                err(at(&steps), m)
            })?;
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
        let mut scenario = scenario;
        for i in 0..scenario.file.variants.len() {
            scenario.resolve_mig_parted(i, base)?;
        }
        let mut names = std::collections::HashSet::new();
        for v in &scenario.file.variants {
            bounds::check_name("variant name", v.name.get_ref())
                .map_err(|m| err(v.name.span(), m))?;
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

    /// The engine a container workload runs with: its own, else the scenario's (which
    /// `run --engine` replaces), else podman.
    pub fn engine_for(&self, workload: &Workload) -> crate::container::Engine {
        workload
            .engine
            .or(self.file.scenario.engine)
            .unwrap_or_default()
    }

    /// What the scenario's container jobs need of this machine: each engine, with the fixed host
    /// ports and the workload's name.
    pub fn container_needs(
        &self,
    ) -> Result<Vec<(crate::container::Engine, Vec<u16>, String)>, crate::error::Error> {
        let mut needs = Vec::new();
        for variant in &self.file.variants {
            for group in &variant.jobs {
                let w = self.job_workload(group)?;
                if w.image.is_some() {
                    let engine = self.engine_for(&w);
                    if engine == crate::container::Engine::Podman
                        && w.gpu_request == Some(crate::container::GpuRequest::Gpus)
                    {
                        return Err(crate::error::Error::Input(format!(
                            "workload {}: gpu_request = \"gpus\" is docker's --gpus, and its engine \
                             is podman (the scenario's or --engine's default), which takes GPUs as \
                             CDI devices: gpu_request = \"cdi\", or engine = \"docker\"",
                            w.name
                        )));
                    }
                    needs.push((self.engine_for(&w), w.fixed_host_ports(), w.name.clone()));
                }
            }
        }
        Ok(needs)
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
        Layout::build(self.gpu, specs.get_ref().specs()).ok()
    }

    /// Reads the layout of variant `i` from the mig-parted file it names, if it names one:
    /// errors in that file are located in it, a label or GPU it lacks at the scenario's `layout`.
    fn resolve_mig_parted(&mut self, i: usize, base: &Path) -> Result<(), ScenarioError> {
        let Some(layout) = self.file.variants[i].layout.as_ref() else {
            return Ok(());
        };
        let LayoutSource::MigParted(r) = layout.get_ref() else {
            return Ok(());
        };
        // A layout on a mode without MIG is refused by `check_variant`, with no file to read.
        if !self.file.variants[i].mode.get_ref().uses_mig() {
            return Ok(());
        }
        let here = ScenarioError::at(&self.path, &self.text, Some(layout.span()), String::new());
        let named_by = format!(
            " (named by {}:{}:{})",
            here.file.display(),
            here.line,
            here.column
        );
        let path = base.join(&r.mig_parted);
        let file = crate::layout::mig_parted::MigPartedFile::load(&path).map_err(|mut e| {
            e.message.push_str(&named_by);
            e
        })?;
        let index = self.file.gpu.index.unwrap_or(0);
        let specs = file
            .specs(&r.config, self.gpu, index)
            .map_err(|e| match e {
                crate::layout::mig_parted::Located::Unplaced(message) => ScenarioError {
                    message,
                    ..here.clone()
                },
                crate::layout::mig_parted::Located::Placed(mut e) => {
                    e.message.push_str(&named_by);
                    e
                }
            })?;
        if let Some(layout) = self.file.variants[i].layout.as_mut() {
            if let LayoutSource::MigParted(r) = layout.get_mut() {
                r.resolved = specs;
            }
        }
        Ok(())
    }

    fn check_variant(&self, v: &Variant) -> Result<(), (std::ops::Range<usize>, String)> {
        let mode = *v.mode.get_ref();
        let layout = match (&v.layout, mode.uses_mig()) {
            (None, true) => {
                return Err((v.mode.span(), format!("mode '{mode}' needs a layout = [...] of MIG instances")))
            }
            (Some(l), false) => {
                return Err((
                    l.span(),
                    format!("a layout is only allowed with modes mig and mig+mps; this variant's mode is '{mode}'"),
                ))
            }
            (Some(l), true) => Some(Layout::build(self.gpu, l.get_ref().specs()).map_err(|e| {
                (l.span(), format!("{} cannot take this layout: {e}", self.gpu.key))
            })?),
            (None, false) => None,
        };
        if let Some(mps) = &v.mps {
            if !matches!(mode, SharingMode::Mps | SharingMode::MigMps) {
                return Err((mps.span(), format!("mps settings are only allowed with modes mps and mig+mps; this variant's mode is '{mode}'")));
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
            self.check_group(group, mode, layout.as_ref())?;
            let w = self
                .job_workload(group)
                .map_err(|e| (group.workload.span(), e.to_string()))?;
            serves |= w.kind == WorkloadKind::Server;
        }
        self.check_counts(v, layout.as_ref())?;
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
        Ok(())
    }

    /// One job group: its workload exists, and its `instances` are slots of the layout.
    fn check_group(
        &self,
        group: &JobGroup,
        mode: SharingMode,
        layout: Option<&Layout>,
    ) -> Result<(), (std::ops::Range<usize>, String)> {
        let name = &group.workload;
        bounds::check_name("workload name", name.get_ref()).map_err(|m| (name.span(), m))?;
        let w = self
            .job_workload(group)
            .map_err(|e| (name.span(), e.to_string()))?;
        if let Some(server) = &w.sim.server {
            server
                .fraction_in(&w.command)
                .map_err(|e| (name.span(), format!("{}: {e}", w.name)))?;
        }
        let Some(idx) = &group.instances else {
            return Ok(());
        };
        let Some(layout) = layout else {
            return Err((idx.span(), format!("instances are only allowed with modes mig and mig+mps; this variant's mode is '{mode}'")));
        };
        let count = slot_count(layout);
        if idx.get_ref().is_empty() {
            return Err((
                idx.span(),
                format!("instances = [] leaves these jobs nowhere to run: list slots from 0 to {}, or leave instances out for all of them", count - 1),
            ));
        }
        if let Some(bad) = idx.get_ref().iter().find(|&&i| i >= count) {
            return Err((
                idx.span(),
                format!(
                    "instance {bad} does not exist: the layout has {count} (0 to {})",
                    count - 1
                ),
            ));
        }
        Ok(())
    }

    /// The counts a variant may not exceed: jobs, servers, and clients of one MPS server.
    fn check_counts(
        &self,
        v: &Variant,
        layout: Option<&Layout>,
    ) -> Result<(), (std::ops::Range<usize>, String)> {
        let name = v.name.get_ref();
        // Counts are checked one by one as parsed, so the sum cannot overflow a u64.
        let jobs: u64 = v.jobs.iter().map(|g| u64::from(g.count)).sum();
        if jobs > bounds::MAX_JOBS_PER_VARIANT {
            return Err((
                v.name.span(),
                format!(
                    "variant '{name}' has {jobs} jobs over its groups; at most {} are allowed",
                    bounds::MAX_JOBS_PER_VARIANT
                ),
            ));
        }
        let servers: u64 = v
            .jobs
            .iter()
            .filter(|g| {
                self.workload(g.workload.get_ref())
                    .is_ok_and(|w| w.kind == WorkloadKind::Server)
            })
            .map(|g| u64::from(g.count))
            .sum();
        if servers > bounds::MAX_SERVERS_PER_VARIANT as u64 {
            return Err((
                v.name.span(),
                format!(
                    "variant '{name}' runs {servers} model servers; at most {} are allowed",
                    bounds::MAX_SERVERS_PER_VARIANT
                ),
            ));
        }
        let mps_limit = |slices: u8| {
            (bounds::MPS_MAX_CLIENTS * u32::from(slices) / u32::from(self.gpu.compute_slices))
                .max(1)
        };
        let too_many = |clients: u64, limit: u32, device: &str| {
            (
                v.name.span(),
                format!(
                    "variant '{name}' makes {clients} jobs clients of the MPS server of {device}; \
                     it takes at most {limit} (on Volta and later MPS serves 48 clients per \
                     device, fewer in proportion to a MIG compute instance's share of the GPU)"
                ),
            )
        };
        match (*v.mode.get_ref(), layout) {
            (SharingMode::Mps, _) if jobs > u64::from(bounds::MPS_MAX_CLIENTS) => {
                return Err(too_many(jobs, bounds::MPS_MAX_CLIENTS, "the GPU"));
            }
            (SharingMode::MigMps, Some(layout)) => {
                let cis: Vec<u8> = layout
                    .instances
                    .iter()
                    .flat_map(|i| i.compute.iter().map(|c| c.compute_slices))
                    .collect();
                let mut clients = vec![0u64; cis.len()];
                for slot in spread(&self.start_order(v), cis.len()) {
                    clients[slot] += 1;
                }
                for (slot, (&n, &slices)) in clients.iter().zip(&cis).enumerate() {
                    if n > u64::from(mps_limit(slices)) {
                        return Err(too_many(n, mps_limit(slices), &format!("slot {slot}")));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The slots each job of a variant may use (`None`: all), in the order the jobs start: by
    /// earliest start, ties in the order the scenario lists them.
    pub fn start_order<'v>(&self, v: &'v Variant) -> Vec<Option<&'v [usize]>> {
        let mut jobs: Vec<(f64, usize, Option<&[usize]>)> = Vec::new();
        for group in &v.jobs {
            for k in 0..group.count {
                let earliest = group.start_s + f64::from(k) * group.stagger_s;
                let allowed = group.instances.as_ref().map(|i| i.get_ref().as_slice());
                jobs.push((earliest, jobs.len(), allowed));
            }
        }
        jobs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        jobs.into_iter().map(|(_, _, allowed)| allowed).collect()
    }
}

/// Under `mig+mps`, the slot each job runs on: the jobs, in the order they start, go round the
/// slots each may use (`None`: all `slots`), the k-th to its (k mod n)-th.
pub fn spread(allowed: &[Option<&[usize]>], slots: usize) -> Vec<usize> {
    allowed
        .iter()
        .enumerate()
        .map(|(k, a)| match a {
            Some(a) if !a.is_empty() => a[k % a.len()],
            _ => k % slots.max(1),
        })
        .collect()
}

/// Places jobs can go to in a MIG layout: one per compute instance, in layout order.
pub fn slot_count(layout: &Layout) -> usize {
    layout.instances.iter().map(|i| i.compute.len()).sum()
}
