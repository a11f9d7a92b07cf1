//! `migbench restore`: undo, from its journal, what a crashed run left changed on a GPU.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::backend::{self, BackendKind, Target};
use crate::catalog::Catalog;
use crate::cli::{Format, RestoreArgs};
use crate::error::{Error, Result};
use crate::gpu_lock::{self, Found, GpuLock};
use crate::journal::{self, JournalFile};
use crate::orchestrator::leftovers;

/// What became of one journal (or lock), as `--format json` prints it.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// The journal, or the lock file of a GPU a live run holds.
    pub path: String,
    /// `restored`, `already_restored`, `ended_with_run` (a simulated GPU without a state file),
    /// `journal_deleted` (released: nothing could be undone) or `in_use` (a running migbench
    /// holds the GPU; not touched).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_uuid: Option<String>,
    /// Changes undone, newest first (or, for `ended_with_run`, closed without undoing).
    pub undone: Vec<serde_json::Value>,
    /// Jobs of the crashed run that were still running and were stopped: `PID (program)`.
    pub stopped_jobs: Vec<String>,
    /// The sentence the table format prints.
    pub message: String,
}

pub fn run(args: &RestoreArgs) -> Result<String> {
    // Whatever else restore finds: nothing is left to undo for a socket.
    let sockets = crate::backend::sim::SimBackend::remove_stale_sockets();
    let dir = gpu_lock::state_dir();
    let mut outcomes = Vec::new();
    let mut nothing = None;
    if args.journals.is_empty() {
        // Every GPU whose lock names a journal: skip those a live run holds.
        let locks = gpu_lock::lock_files(&dir)?;
        for path in locks {
            match gpu_lock::try_lock(&path)? {
                Found::Held(holder) => outcomes.push(Outcome {
                    path: path.display().to_string(),
                    status: "in_use",
                    gpu_uuid: None,
                    undone: Vec::new(),
                    stopped_jobs: Vec::new(),
                    message: format!(
                        "{}: in use by a running migbench{}; not touched\n",
                        path.display(),
                        gpu_lock::describe(holder.as_ref())
                    ),
                }),
                Found::Free(mut lock, Some(holder)) => {
                    outcomes.push(if JournalFile::deleted(&holder.journal) {
                        release_deleted(&holder.journal)?
                    } else {
                        restore_one(&holder.journal)?
                    });
                    lock.clear()?;
                }
                Found::Free(..) => {}
            }
        }
        if !outcomes.iter().any(|o| o.status != "in_use") {
            nothing = Some(format!(
                "nothing to restore: no lock in {} names a journal\n",
                dir.display()
            ));
        }
    }
    for given in &args.journals {
        let path = journal_path(given);
        if path.exists() && JournalFile::is_blank(&path) {
            outcomes.push(restore_one(&path)?);
            continue;
        }
        let journal = JournalFile::read(&path)?;
        // Hold the GPU's lock while restoring, so no run starts on it meanwhile.
        let mut lock = GpuLock::acquire_for_restore(&dir, &journal.gpu.uuid)?;
        outcomes.push(restore_one(&path)?);
        lock.clear()?;
    }
    if args.format.format == Format::Json {
        return crate::output::json(&outcomes).map(|j| j + "\n");
    }
    let mut out: String = outcomes.iter().map(|o| o.message.as_str()).collect();
    out.push_str(nothing.as_deref().unwrap_or_default());
    for socket in sockets {
        out.push_str(&format!(
            "removed {}, the socket of a simulated GPU whose process is gone\n",
            socket.display()
        ));
    }
    Ok(out)
}

