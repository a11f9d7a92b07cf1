//! A table written as it is taken: rows go to `<run>/<table>/part-NNNNN.parquet`, each part a
//! complete Parquet file of at most [`PART_ROWS`] rows ([`REQUEST_PART_ROWS`] for requests). The part being filled is written again
//! (to a temporary name, then renamed over the last copy) at most [`FLUSH_EVERY`] after its
//! oldest unwritten row, so a run that is killed loses at most that much, and every file a
//! reader finds has its footer. Memory is one part's rows, whatever the run's length.
//!
//! Readers find a table's files with [`table_files`], which also reads the single
//! `<table>.parquet` that runs before streaming wrote.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use polars::prelude::*;

use super::schema::{csv_columns, Table};
use crate::error::{Error, Result};

/// Rows in one part: about 30 MB of samples held at most (see docs/results.md).
pub const PART_ROWS: usize = 65_536;
/// Rows in one part of the `requests` table: a request's row holds its gaps between chunks (a
/// kilobyte at 128 output tokens), so about 10 MB held at most.
pub const REQUEST_PART_ROWS: usize = 8_192;
/// The longest a row waits before it is on disk (wall time, whatever the run's clock).
pub const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// The files of table `T` in run directory `dir`, in the order written: its parts (the part
/// being written included, never a temporary file), else the `<table>.parquet` of older runs.
/// Empty when the run has neither.
pub fn table_files(dir: &Path, table: &str) -> Vec<PathBuf> {
    let parts = dir.join(table);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&parts)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| is_part(p))
                .collect()
        })
        .unwrap_or_default();
    if files.is_empty() {
        let whole = dir.join(format!("{table}.parquet"));
        if std::fs::symlink_metadata(&whole).is_ok() {
            files.push(whole);
        }
    }
    // Zero-padded numbers: the names sort in the order written.
    files.sort();
    files
}

fn is_part(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("part-") && n.ends_with(".parquet"))
}

/// A table being written part by part.
pub struct PartWriter<T: Table> {
    dir: PathBuf,
    /// The number of the part being filled.
    part: u32,
    rows: Vec<T>,
    /// Rows in a full part.
    part_rows: usize,
    /// Rows of the current part already on disk.
    written: usize,
    /// When the oldest row not yet on disk was taken.
    oldest: Option<Instant>,
    /// Each full part is also appended here, when the run asked for a CSV copy.
    csv: Option<PathBuf>,
    csv_started: bool,
    flush_every: Duration,
}

impl<T: Table> PartWriter<T> {
    /// Writes `T`'s parts under `run/<NAME>/` (made with the first part); with `csv`, also
    /// `run/<NAME>.csv`.
    pub fn create(run: &Path, csv: bool) -> Self {
        PartWriter {
            dir: run.join(T::NAME),
            part: 0,
            rows: Vec::new(),
            part_rows: PART_ROWS,
            written: 0,
            oldest: None,
            csv: csv.then(|| run.join(format!("{}.csv", T::NAME))),
            csv_started: false,
            flush_every: FLUSH_EVERY,
        }
    }

    /// Parts of `rows` rows rather than [`PART_ROWS`].
    pub fn part_rows(mut self, rows: usize) -> Self {
        self.part_rows = rows.max(1);
        self
    }

    /// Writes the part being filled only when it is full or flushed (tests that count files).
    #[cfg(test)]
    fn never_by_time(mut self) -> Self {
        self.flush_every = Duration::MAX;
        self
    }

    /// Adds one row; writes the part when it is full or its oldest unwritten row is
    /// [`FLUSH_EVERY`] old.
    pub fn push(&mut self, row: T) -> Result<()> {
        self.rows.push(row);
        let oldest = *self.oldest.get_or_insert_with(Instant::now);
        if self.rows.len() >= self.part_rows {
            self.write_part()?;
            self.next_part()
        } else if oldest.elapsed() >= self.flush_every {
            self.write_part()
        } else {
            Ok(())
        }
    }

    /// Writes what is not on disk yet (the end of a variant, or of the run).
    pub fn flush(&mut self) -> Result<()> {
        if self.rows.len() > self.written {
            self.write_part()?;
        }
        Ok(())
    }

    /// Flushes, and ends the CSV copy with the last part: the end of the run.
    pub fn finish(&mut self) -> Result<()> {
        self.flush()?;
        if !self.rows.is_empty() {
            self.append_csv()?;
        }
        self.rows.clear();
        self.written = 0;
        Ok(())
    }

