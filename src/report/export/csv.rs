//! `<table>.csv` for every table: one column per value, a statistic spread over `_mean`, `_sd`,
//! `_median`, `_min`, `_max`, `_n` and `_outliers` columns, full precision.

use polars::prelude::*;

use super::{Exporter, Part};
use crate::error::{Error, Result};
use crate::report::stats::Summary;
use crate::report::table::{Kind, Role, Table, Value};
use crate::report::Report;

pub struct Csv;

impl Exporter for Csv {
    fn export(&self, report: &Report) -> Result<Vec<Part>> {
        report
            .tables
            .iter()
            .map(|t| Ok(Part::new(format!("{}.csv", t.name), csv(t)?)))
            .collect()
    }
}

/// Reads one part of a statistic.
type StatPart = fn(&Summary) -> Option<f64>;

/// The parts of a statistic written to CSV.
const STAT_PARTS: [(&str, StatPart); 7] = [
    ("mean", |s| Some(s.mean)),
    ("sd", |s| s.stddev),
    ("median", |s| Some(s.median)),
    ("min", |s| Some(s.min)),
    ("max", |s| Some(s.max)),
    ("n", |s| Some(s.n as f64)),
    ("outliers", |s| Some(s.outliers as f64)),
];

fn csv(table: &Table) -> Result<Vec<u8>> {
    let mut columns: Vec<Column> = Vec::new();
    let mut written: Vec<&str> = Vec::new();
    for (c, column) in table.columns.iter().enumerate() {
        // Terminal-only columns repeat others; a statistic shown twice is written once.
        if column.role == Role::Terminal || written.contains(&column.key.as_ref()) {
            continue;
        }
        written.push(&column.key);
        let values = table.rows.iter().map(|r| &r[c]);
        match column.kind {
            Kind::Stat { .. } => {
                for (part, get) in STAT_PARTS {
                    let data: Vec<Option<f64>> = values
                        .clone()
                        .map(|v| match v {
                            Value::Stat(Some(s)) => get(s),
                            _ => None,
                        })
                        .collect();
                    columns.push(Series::new(format!("{}_{part}", column.key).into(), data).into());
                }
            }
            Kind::Count => {
                let data: Vec<Option<u64>> = values
                    .map(|v| match v {
                        Value::Count(n) => Some(*n),
                        _ => None,
                    })
                    .collect();
                columns.push(Series::new(column.key.as_ref().into(), data).into());
            }
            Kind::Number { .. } => {
                let data: Vec<Option<f64>> = values
                    .map(|v| match v {
                        Value::Number(x) => *x,
                        _ => None,
                    })
                    .collect();
                columns.push(Series::new(column.key.as_ref().into(), data).into());
            }
            Kind::Text | Kind::Mode => {
                let data: Vec<String> = values.map(|v| table.display(c, v)).collect();
                columns.push(Series::new(column.key.as_ref().into(), data).into());
            }
        }
    }
    let fail = |e: PolarsError| Error::Harness(format!("cannot write {}.csv: {e}", table.name));
    let mut df = DataFrame::new(columns).map_err(fail)?;
    let mut out = Vec::new();
    CsvWriter::new(&mut out).finish(&mut df).map_err(fail)?;
    Ok(out)
}