/// Stops the jobs the crashed run left running (they hold the GPU, and its MIG instances cannot
/// be destroyed under them), and says which: `PID (program)` each, and a sentence.
fn stop_leftover_jobs(journal: &Path) -> Result<(Vec<String>, String)> {
    let Some(run_dir) = journal.parent() else {
        return Ok(Default::default());
    };
    let found = leftovers::find(run_dir);
    if found.is_empty() {
        return Ok(Default::default());
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
    let message = format!(
        "{}: stopped {} job(s) the crashed run left running: {}\n",
        run_dir.display(),
        found.len(),
        pids.join(", ")
    );
    Ok((pids, message))
}

/// A run directory stands for the journal in it.
fn journal_path(given: &Path) -> PathBuf {
    if given.is_dir() {
        given.join("journal.jsonl")
    } else {
        given.to_path_buf()
    }
}

/// Stops and removes the containers a crashed run left (whatever its journal says: a container
/// can outlive a run that changed nothing on the GPU), and says which.
fn remove_leftover_containers(journal: &Path) -> Result<(Vec<String>, String)> {
    let Some(run_dir) = journal.parent() else {
        return Ok(Default::default());
    };
    let removed = leftovers::remove_containers(run_dir).map_err(|e| {
        Error::Harness(format!(
            "cannot remove the containers of the crashed run in {}: {e}",
            run_dir.display()
        ))
    })?;
    if removed.is_empty() {
        return Ok(Default::default());
    }
    let note = format!(
        "{}: stopped and removed {} container(s) the crashed run left: {}\n",
        run_dir.display(),
        removed.len(),
        removed.join(", ")
    );
    Ok((removed, note))
}

fn restore_one(path: &Path) -> Result<Outcome> {
    // Containers first: their processes are not the jobs' children and hold the GPU too.
    let (containers, note) = remove_leftover_containers(path)?;
    let mut outcome = restore_gpu(path)?;
    outcome.stopped_jobs.splice(0..0, containers);
    outcome.message.insert_str(0, &note);
    Ok(outcome)
}

/// A lock names journal `path`, which was deleted: what its run changed on the GPU cannot be
/// undone, so the GPU is released (the caller clears the lock) once what the run left running,
/// its jobs and containers, is stopped; the message asks for the GPU to be checked by hand.
fn release_deleted(path: &Path) -> Result<Outcome> {
    let (containers, mut message) = remove_leftover_containers(path)?;
    let (jobs, stopped) = stop_leftover_jobs(path)?;
    message.push_str(&stopped);
    message.push_str(&format!(
        "{}: the journal was deleted, so what its run changed on the GPU cannot be undone; the \
         GPU is released: check it (nvidia-smi mig -lgi, nvidia-smi -q) and put back by hand \
         what is not as it should be\n",
        path.display()
    ));
    Ok(Outcome {
        path: path.display().to_string(),
        status: "journal_deleted",
        gpu_uuid: None,
        undone: Vec::new(),
        stopped_jobs: containers.into_iter().chain(jobs).collect(),
        message,
    })
}

fn restore_gpu(path: &Path) -> Result<Outcome> {
    if JournalFile::is_blank(path) {
        return Ok(Outcome {
            path: path.display().to_string(),
            status: "nothing_recorded",
            gpu_uuid: None,
            undone: Vec::new(),
            stopped_jobs: Vec::new(),
            message: format!(
                "{}: the run stopped before it recorded the GPU's state, so it changed nothing\n",
                path.display()
            ),
        });
    }
    let journal = JournalFile::read(path)?;
    if let Some(warning) = journal.torn_warning() {
        eprintln!("migbench: warning: {warning}");
    }
    let gpu = &journal.gpu;
    let outcome = |status, message| Outcome {
        path: path.display().to_string(),
        status,
        gpu_uuid: Some(gpu.uuid.clone()),
        undone: Vec::new(),
        stopped_jobs: Vec::new(),
        message,
    };
    if journal.is_closed() {
        return Ok(outcome(
            "already_restored",
            format!(
                "{}: GPU {} was already put back; nothing to do\n",
                path.display(),
                gpu.uuid
            ),
        ));
    }
    let target = match (gpu.backend, &gpu.sim_state) {
        (BackendKind::Imported, _) => {
            return Err(Error::Input(format!(
                "{}: the journal names an imported run's GPU, which migbench never changed; nothing to restore",
                path.display()
            )))
        }
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
            return Ok(outcome(
                "ended_with_run",
                format!(
                    "{}: the simulated GPU {} ended with its run; {} change(s) needed no undoing\n",
                    path.display(),
                    gpu.uuid,
                    closed
                ),
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
    let (stopped_jobs, mut out) = stop_leftover_jobs(path)?;
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
    Ok(Outcome {
        undone: restored
            .undone
            .iter()
            .map(|c| serde_json::to_value(c).unwrap_or_default())
            .collect(),
        stopped_jobs,
        ..outcome("restored", out)
    })
}