    /// Writes the current part whole, to a temporary name renamed over the last copy, so a
    /// reader never finds a part without its footer.
    fn write_part(&mut self) -> Result<()> {
        crate::fault::write(T::NAME).map_err(|e| fail(&self.dir, &e))?;
        std::fs::create_dir_all(&self.dir).map_err(|e| fail(&self.dir, &e))?;
        let path = self.dir.join(format!("part-{:05}.parquet", self.part));
        let tmp = self.dir.join(format!(".part-{:05}.parquet.tmp", self.part));
        let mut df = T::to_frame(&self.rows)?;
        let file = std::fs::File::create(&tmp).map_err(|e| fail(&tmp, &e))?;
        ParquetWriter::new(&file)
            .finish(&mut df)
            .map_err(|e| fail(&tmp, &e))?;
        file.sync_data().map_err(|e| fail(&tmp, &e))?;
        std::fs::rename(&tmp, &path).map_err(|e| fail(&path, &e))?;
        self.written = self.rows.len();
        self.oldest = None;
        Ok(())
    }

    fn next_part(&mut self) -> Result<()> {
        crate::fault::written(T::NAME, u64::from(self.part) + 1);
        self.append_csv()?;
        self.rows.clear();
        self.written = 0;
        self.part += 1;
        Ok(())
    }

    /// Appends the current part's rows to the CSV copy, if any (the header once).
    fn append_csv(&mut self) -> Result<()> {
        let Some(path) = &self.csv else {
            return Ok(());
        };
        let mut df = csv_columns(&T::to_frame(&self.rows)?);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| fail(path, &e))?;
        CsvWriter::new(file)
            .include_header(!self.csv_started)
            .finish(&mut df)
            .map_err(|e| fail(path, &e))?;
        self.csv_started = true;
        Ok(())
    }
}

fn fail(path: &Path, e: &dyn std::fmt::Display) -> Error {
    Error::Harness(format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Scope;
    use crate::results::SampleRecord;

    fn sample(t: f64) -> SampleRecord {
        SampleRecord {
            t_s: t,
            variant: "v".into(),
            repetition: 1,
            scope: Scope::Gpu,
            id: "GPU-1".into(),
            label: "GPU".into(),
            used_gib: t,
            capacity_gib: Some(80.0),
            utilization_pct: None,
            power_w: None,
        }
    }

    fn read(files: &[PathBuf]) -> Vec<SampleRecord> {
        files
            .iter()
            .flat_map(|f| {
                let df = ParquetReader::new(std::fs::File::open(f).unwrap())
                    .finish()
                    .unwrap();
                SampleRecord::from_frame(&df).unwrap()
            })
            .collect()
    }

    #[test]
    fn full_parts_are_complete_files_in_order_and_the_csv_copy_has_every_row_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PartWriter::<SampleRecord>::create(dir.path(), true).never_by_time();
        let n = PART_ROWS * 2 + 10;
        for i in 0..n {
            w.push(sample(i as f64)).unwrap();
        }
        // Two full parts are on disk before the end; the third waits for its flush.
        let files = table_files(dir.path(), "samples");
        assert_eq!(files.len(), 2, "{files:?}");
        assert_eq!(read(&files).len(), PART_ROWS * 2);
        w.finish().unwrap();
        let files = table_files(dir.path(), "samples");
        assert_eq!(files.len(), 3);
        let back = read(&files);
        assert_eq!(back.len(), n);
        assert!(back.iter().enumerate().all(|(i, r)| r.t_s == i as f64));
        let csv = std::fs::read_to_string(dir.path().join("samples.csv")).unwrap();
        assert_eq!(csv.lines().count(), n + 1);
        assert_eq!(csv.lines().filter(|l| l.starts_with("t_s,")).count(), 1);
    }

    #[test]
    fn a_flush_writes_the_part_being_filled_and_a_later_flush_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PartWriter::<SampleRecord>::create(dir.path(), false);
        w.push(sample(1.0)).unwrap();
        w.flush().unwrap();
        assert_eq!(read(&table_files(dir.path(), "samples")).len(), 1);
        w.push(sample(2.0)).unwrap();
        w.flush().unwrap();
        let files = table_files(dir.path(), "samples");
        assert_eq!(files.len(), 1);
        assert_eq!(read(&files).len(), 2);
        assert!(!dir.path().join("samples.csv").exists());
        // No temporary file is left, and none would be read.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("samples"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("part-00000.parquet")]);
    }

    #[test]
    fn an_older_run_s_single_file_is_found_when_there_are_no_parts() {
        let dir = tempfile::tempdir().unwrap();
        assert!(table_files(dir.path(), "samples").is_empty());
        std::fs::write(dir.path().join("samples.parquet"), b"x").unwrap();
        assert_eq!(
            table_files(dir.path(), "samples"),
            vec![dir.path().join("samples.parquet")]
        );
    }
}
