//! Copies of a run directory with one table changed, for the report and compare tests to feed
//! migbench results it did not write itself.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::{read_parquet, strs};

/// Writes `df` to `path` as Parquet.
pub fn write_parquet(path: &Path, df: &mut DataFrame) {
    let file = std::fs::File::create(path).unwrap();
    ParquetWriter::new(file).finish(df).unwrap();
}

/// Copies a run directory, changing its variants table with `edit`.
pub fn edited_copy(run: &Path, to: &Path, edit: impl Fn(&mut DataFrame)) -> PathBuf {
    edited_table(run, to, "variants", edit)
}

/// Copies a run directory, changing its `table` (the Parquet file) with `edit`.
pub fn edited_table(run: &Path, to: &Path, table: &str, edit: impl Fn(&mut DataFrame)) -> PathBuf {
    let dest = to.join(run.file_name().unwrap());
    std::fs::create_dir_all(&dest).unwrap();
    for entry in std::fs::read_dir(run).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dest.join(path.file_name().unwrap())).unwrap();
        }
    }
    let file = format!("{table}.parquet");
    let mut df = read_parquet(&run.join(&file));
    edit(&mut df);
    write_parquet(&dest.join(&file), &mut df);
    dest
}

/// Multiplies a float column of the row of `variant`.
pub fn scale(df: &mut DataFrame, variant: &str, column: &str, factor: f64) {
    let names = strs(df, "variant");
    let values: Vec<Option<f64>> = df
        .column(column)
        .unwrap()
        .f64()
        .unwrap()
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            v.map(|v| {
                if names.get(i) == Some(variant) {
                    v * factor
                } else {
                    v
                }
            })
        })
        .collect();
    df.with_column(Series::new(column.into(), values)).unwrap();
}
