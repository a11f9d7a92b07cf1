//! Reading one results table of many runs with polars: one lazy scan over every run's file,
//! with the columns of the table's one definition ([`Table::schema`]) cast to their types, and
//! each row tagged with the index of its run. Files written under an older schema version are
//! scanned apart, their renamed columns mapped to today's names
//! ([`crate::results::schema::renamed_since`]).

use std::ops::{Deref, DerefMut};
use std::path::PathBuf;

use polars::prelude::*;

use super::runs::Run;
use crate::error::{Error, Result};
use crate::results::schema::{renamed_since, Table};
use crate::results::stream::table_files;

/// A row of a results table, with the run it comes from (an index into the runs read).
#[derive(Debug, Clone, PartialEq)]
pub struct Row<T> {
    pub run: usize,
    pub row: T,
}

impl<T> Deref for Row<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.row
    }
}

impl<T> DerefMut for Row<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.row
    }
}

/// The rows of table `T` in every run that has it, in run order and, within a run, in the
/// order written; `filter` keeps only some (it is pushed into the scan).
pub fn rows<T: Table>(runs: &[Run], filter: Option<Expr>) -> Result<Vec<Row<T>>> {
    let mut scan = scan(runs, T::NAME, &T::schema())?;
    if let Some(filter) = filter {
        scan = scan.filter(filter);
    }
    let df = scan.collect().map_err(polars_error)?;
    let run = df
        .column("run")
        .and_then(|c| c.u32().cloned())
        .map_err(polars_error)?;
    let rows = T::from_frame(&df)?;
    Ok(run
        .into_iter()
        .zip(rows)
        .map(|(run, row)| Row {
            run: run.unwrap_or_default() as usize,
            row,
        })
        .collect())
}

/// A lazy scan of table `table` in every run that has it (its files: [`table_files`]): a `run` column (the index into
/// `runs`), then `columns` cast to their types; a column a file lacks reads as nulls.
pub fn scan(runs: &[Run], table: &str, columns: &[(String, DataType)]) -> Result<LazyFrame> {
    let mut by_version: Vec<(u32, Vec<(PathBuf, u32)>)> = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        // A streamed table's parts in the order written: one run's rows stay in order.
        let files = table_files(&run.dir, table)
            .into_iter()
            .filter(|f| f.is_file());
        let version = run.manifest.schema_version;
        for file in files {
            match by_version.iter_mut().find(|(v, _)| *v == version) {
                Some((_, files)) => files.push((file, i as u32)),
                None => by_version.push((version, vec![(file, i as u32)])),
            }
        }
    }
    let mut select = vec![col("run")];
    select.extend(columns.iter().map(|(c, d)| col(c.as_str()).cast(d.clone())));
    if by_version.is_empty() {
        // No run has this table (older runs): an empty frame of the right shape.
        let empty: Vec<Column> = std::iter::once(("run".to_string(), DataType::UInt32))
            .chain(columns.iter().cloned())
            .map(|(c, d)| Column::new_empty(c.into(), &d))
            .collect();
        return Ok(DataFrame::new(empty).map_err(polars_error)?.lazy());
    }
    let mut scans = Vec::new();
    for (version, files) in by_version {
        let frame = current_names(scan_files(files)?, version, table);
        let mut keep = vec![col("row")];
        keep.extend(select.iter().cloned());
        scans.push(frame.select(keep));
    }
    let union = UnionArgs {
        parallel: true,
        rechunk: false,
        ..Default::default()
    };
    Ok(concat(scans, union)
        .map_err(polars_error)?
        .sort(["run", "row"], SortMultipleOptions::default())
        .drop(["row"]))
}

/// A table written under schema `version` with today's column names.
pub fn current_names(frame: LazyFrame, version: u32, table: &str) -> LazyFrame {
    let renamed = renamed_since(version, table);
    if renamed.is_empty() {
        return frame;
    }
    let (old, new): (Vec<&str>, Vec<&str>) = renamed.iter().copied().unzip();
    frame.rename(old, new, false)
}

/// One scan of several files of a table, with their run index and each row's position.
fn scan_files(files: Vec<(PathBuf, u32)>) -> Result<LazyFrame> {
    let (files, index): (Vec<PathBuf>, Vec<u32>) = files.into_iter().unzip();
    let runs_by_file = df!(
        "file" => files.iter().map(|f| f.to_string_lossy().into_owned()).collect::<Vec<_>>(),
        "run" => index,
    )
    .map_err(polars_error)?;
    let args = ScanArgsParquet {
        include_file_paths: Some("file".into()),
        row_index: Some(polars::io::RowIndex {
            name: "row".into(),
            offset: 0,
        }),
        allow_missing_columns: true,
        ..Default::default()
    };
    Ok(LazyFrame::scan_parquet_files(files.into(), args)
        .map_err(polars_error)?
        .join(
            runs_by_file.lazy(),
            [col("file")],
            [col("file")],
            JoinArgs::new(JoinType::Inner),
        ))
}

pub(super) fn polars_error(e: PolarsError) -> Error {
    Error::Harness(format!("cannot read the results tables: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{JobRecord, Manifest, Outcome, SCHEMA_VERSION};

    fn run(dir: &std::path::Path, manifest: &str) -> Run {
        Run {
            dir: dir.to_path_buf(),
            manifest: serde_json::from_str::<Manifest>(manifest).unwrap(),
            scenario: None,
        }
    }

    const OLD_MANIFEST: &str = r#"{"scenario": "s", "backend": "sim", "simulated": true,
        "gpu_model": "h100-80gb", "gpu_name": "H100", "started_at": "2026-01-01T00:00:00Z"}"#;

    #[test]
    fn a_run_written_before_the_columns_carried_their_unit_reads_under_todays_names() {
        let rows = vec![JobRecord {
            variant: "v".into(),
            repetition: 1,
            job: 0,
            mode: crate::mode::SharingMode::Full,
            workload: "w".into(),
            unit: "video".into(),
            instance_profile: None,
            instance_uuid: None,
            start_s: Some(1.5),
            end_s: Some(243.5),
            duration_s: Some(242.0),
            exit_code: Some(0),
            pid: Some(7),
            outcome: Outcome::Ok,
            vram_peak_gib: Some(33.0),
            vram_constant_gib: Some(21.0),
            energy_j: None,
            reason: None,
            log: None,
        }];
        let (old, new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        // Version 1 named them `start` and `end`, and its manifest had no version.
        let mut df = JobRecord::to_frame(&rows).unwrap();
        df.rename("start_s", "start".into()).unwrap();
        df.rename("end_s", "end".into()).unwrap();
        let file = std::fs::File::create(old.path().join("jobs.parquet")).unwrap();
        ParquetWriter::new(file).finish(&mut df).unwrap();
        crate::results::write_for_tests(new.path(), &rows);
        let current =
            OLD_MANIFEST.replacen('{', &format!("{{\"schema_version\": {SCHEMA_VERSION},"), 1);
        let runs = [run(old.path(), OLD_MANIFEST), run(new.path(), &current)];
        assert_eq!(runs[0].manifest.schema_version, 1);
        let read: Vec<Row<JobRecord>> = super::rows(&runs, None).unwrap();
        let expected: Vec<Row<JobRecord>> = (0..2)
            .map(|run| Row {
                run,
                row: rows[0].clone(),
            })
            .collect();
        assert_eq!(read, expected);
    }
}
