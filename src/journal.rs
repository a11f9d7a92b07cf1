//! The journal of what migbench changed on a GPU, so that every change can be undone — at the
//! end of a variant, on Ctrl-C or SIGTERM, and by `migbench restore` after a crash.
//!
//! It is a JSON-lines file written before the GPU is touched: first the state found, then for
//! each change an `apply` record (flushed to disk *before* the change is made, so a crash in the
//! middle of one is still known), and `done` or `failed` after it; undoing writes `undo` and
//! `undone`. `closed` says everything was put back. Restoring replays the changes not yet undone,
//! newest first, skipping any that the GPU shows are not in effect, so restoring twice is safe.
//!
//! What migbench makes beside the GPU's configuration and must not leave behind (a job's
//! container, a CDI spec it regenerated) is journaled the same way: `made` before it is made,
//! `cleared` once it is gone or put back.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::backend::GpuIdentity;
use crate::backend::{Backend, Change, GpuState};
use crate::error::{Error, Result};
use crate::results::now_rfc3339;

/// `path` made absolute and canonical, so that what a journal or a lock records names the same
/// file from any working directory: the file itself when it exists, else its directory joined
/// with its name (a journal about to be created).
pub fn absolute(path: &Path) -> Result<PathBuf> {
    let canonical = path
        .canonicalize()
        .or_else(|e| match (path.parent(), path.file_name()) {
            (Some(dir), Some(name)) => {
                let dir = if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir
                };
                dir.canonicalize().map(|d| d.join(name))
            }
            _ => Err(e),
        });
    canonical.map_err(|e| Error::Harness(format!("cannot resolve {}: {e}", path.display())))
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    Found {
        at: String,
        gpu: GpuIdentity,
        state: GpuState,
    },
    Apply {
        at: String,
        seq: u64,
        change: Change,
    },
    Done {
        at: String,
        seq: u64,
    },
    Failed {
        at: String,
        seq: u64,
        error: String,
    },
    Undo {
        at: String,
        seq: u64,
    },
    Undone {
        at: String,
        seq: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    UndoFailed {
        at: String,
        seq: u64,
        error: String,
    },
    Made {
        at: String,
        made: Made,
    },
    Cleared {
        at: String,
        made: Made,
    },
    Closed {
        at: String,
    },
}

/// Something a run makes beside the GPU's configuration, that must go when the run ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Made {
    /// A job's container (named `name`, labelled `migbench.run=RUN`).
    Container {
        engine: crate::container::Engine,
        name: String,
        run: String,
    },
    /// A CDI spec regenerated with NVIDIA's tool (`run --cdi-refresh`) after a MIG layout;
    /// `existed`: whether the file was there before. Once the GPU is as found it is generated
    /// again (or removed), so that it names the devices that exist then.
    CdiSpec { path: PathBuf, existed: bool },
}

impl Made {
    /// Clears it: removes the container (gone already is fine), or puts the spec back.
    pub fn clear(&self) -> std::result::Result<(), String> {
        match self {
            Made::Container { engine, name, .. } => {
                let c = crate::container::Container {
                    engine: *engine,
                    name: name.clone(),
                    cidfile: None,
                };
                c.stop();
                c.remove()
            }
            Made::CdiSpec {
                path,
                existed: true,
            } => crate::cdi::generate(path),
            Made::CdiSpec {
                path,
                existed: false,
            } => match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(format!("cannot remove {}: {e}", path.display()))
                }
                _ => Ok(()),
            },
        }
    }

    /// Whether `other` is the same thing: the same container, or the same spec file.
    fn same_thing(&self, other: &Made) -> bool {
        match (self, other) {
            (Made::CdiSpec { path: a, .. }, Made::CdiSpec { path: b, .. }) => a == b,
            _ => self == other,
        }
    }

    /// Whether it holds the GPU (and must go before the GPU is put back) or follows it (and
    /// must be put back after).
    fn holds_gpu(&self) -> bool {
        matches!(self, Made::Container { .. })
    }
}

/// A change that was (or may have been) made, by its sequence number in the journal.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub seq: u64,
    pub change: Change,
}

/// Writes the journal. A disabled journal (for dry runs) records nothing.
pub struct Journal {
    file: Option<File>,
    next_seq: u64,
    /// Changes made and not undone yet, oldest first.
    outstanding: Vec<Entry>,
    /// Records written so far (for `MIGBENCH_FAULT=abort:journal:N`).
    written: u64,
    /// The first write that failed: the journal no longer says everything (a full disk).
    broken: Option<String>,
    /// What was made beside the GPU's configuration and not cleared yet, oldest first.
    made: Vec<Made>,
}

