//! One migbench run per GPU: a lock file per GPU UUID in a state directory shared by every user
//! of the machine, held (flock) for as long as the run lives.
//!
//! The file also says which journal the holder writes. The kernel drops the lock when the holder
//! dies, crash included, but the file keeps naming its journal: that is how the next run knows
//! the GPU was not put back, and where `migbench restore` finds what to undo.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::journal::JournalFile;

/// Where lock files live: `$MIGBENCH_STATE_DIR`, else `/tmp/migbench` (shared by all users, so
/// two people's runs exclude each other too).
pub fn state_dir() -> PathBuf {
    std::env::var_os("MIGBENCH_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/migbench"))
}

/// What a lock file says about its holder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub started_at: String,
    pub journal: PathBuf,
}

/// A held GPU lock. Dropping it releases the lock and, once the journal is closed, forgets it.
#[derive(Debug)]
pub struct GpuLock {
    file: File,
    pub path: PathBuf,
}

/// A lock file found in the state directory.
#[derive(Debug)]
pub enum Found {
    /// A live run holds it.
    Held(Option<Holder>),
    /// Nobody holds it; it may still name a journal that was never closed. The lock is now ours.
    Free(GpuLock, Option<Holder>),
}

fn lock_path(dir: &Path, gpu_uuid: &str) -> PathBuf {
    let name: String = gpu_uuid
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{name}.lock"))
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// Opens and tries to lock the lock file at `path`.
/// How long a lock whose holder has died may stay held: a child the run was starting when it
/// died shares its lock until it has replaced itself with its program (between fork and exec).
const STRAGGLER_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Tries the lock at `path`; when it is held although the run named in it is gone, waits a
/// moment for the straggler that still shares it.
pub fn try_lock(path: &Path) -> Result<Found> {
    let deadline = std::time::Instant::now() + STRAGGLER_WAIT;
    loop {
        let found = try_lock_once(path)?;
        let holder_gone =
            matches!(&found, Found::Held(Some(h)) if !crate::procfs::is_running(h.pid));
        if !holder_gone || std::time::Instant::now() >= deadline {
            return Ok(found);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn try_lock_once(path: &Path) -> Result<Found> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::Harness(format!("cannot open the lock {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => {
            let holder = read_holder(&mut file);
            Ok(Found::Free(
                GpuLock {
                    file,
                    path: path.to_path_buf(),
                },
                holder,
            ))
        }
        Err(TryLockError::WouldBlock) => Ok(Found::Held(read_holder(&mut file))),
        Err(TryLockError::Error(e)) => Err(Error::Harness(format!(
            "cannot lock {}: {e}",
            path.display()
        ))),
    }
}

/// Every lock file in `dir`.
pub fn lock_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::Harness(format!(
                "cannot list {}: {e}",
                dir.display()
            )))
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "lock"))
        .collect();
    paths.sort();
    Ok(paths)
}

