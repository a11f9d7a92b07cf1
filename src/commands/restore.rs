//! `migbench restore`: undo, from its journal, what a crashed run left changed on a GPU.

use std::path::{Path, PathBuf};

use crate::backend::{self, BackendKind, Target};
use crate::catalog::Catalog;
use crate::cli::RestoreArgs;
use crate::error::{Error, Result};
use crate::gpu_lock::{self, Found, GpuLock};
use crate::journal::{self, JournalFile};
use crate::orchestrator::leftovers;

pub fn run(args: &RestoreArgs) -> Result<String> {
    let dir = gpu_lock::state_dir();
    let mut out = String::new();
    if args.journals.is_empty() {
        // Every GPU whose lock names a journal: skip those a live run holds.
        let locks = gpu_lock::lock_files(&dir)?;
        let mut any = false;
        for path in locks {
            match gpu_lock::try_lock(&path)? {
                Found::Held(holder) => out.push_str(&format!(
                    "{}: in use by a running migbench{}; not touched\n",
                    path.display(),
                    gpu_lock::describe(holder.as_ref())
                )),
                Found::Free(mut lock, Some(holder)) => {
                    any = true;
                    out.push_str(&restore_one(&holder.journal)?);
                    lock.clear()?;
                }
                Found::Free(..) => {}
            }
        }
        if !any {
            out.push_str(&format!(
                "nothing to restore: no lock in {} names a journal\n",
                dir.display()
            ));
        }
        return Ok(out);
    }
    for given in &args.journals {
        let path = journal_path(given);
        let journal = JournalFile::read(&path)?;
        // Hold the GPU's lock while restoring, so no run starts on it meanwhile.
        let mut lock = GpuLock::acquire_for_restore(&dir, &journal.gpu.uuid)?;
        out.push_str(&restore_one(&path)?);
        lock.clear()?;
    }
    Ok(out)
}

/// Stops the jobs the crashed run left running (they hold the GPU, and its MIG instances cannot
/// be destroyed under them), and says which.
fn stop_leftover_jobs(journal: &Path) -> Result<String> {
    let Some(run_dir) = journal.parent() else {
        return Ok(String::new());
    };
    let found = leftovers::find(run_dir);
    if found.is_empty() {
        return Ok(String::new());
    }
    let pids: Vec<String> = found
        .iter()
        .map(|j| format!("{} ({})", j.pid, j.program))
        .collect();
    let still = leftovers::stop(&found);
    if !still.is_empty() {
        return Err(Error::Harness(format!(
            "jobs of the crashed run in {} are still running after SIGKILL (process groups {:?}); \
             the GPU cannot be put back under them",
            run_dir.display(),
            still
        )));
    }
    Ok(format!(
        "{}: stopped {} job(s) the crashed run left running: {}\n",
        run_dir.display(),
        found.len(),
        pids.join(", ")
    ))
}

/// A run directory stands for the journal in it.
fn journal_path(given: &Path) -> PathBuf {
    if given.is_dir() {
        given.join("journal.jsonl")
    } else {
        given.to_path_buf()
    }
}

fn restore_one(path: &Path) -> Result<String> {
    let journal = JournalFile::read(path)?;
    if let Some(warning) = journal.torn_warning() {
        eprintln!("migbench: warning: {warning}");
    }
    let gpu = &journal.gpu;
    if journal.is_closed() {
        return Ok(format!(
            "{}: GPU {} was already put back; nothing to do\n",
            path.display(),
            gpu.uuid
        ));
    }
    let target = match (gpu.backend, &gpu.sim_state) {
        (BackendKind::Nvml, _) => Target::Nvml {
            index: gpu.index,
            uuid: Some(gpu.uuid.clone()),
        },
        (BackendKind::Sim, Some(file)) => {
            // Opening a state file that is not there would make a fresh simulated GPU, and
            // "restore" that one while the one the run changed stays changed.
            if !file.is_file() {
                return Err(Error::Input(format!(
                    "{}: the journal is about the simulated GPU {} saved in {}, which does not \
                     exist (seen from {}); nothing was restored",
                    path.display(),
                    gpu.uuid,
                    file.display(),
                    std::env::current_dir().unwrap_or_default().display()
                )));
            }
            Target::Sim {
                pace: None,
                state_file: Some(file.clone()),
            }
        }
        // A simulated GPU without a state file ended with the process that simulated it.
        (BackendKind::Sim, None) => {
            let closed = JournalFile::close_without_changes(path)?;
            return Ok(format!(
                "{}: the simulated GPU {} ended with its run; {} change(s) needed no undoing\n",
                path.display(),
                gpu.uuid,
                closed
            ));
        }
    };
    let model = Catalog::builtin().gpu(&gpu.model)?;
    let backend = backend::open(model, &target)?;
    let opened = backend.info().uuid;
    if opened != gpu.uuid {
        let place = match &gpu.sim_state {
            Some(file) => format!(" (in {})", file.display()),
            None => format!(" (index {})", gpu.index),
        };
        return Err(Error::Input(format!(
            "{}: the journal is about GPU {}, but the GPU found{place} is {opened}; \
             nothing was restored",
            path.display(),
            gpu.uuid
        )));
    }
    let mut out = stop_leftover_jobs(path)?;
    let restored = journal::restore(&journal, backend.as_ref())?;
    out.push_str(&format!(
        "{}: GPU {}: undid {} change(s)\n",
        path.display(),
        gpu.uuid,
        restored.undone.len()
    ));
    for change in &restored.undone {
        out.push_str(&format!(
            "  undone: {}\n",
            serde_json::to_string(change).unwrap_or_default()
        ));
    }
    if !restored.matches_found {
        return Err(Error::Harness(format!(
            "{out}GPU {} is not as the run found it: found {:?}, now {:?}",
            gpu.uuid, journal.found, restored.state
        )));
    }
    out.push_str("  the GPU is as the run found it\n");
    Ok(out)
}