impl Journal {
    /// Starts a journal at `path` with the state `gpu` is found in.
    pub fn create(path: &Path, mut gpu: GpuIdentity, state: GpuState) -> Result<Journal> {
        if let Some(file) = &gpu.sim_state {
            gpu.sim_state = Some(absolute(file)?);
        }
        // Made empty when the run took the GPU's lock ([`crate::gpu_lock::GpuLock::acquire`]);
        // never written over.
        let cannot = |e: &dyn std::fmt::Display| {
            Error::Harness(format!("cannot create the journal {}: {e}", path.display()))
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| cannot(&e))?;
        if file.metadata().map_err(|e| cannot(&e))?.len() > 0 {
            return Err(cannot(&"it is not empty"));
        }
        let mut journal = Journal {
            file: Some(file),
            next_seq: 1,
            outstanding: Vec::new(),
            written: 0,
            broken: None,
            made: Vec::new(),
        };
        journal.write(&Record::Found {
            at: now_rfc3339(),
            gpu,
            state,
        })?;
        Ok(journal)
    }

    /// Continues an existing journal (to restore from it), after its last whole line: the torn
    /// bytes of a record a crash cut short (`torn`, never acted on) are dropped first, so that
    /// the next record does not run onto them.
    fn append(path: &Path, next_seq: u64, torn: usize) -> Result<Journal> {
        let cannot = |e: std::io::Error| {
            Error::Harness(format!("cannot write the journal {}: {e}", path.display()))
        };
        let file = OpenOptions::new().append(true).open(path).map_err(cannot)?;
        if torn > 0 {
            let len = file.metadata().map_err(cannot)?.len();
            file.set_len(len.saturating_sub(torn as u64))
                .and_then(|()| file.sync_data())
                .map_err(cannot)?;
        }
        Ok(Journal {
            file: Some(file),
            next_seq,
            outstanding: Vec::new(),
            written: 0,
            broken: None,
            made: Vec::new(),
        })
    }

    /// A journal that keeps nothing.
    pub fn disabled() -> Journal {
        Journal {
            file: None,
            next_seq: 1,
            outstanding: Vec::new(),
            written: 0,
            broken: None,
            made: Vec::new(),
        }
    }

    /// Appends one record and flushes it to disk before returning. The record and its newline
    /// go in one write, so a crash leaves at most one unterminated line, which readers drop.
    fn write(&mut self, record: &Record) -> Result<()> {
        let Some(file) = &mut self.file else {
            return Ok(());
        };
        let mut line = serde_json::to_string(record).expect("journal records serialize");
        line.push('\n');
        let written = crate::fault::write("journal")
            .and_then(|()| file.write_all(line.as_bytes()))
            .and_then(|()| file.sync_data());
        if let Err(e) = written {
            let message = format!("cannot write the journal: {e}");
            self.broken.get_or_insert(message.clone());
            return Err(Error::Harness(message));
        }
        self.written += 1;
        crate::fault::written("journal", self.written);
        Ok(())
    }

    /// Why the journal no longer says everything, if a write failed.
    pub fn broken(&self) -> Option<&str> {
        self.broken.as_deref()
    }

    /// Journals `change`, makes it, and journals the outcome.
    pub fn apply(&mut self, backend: &dyn Backend, change: Change) -> Result<Entry> {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.write(&Record::Apply {
            at: now_rfc3339(),
            seq,
            change: change.clone(),
        })?;
        match backend.apply(&change) {
            Ok(()) => {
                let entry = Entry { seq, change };
                self.outstanding.push(entry.clone());
                // Made: it is undone at teardown even if its `done` cannot be written (then
                // `broken` says so, and the run stops there).
                let _ = self.write(&Record::Done {
                    at: now_rfc3339(),
                    seq,
                });
                Ok(entry)
            }
            Err(e) => {
                self.write(&Record::Failed {
                    at: now_rfc3339(),
                    seq,
                    error: e.to_string(),
                })?;
                Err(e)
            }
        }
    }

    /// Undoes `entry` and journals it. A change the GPU shows is not in effect (a crash
    /// interrupted it, or an earlier restore undid it) is only marked undone. The GPU comes
    /// first: the undo is made even when the journal cannot be written (a full disk), since a
    /// later restore checks what is in effect anyway.
    pub fn undo(&mut self, backend: &dyn Backend, entry: &Entry) -> Result<()> {
        let _ = self.write(&Record::Undo {
            at: now_rfc3339(),
            seq: entry.seq,
        });
        let result = match backend.in_effect(&entry.change) {
            Ok(false) => Ok(Some("not in effect".to_string())),
            Ok(true) => backend.apply(&entry.change.inverse()).map(|()| None),
            Err(e) => Err(e),
        };
        match result {
            Ok(note) => {
                self.outstanding.retain(|e| e.seq != entry.seq);
                let _ = self.write(&Record::Undone {
                    at: now_rfc3339(),
                    seq: entry.seq,
                    note,
                });
                Ok(())
            }
            Err(e) => {
                let _ = self.write(&Record::UndoFailed {
                    at: now_rfc3339(),
                    seq: entry.seq,
                    error: e.to_string(),
                });
                Err(e)
            }
        }
    }

