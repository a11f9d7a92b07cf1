//! What a run keeps beside its jobs: the run directory, the GPU lock, the journal of changes and
//! the manifest. They are opened before anything on the GPU changes and closed at the end, every
//! step of the closing tried whatever failed before (a full disk), so that the GPU can always be
//! put back by `migbench restore`.

use std::path::Path;

use super::{scenario_dir, RunOptions};
use crate::backend::{Backend, BackendKind};
use crate::error::{Error, Result};
use crate::gpu_lock::GpuLock;
use crate::journal::Journal;
use crate::results::{self, Manifest, RunDir};
use crate::scenario::{Scenario, SIDE_DIR};

/// A run's books, open.
pub(super) struct Books {
    pub run: RunDir,
    pub journal: Journal,
    lock: GpuLock,
    manifest: Manifest,
    /// The backend's clock when the run started: every time recorded is since then.
    pub t0: f64,
}

impl Books {
    /// Refuses a GPU that other programs use (unless `force`), then creates the run directory,
    /// locks the GPU, starts the journal and writes the manifest and the scenario's files.
    pub fn open(scenario: &Scenario, backend: &dyn Backend, options: &RunOptions) -> Result<Books> {
        let info = backend.info();
        let found = backend.state()?;
        if !options.force {
            let foreign = backend.foreign_processes()?;
            if !foreign.is_empty() {
                let list: Vec<String> = foreign
                    .iter()
                    .map(|p| format!("pid {} ({}, {:.1} GiB)", p.pid, p.name, p.used_gib))
                    .collect();
                return Err(Error::Input(format!(
                    "GPU {} is busy: {} of other programs use it, and they would distort every \
                     figure; stop them, or pass --force to run anyway",
                    info.uuid,
                    list.join(", ")
                )));
            }
        }
        let mut run = RunDir::create(&options.out_dir, scenario.name())?;
        if let Some(live) = &options.live {
            run.observe(std::sync::Arc::clone(live));
        }
        // Lock the GPU and start the journal before anything on it changes.
        let journal_path = run.path.join("journal.jsonl");
        let lock = match GpuLock::acquire(&options.state_dir, &info.uuid, &journal_path) {
            Ok(lock) => lock,
            Err(e) => {
                // Nothing was recorded yet: leave no empty run directory behind.
                let _ = std::fs::remove_dir_all(&run.path);
                return Err(e);
            }
        };
        let identity = backend.identity(scenario.file.gpu.index.unwrap_or(0));
        let mut journal = Journal::create(&journal_path, identity, found)?;
        match Self::start(scenario, backend, options, &mut run) {
            Ok((manifest, t0)) => Ok(Books {
                run,
                journal,
                lock,
                manifest,
                t0,
            }),
            // Nothing on the GPU has changed yet: the journal is closed and the GPU freed, or
            // the next run would be refused for a failed write of the manifest or a side file
            // that could not be read after the scenario was checked.
            Err(e) => {
                if journal.close().is_ok() && journal.broken().is_none() {
                    let _ = release(lock, backend);
                }
                Err(e)
            }
        }
    }

    /// Writes the manifest and the scenario's files, and the run's first event: the manifest
    /// and the backend's clock at the start.
    fn start(
        scenario: &Scenario,
        backend: &dyn Backend,
        options: &RunOptions,
        run: &mut RunDir,
    ) -> Result<(Manifest, f64)> {
        let info = backend.info();
        let clock = backend.clock();
        let manifest = Manifest {
            schema_version: results::SCHEMA_VERSION,
            scenario: scenario.name().to_string(),
            scenario_file: scenario.path.display().to_string(),
            scenario_sha256: results::sha256_hex(scenario.text.as_bytes()),
            migbench_version: env!("CARGO_PKG_VERSION").to_string(),
            migbench_commit: crate::version::git_commit().to_string(),
            migbench_dirty: crate::version::git_dirty(),
            backend: backend.kind(),
            simulated: backend.kind() == BackendKind::Sim,
            clock: if clock.simulated() {
                "simulated"
            } else {
                "monotonic"
            }
            .into(),
            pace: options.pace.filter(|_| clock.simulated()),
            gpu_model: info.model.clone(),
            gpu_name: info.name.clone(),
            gpu_uuid: info.uuid.clone(),
            driver: info.driver.clone(),
            cuda: info.cuda.clone(),
            host: results::hostname(),
            slurm: crate::fleet::slurm::SlurmIds::from_env(),
            command: options.command.clone(),
            started_at: results::now_rfc3339(),
            ended_at: None,
            imported_from: None,
            status: "running".into(),
        };
        run.write_manifest(&manifest)?;
        run.write_file("scenario.toml", scenario.text.as_bytes())?;
        for side in scenario.side_files() {
            let text = crate::input::read(
                &scenario_dir(scenario).join(&side),
                crate::input::MIG_PARTED,
            )
            .map_err(|e| Error::Input(format!("cannot read {side}: {e}")))?;
            let copy = Path::new(SIDE_DIR).join(&side);
            if let Some(parent) = copy.parent() {
                std::fs::create_dir_all(run.path.join(parent))
                    .map_err(|e| Error::Harness(format!("cannot copy {side} into the run: {e}")))?;
            }
            run.write_new_file(&copy, &text)?;
        }
        let t0 = backend.now();
        run.event(
            0.0,
            "run_start",
            serde_json::json!({ "scenario": scenario.name(), "backend": manifest.backend }),
        )?;
        Ok((manifest, t0))
    }

    /// Records how the run ended (`outcome`, `interrupted`, whether every variant's setup
    /// succeeded) and closes the books; the first failure of the run, or of closing, is kept in
    /// `outcome`. A journal with changes left to undo stays open, and the lock naming it, for
    /// `migbench restore`.
    pub fn close(
        mut self,
        backend: &dyn Backend,
        outcome: &mut Result<()>,
        interrupted: bool,
        all_set_up: bool,
    ) {
        self.manifest.ended_at = Some(results::now_rfc3339());
        self.manifest.status = match (&outcome, interrupted) {
            (Err(_), _) => "failed",
            (Ok(()), true) => "interrupted",
            (Ok(()), false) if all_set_up => "complete",
            (Ok(()), false) => "incomplete",
        }
        .into();
        let mut keep = |result: Result<()>| {
            if let Err(e) = result {
                if outcome.is_ok() {
                    *outcome = Err(e);
                }
            }
        };
        keep(self.run.event(
            backend.now() - self.t0,
            "run_end",
            serde_json::json!({ "status": self.manifest.status }),
        ));
        keep(self.run.write_manifest(&self.manifest));
        // Containers a panic left unjournaled, and a regenerated CDI spec once the GPU is back.
        keep(self.journal.clear_made());
        if self.journal.all_undone() && self.journal.outstanding_made().is_empty() {
            keep(self.journal.close());
            if self.journal.broken().is_none() {
                keep(release(self.lock, backend));
            }
        }
    }
}

/// Frees the GPU once its journal is closed: the lock is cleared, or removed with a GPU that
/// ends with this process (a simulated GPU without a state file).
fn release(mut lock: GpuLock, backend: &dyn Backend) -> Result<()> {
    if backend.outlives_run() {
        lock.clear()
    } else {
        lock.remove()
    }
}
