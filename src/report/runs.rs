//! Finding run directories and reading what each says of itself (`manifest.json`,
//! `scenario.toml`).
//!
//! Every directory holding a `manifest.json` below the given paths is a run. The walk does not
//! enter a run further, nor follow symbolic links, so a `baseline` link in a history directory
//! does not count its runs twice.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::results::{Manifest, SCHEMA_VERSION};
use crate::scenario::{Scenario, SIDE_DIR};

/// One run directory.
#[derive(Debug, Clone)]
pub struct Run {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// The scenario as run (`scenario.toml`), when it can still be read: it gives the workloads
    /// for `plan` and the MIG layouts for the drawings.
    pub scenario: Option<Arc<Scenario>>,
}

/// Where results come from: which GPU, and whether a GPU measured them or the simulator made
/// them up. Results of different origins are never pooled.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Origin {
    /// Catalog key (`h100-80gb`).
    pub gpu_model: String,
    /// Device name (`H100 80GB HBM3`).
    pub gpu: String,
    /// `sim` or `nvml`, or the tool an imported run's files came from.
    pub backend: String,
    /// True for simulator results: these are never presented as measured.
    pub simulated: bool,
}

impl Origin {
    /// `simulated` or `measured (nvml)`: how every table labels results. The simulator's
    /// backend is not named beside "simulated", which says it already (issue 27: report.html
    /// said "simulated (sim)" in every section title).
    pub fn provenance(&self) -> String {
        if self.simulated {
            "simulated".into()
        } else {
            format!("measured ({})", self.backend)
        }
    }
}

impl Manifest {
    /// Where this run's results come from.
    pub fn origin(&self) -> Origin {
        Origin {
            gpu_model: self.gpu_model.clone(),
            gpu: self.gpu_name.clone(),
            // An imported run names the tool that measured it: `measured (vllm bench serve)`.
            backend: self
                .imported_from
                .clone()
                .unwrap_or_else(|| self.backend.as_str().to_string()),
            simulated: self.simulated,
        }
    }
}

impl Run {
    /// Reads the run in `dir`; `scenarios` keeps each distinct scenario text parsed once.
    pub fn read(dir: PathBuf, scenarios: &mut ScenarioCache) -> Result<Run> {
        let manifest = read_manifest(&dir)?;
        let scenario = scenarios.read(&dir);
        Ok(Run {
            dir,
            manifest,
            scenario,
        })
    }
}

/// Directories with a `manifest.json` below `paths` (a path may be a run directory itself).
pub fn find_run_dirs(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for path in paths {
        if !path.is_dir() {
            return Err(Error::Input(format!(
                "{}: not a directory; expected a run directory or a directory of runs",
                path.display()
            )));
        }
        walk(path, &mut found).map_err(|e| {
            Error::Harness(format!(
                "cannot read the directories below {}: {e}",
                path.display()
            ))
        })?;
    }
    found.sort();
    found.dedup();
    Ok(found)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if dir.join("manifest.json").is_file() {
        found.push(dir.to_path_buf());
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), found)?;
        }
    }
    Ok(())
}

fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join("manifest.json");
    let text = crate::input::read_to_string(&path, crate::input::SMALL_JSON)
        .map_err(|e| Error::Input(format!("{}: cannot read: {e}", path.display())))?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
        Error::Input(format!(
            "{}: not a migbench manifest (line {} column {}: {}); expected scenario, backend, simulated, gpu_model, gpu_name and started_at",
            path.display(),
            e.line(),
            e.column(),
            crate::location::json_error(&text, &e)
        ))
    })?;
    check_schema_version(&path, manifest.schema_version)?;
    Ok(manifest)
}

/// Tables of a version this build does not know would be read under the wrong column names
/// (a version 0 made polars fail deep inside a query), or silently misread (a future one).
fn check_schema_version(path: &Path, version: u32) -> Result<()> {
    if (1..=SCHEMA_VERSION).contains(&version) {
        return Ok(());
    }
    Err(Error::Input(format!(
        "{}: schema_version {version}; this migbench ({}) reads run directories of schema versions 1 to {SCHEMA_VERSION}{}",
        path.display(),
        env!("CARGO_PKG_VERSION"),
        if version > SCHEMA_VERSION {
            " (a newer migbench wrote it: read it with that one)"
        } else {
            ""
        }
    )))
}

/// Each distinct `scenario.toml` text, parsed once.
#[derive(Default)]
pub struct ScenarioCache(HashMap<String, Option<Arc<Scenario>>>);

impl ScenarioCache {
    fn read(&mut self, dir: &Path) -> Option<Arc<Scenario>> {
        let path = dir.join("scenario.toml");
        let text = crate::input::read_to_string(&path, crate::input::SCENARIO).ok()?;
        // Runs before the copies had a folder of their own kept them beside scenario.toml.
        let side = dir.join(SIDE_DIR);
        let base = if side.is_dir() {
            side
        } else {
            dir.to_path_buf()
        };
        self.0
            .entry(text.clone())
            .or_insert_with(|| Scenario::parse_in(&path, text, &base).ok().map(Arc::new))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "{}").unwrap();
    }

    #[test]
    fn a_run_is_a_directory_with_a_manifest_and_the_walk_does_not_enter_it_or_follow_links() {
        let root = tempfile::tempdir().unwrap();
        let night = root.path().join("2026-11-30");
        touch(&night.join("a-1/manifest.json"));
        // A run inside a run is not a second run (the walk stops at the first manifest).
        touch(&night.join("a-1/nested/manifest.json"));
        touch(&night.join("deep/er/b-1/manifest.json"));
        std::os::unix::fs::symlink(&night, root.path().join("baseline")).unwrap();
        let found = find_run_dirs(&[root.path().to_path_buf(), night.join("a-1")]).unwrap();
        assert_eq!(found, vec![night.join("a-1"), night.join("deep/er/b-1")]);
    }

    #[test]
    fn a_path_that_is_not_a_directory_is_refused_and_a_bad_manifest_is_named() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("jobs.csv");
        std::fs::write(&file, "x").unwrap();
        let e = find_run_dirs(&[file]).unwrap_err().to_string();
        assert!(e.contains("not a directory"), "{e}");
        touch(&root.path().join("r/manifest.json"));
        let e = read_manifest(&root.path().join("r"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("manifest.json: not a migbench manifest"), "{e}");
    }
}