impl GpuLock {
    /// Takes the lock of GPU `gpu_uuid` for a run journaling to `journal`. Refuses while another
    /// run holds it, or while an earlier run's journal says the GPU was not put back.
    pub fn acquire(dir: &Path, gpu_uuid: &str, journal: &Path) -> Result<GpuLock> {
        let (mut lock, holder) = GpuLock::take(dir, gpu_uuid)?;
        if let Some(h) = holder.filter(|h| !JournalFile::is_blank(&h.journal)) {
            match JournalFile::read(&h.journal) {
                Ok(j) if j.is_closed() => {}
                Ok(_) => {
                    return Err(Error::Input(format!(
                        "a previous migbench run{} did not put GPU {gpu_uuid} back as found; \
                         run `migbench restore` first",
                        describe(Some(&h))
                    )))
                }
                // What it changed is unknown: the GPU may still be split into MIG instances.
                Err(_) if JournalFile::deleted(&h.journal) => {
                    return Err(Error::Input(format!(
                        "a previous migbench run{} did not put GPU {gpu_uuid} back as found, and \
                         its journal was deleted, so what it changed is unknown; run `migbench \
                         restore`: without the journal it cannot undo those changes, so it stops \
                         what that run left running (its jobs and containers), releases the GPU \
                         and asks you to check it (nvidia-smi mig -lgi, nvidia-smi -q) before the \
                         next run",
                        describe(Some(&h)),
                    )))
                }
                Err(e) => {
                    return Err(Error::Input(format!(
                        "a previous migbench run{} left GPU {gpu_uuid} with a journal that cannot \
                         be read ({e}), so whether it put the GPU back is unknown; check the GPU \
                         (nvidia-smi mig -lgi, nvidia-smi -q), put it back as it should be, then \
                         remove {}",
                        describe(Some(&h)),
                        lock.path.display()
                    )))
                }
            }
        }
        // The journal exists (empty) before the lock names it: a journal the lock names that
        // is not there was deleted, and the GPU is refused above, never silently reused.
        std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(journal)
            .map_err(|e| {
                Error::Harness(format!(
                    "cannot create the journal {}: {e}",
                    journal.display()
                ))
            })?;
        // Absolute, so that `migbench restore` finds it from any directory.
        lock.write_holder(&Holder {
            pid: std::process::id(),
            started_at: crate::results::now_rfc3339(),
            journal: crate::journal::absolute(journal)?,
        })?;
        Ok(lock)
    }

    /// Takes the lock of GPU `gpu_uuid` to restore it: refuses only while a live run holds it.
    pub fn acquire_for_restore(dir: &Path, gpu_uuid: &str) -> Result<GpuLock> {
        GpuLock::take(dir, gpu_uuid).map(|(lock, _)| lock)
    }

    /// Locks the GPU's lock file, and says what it named.
    fn take(dir: &Path, gpu_uuid: &str) -> Result<(GpuLock, Option<Holder>)> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Harness(format!("cannot create {}: {e}", dir.display())))?;
        // Sticky and writable by all, like /tmp, when migbench made the directory itself.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if dir == Path::new("/tmp/migbench") {
                let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1777));
            }
        }
        let path = lock_path(dir, gpu_uuid);
        match try_lock(&path)? {
            Found::Held(holder) => Err(Error::Input(format!(
                "GPU {gpu_uuid} is in use by another migbench run{}; two runs never share a \
                 GPU (lock {})",
                describe(holder.as_ref()),
                path.display()
            ))),
            Found::Free(lock, holder) => Ok((lock, holder)),
        }
    }

    fn write_holder(&mut self, holder: &Holder) -> Result<()> {
        let text = serde_json::to_string(holder).expect("lock holder serializes");
        self.file
            .set_len(0)
            .and_then(|()| self.file.rewind())
            .and_then(|()| self.file.write_all(text.as_bytes()))
            .and_then(|()| self.file.sync_data())
            .map_err(|e| Error::Harness(format!("cannot write {}: {e}", self.path.display())))
    }

    /// Clears and deletes the lock file: for a GPU that ends with this process (a simulated GPU
    /// without a state file), which no other run can ever ask for.
    pub fn remove(mut self) -> Result<()> {
        self.clear()?;
        std::fs::remove_file(&self.path)
            .map_err(|e| Error::Harness(format!("cannot remove {}: {e}", self.path.display())))
    }

    /// Forgets the holder: the GPU was put back (or never changed).
    pub fn clear(&mut self) -> Result<()> {
        self.file
            .set_len(0)
            .map_err(|e| Error::Harness(format!("cannot clear {}: {e}", self.path.display())))
    }
}

/// ` (pid 123, started ..., journal ...)`
pub fn describe(holder: Option<&Holder>) -> String {
    match holder {
        Some(h) => format!(
            " (pid {}, started {}, journal {})",
            h.pid,
            h.started_at,
            h.journal.display()
        ),
        None => String::new(),
    }
}