    /// Undoes every change made and not undone yet, newest first. Keeps going past a failure,
    /// so that as much as possible is put back, and reports the first failure.
    pub fn undo_all(&mut self, backend: &dyn Backend) -> Result<()> {
        let mut first_error = None;
        // One try each: a change that cannot be undone stays outstanding, for `restore`.
        for entry in self.outstanding.clone().iter().rev() {
            if let Err(e) = self.undo(backend, entry) {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            None => Ok(()),
            Some(e) => Err(Error::Harness(format!(
                "could not put the GPU back as found: {e}"
            ))),
        }
    }

    /// Every change made through this journal has been undone.
    pub fn all_undone(&self) -> bool {
        self.outstanding.is_empty()
    }

    /// Journals `made` before it is made; once for a spec regenerated again, which is still
    /// to be put back as it was first found (there or not).
    pub fn made(&mut self, made: Made) -> Result<()> {
        if self.made.iter().any(|m| m.same_thing(&made)) {
            return Ok(());
        }
        self.write(&Record::Made {
            at: now_rfc3339(),
            made: made.clone(),
        })?;
        self.made.push(made);
        Ok(())
    }

    /// Journals that `made` is gone or put back.
    pub fn cleared(&mut self, made: &Made) -> Result<()> {
        self.made.retain(|m| m != made);
        self.write(&Record::Cleared {
            at: now_rfc3339(),
            made: made.clone(),
        })
    }

    /// What was made and not cleared yet: the CDI spec regenerated, if any.
    pub fn outstanding_made(&self) -> &[Made] {
        &self.made
    }

    /// Clears what is still made: containers (a run that unwound from a panic removed its
    /// containers without journaling it), and, once the GPU is as found, a regenerated spec.
    /// Keeps going past a failure and reports the first.
    pub fn clear_made(&mut self) -> Result<()> {
        let mut first_error = None;
        for made in self.made.clone() {
            if !made.holds_gpu() && !self.all_undone() {
                continue;
            }
            match made.clear() {
                Ok(()) => {
                    if let Err(e) = self.cleared(&made) {
                        first_error.get_or_insert(e);
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(Error::Harness(e));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Says that everything was put back.
    pub fn close(&mut self) -> Result<()> {
        self.write(&Record::Closed { at: now_rfc3339() })
    }
}

/// A journal read back from disk.
#[derive(Debug, Clone)]
pub struct JournalFile {
    pub path: PathBuf,
    pub gpu: GpuIdentity,
    pub found: GpuState,
    pub records: Vec<Record>,
    /// Bytes of an unterminated last line: a record a crash cut short while it was written.
    /// It was never acted on (every change is journaled before it is made), so it is ignored.
    pub torn: usize,
}

impl JournalFile {
    /// Whether the journal at `path` holds no whole record: its run was stopped after it locked
    /// the GPU and before it recorded the GPU's state, so it changed nothing. A journal that is
    /// not there is not blank: a run makes its journal before its lock names it, so it was
    /// deleted, and what its run changed is unknown.
    pub fn is_blank(path: &Path) -> bool {
        crate::input::read(path, crate::input::JOURNAL).is_ok_and(|bytes| !bytes.contains(&b'\n'))
    }

    /// Whether the journal at `path` is not there: deleted, since a run makes its journal before
    /// its lock names it.
    pub fn deleted(path: &Path) -> bool {
        std::fs::symlink_metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
    }

    pub fn read(path: &Path) -> Result<JournalFile> {
        let text = crate::input::read_to_string(path, crate::input::JOURNAL).map_err(|e| {
            Error::Input(format!("cannot read the journal {}: {e}", path.display()))
        })?;
        // Every record ends with a newline, written with it in one call: bytes after the last
        // newline are a record cut short.
        let whole = text.rfind('\n').map_or(0, |i| i + 1);
        let torn = text.len() - whole;
        let mut records = Vec::new();
        for (n, line) in text[..whole].lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Record>(line) {
                Ok(r) => records.push(r),
                Err(e) => {
                    return Err(Error::Input(format!(
                        "{}:{}:{}: not a journal record: {}",
                        path.display(),
                        n + 1,
                        e.column(),
                        crate::location::json_error(line, &e)
                    )))
                }
            }
        }
        let Some(Record::Found { gpu, state, .. }) = records.first().cloned() else {
            return Err(Error::Input(format!(
                "{}: not a migbench journal (it does not start with the state found)",
                path.display()
            )));
        };
        Ok(JournalFile {
            path: path.to_path_buf(),
            gpu,
            found: state,
            records,
            torn,
        })
    }

    /// What to tell a person about a torn last line, if there is one.
    pub fn torn_warning(&self) -> Option<String> {
        (self.torn > 0).then(|| {
            format!(
                "{}: the last {} byte(s) are a record a crash cut short (never acted on); ignored",
                self.path.display(),
                self.torn
            )
        })
    }

    /// Everything was put back.
    pub fn is_closed(&self) -> bool {
        matches!(self.records.last(), Some(Record::Closed { .. }))
    }

    /// The changes made, or possibly made, and not yet undone; oldest first.
    pub fn outstanding(&self) -> Vec<Entry> {
        let undone = |seq: u64| {
            self.records
                .iter()
                .any(|r| matches!(r, Record::Undone { seq: s, .. } if *s == seq))
        };
        let failed = |seq: u64| {
            self.records
                .iter()
                .any(|r| matches!(r, Record::Failed { seq: s, .. } if *s == seq))
        };
        self.records
            .iter()
            .filter_map(|r| match r {
                // A failed change left the GPU as it was (the backend's contract).
                Record::Apply { seq, change, .. } if !undone(*seq) && !failed(*seq) => {
                    Some(Entry {
                        seq: *seq,
                        change: change.clone(),
                    })
                }
                _ => None,
            })
            .collect()
    }

    /// What was made beside the GPU's configuration and not cleared, oldest first.
    pub fn outstanding_made(&self) -> Vec<Made> {
        let mut made = Vec::new();
        for r in &self.records {
            match r {
                Record::Made { made: m, .. } => made.push(m.clone()),
                Record::Cleared { made: m, .. } => made.retain(|x| x != m),
                _ => {}
            }
        }
        made
    }

    /// Closes a journal whose GPU is gone (a simulated GPU that ended with its process): marks
    /// every outstanding change undone and returns how many there were.
    pub fn close_without_changes(path: &Path) -> Result<usize> {
        let journal = JournalFile::read(path)?;
        let outstanding = journal.outstanding();
        let mut writer = Journal::append(path, journal.next_seq(), journal.torn)?;
        for entry in &outstanding {
            writer.write(&Record::Undone {
                at: now_rfc3339(),
                seq: entry.seq,
                note: Some("the GPU no longer exists".into()),
            })?;
        }
        writer.close()?;
        Ok(outstanding.len())
    }

    fn next_seq(&self) -> u64 {
        self.records
            .iter()
            .filter_map(|r| match r {
                Record::Apply { seq, .. } => Some(*seq + 1),
                _ => None,
            })
            .max()
            .unwrap_or(1)
    }
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    /// Changes undone (or found not in effect), newest first.
    pub undone: Vec<Change>,
    /// The state after restoring, and whether it matches the state found.
    pub state: GpuState,
    pub matches_found: bool,
}

/// Undoes every outstanding change of `journal` on `backend`, newest first, and closes it.
/// Keeps going past a failure so that as much as possible is put back, and reports the first.
pub fn restore(journal: &JournalFile, backend: &dyn Backend) -> Result<Restored> {
    let mut undone = Vec::new();
    let mut first_error = None;
    if !journal.is_closed() {
        let mut writer = Journal::append(&journal.path, journal.next_seq(), journal.torn)?;
        writer.made = journal.outstanding_made();
        // Containers first: their processes hold the GPU. A spec follows the GPU's devices, so
        // it is regenerated once the changes are undone.
        let (holding, following): (Vec<Made>, Vec<Made>) =
            writer.made.iter().cloned().partition(Made::holds_gpu);
        writer.made = holding;
        if let Err(e) = writer.clear_made() {
            first_error.get_or_insert(e);
        }
        for entry in journal.outstanding().iter().rev() {
            match writer.undo(backend, entry) {
                Ok(()) => undone.push(entry.change.clone()),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        writer.made.extend(following);
        if first_error.is_none() {
            if let Err(e) = writer.clear_made() {
                first_error.get_or_insert(e);
            }
        }
        if first_error.is_none() {
            writer.close()?;
        }
    }
    if let Some(e) = first_error {
        return Err(Error::Harness(format!(
            "could not put GPU {} back as found: {e}; the journal {} keeps what is left",
            journal.gpu.uuid,
            journal.path.display()
        )));
    }
    let state = backend.state()?;
    Ok(Restored {
        undone,
        matches_found: state == journal.found,
        state,
    })
}
