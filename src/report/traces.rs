//! Memory over time, for the plots: the `samples` table (millions of rows on a long run) reduced
//! inside the scan to the largest level in each of a few hundred time buckets per job, so that
//! no peak is lost and only what a plot shows is ever collected.

use polars::prelude::*;

use super::load::{Damaged, Results};
use super::scan::{current_names, polars_error};
use crate::backend::Scope;
use crate::error::{Error, Result};
use crate::results::schema::{Cells, Table};
use crate::results::stream::table_files;
use crate::results::SampleRecord;
use std::path::PathBuf;

/// One variant repetition whose VRAM samples are wanted, over `[t0, t1]` (run seconds).
#[derive(Debug, Clone)]
pub struct TracePick {
    pub run: usize,
    pub variant: String,
    pub repetition: u32,
    pub t0: f64,
    pub t1: f64,
}

/// Memory over time of one process (a job) or of the whole GPU, reduced to the largest level in
/// each of a fixed number of time buckets, so that no peak is lost.
#[derive(Debug, Clone)]
pub struct Trace {
    /// Index into the picks passed to [`Results::vram_traces`].
    pub pick: usize,
    /// `process` or `gpu`.
    pub scope: String,
    /// The PID for a process, the UUID for the GPU.
    pub id: String,
    /// `(seconds since the pick's t0, GiB)`, in time order.
    pub points: Vec<(f64, f64)>,
}

impl Results {
    /// Job and GPU memory over time for each pick, `buckets` points per line at most. A run
    /// whose samples cannot be read (a file whose footer reads but whose pages do not) is an
    /// error naming its file under `Damaged::Refuse`; under `Damaged::Skip` its picks get no
    /// trace, and the warnings returned say why.
    pub fn vram_traces(
        &self,
        picks: &[TracePick],
        buckets: u32,
        damaged: Damaged,
    ) -> Result<(Vec<Trace>, Vec<String>)> {
        let mut runs: Vec<usize> = picks.iter().map(|p| p.run).collect();
        runs.sort_unstable();
        runs.dedup();
        let e = match self.reduced_traces(picks, buckets, &runs) {
            Ok(traces) => return Ok((traces, Vec::new())),
            Err(e) => e,
        };
        // Find whose samples fail: each run alone.
        let (mut good, mut warnings) = (Vec::new(), Vec::new());
        for run in runs {
            match self.reduced_traces(picks, buckets, &[run]) {
                Ok(_) => good.push(run),
                Err(e) => {
                    let message = format!(
                        "{}: its VRAM samples cannot be read ({})",
                        self.runs[run].dir.join(SampleRecord::NAME).display(),
                        crate::bounds::short(e.to_string().lines().next().unwrap_or_default())
                    );
                    if damaged == Damaged::Refuse {
                        return Err(Error::Input(message));
                    }
                    warnings.push(format!("{message}; its VRAM plots are left out"));
                }
            }
        }
        if warnings.is_empty() {
            return Err(e);
        }
        let traces = self.reduced_traces(picks, buckets, &good)?;
        Ok((traces, warnings))
    }

    /// [`Results::vram_traces`] of the picks of `runs`.
    fn reduced_traces(
        &self,
        picks: &[TracePick],
        buckets: u32,
        runs: &[usize],
    ) -> Result<Vec<Trace>> {
        if picks.is_empty() {
            return Ok(Vec::new());
        }
        // One scan per run file (polars reads them in parallel), each row tagged with its pick
        // by a chain of conditions: far cheaper than joining ten million rows on strings.
        let mut scans = Vec::new();
        for &run in runs {
            let files: Vec<PathBuf> = table_files(&self.runs[run].dir, SampleRecord::NAME);
            if files.is_empty() {
                continue;
            }
            // The pick of each row by the variant's name (a string comparison per pick), then
            // its bucket by the pick (a number comparison per pick).
            let (mut pick, mut bucket) = (lit(NULL), lit(NULL));
            for (i, p) in picks.iter().enumerate().filter(|(_, p)| p.run == run) {
                let this = col("variant")
                    .eq(lit(p.variant.as_str()))
                    .and(col("repetition").eq(lit(p.repetition)));
                pick = when(this).then(lit(i as u32)).otherwise(pick);
                let width = ((p.t1 - p.t0) / f64::from(buckets)).max(1e-9);
                bucket = when(col("pick").eq(lit(i as u32)))
                    .then((col("t_s") - lit(p.t0)) / lit(width))
                    .otherwise(bucket);
            }
            let scan = LazyFrame::scan_parquet_files(files.into(), ScanArgsParquet::default())
                .map_err(polars_error)?;
            let version = self.runs[run].manifest.schema_version;
            let scan = current_names(scan, version, SampleRecord::NAME)
                .select([
                    col("variant"),
                    col("repetition"),
                    col("scope"),
                    col("id"),
                    col("t_s"),
                    col("used_gib"),
                ])
                .filter(col("scope").neq(lit(Scope::Instance.as_str())))
                .with_column(pick.alias("pick"))
                .filter(col("pick").is_not_null())
                .with_column(bucket.alias("bucket"))
                .filter(
                    col("bucket")
                        .gt_eq(lit(0.0))
                        .and(col("bucket").lt_eq(lit(f64::from(buckets)))),
                )
                .select([
                    col("pick"),
                    col("scope"),
                    col("id"),
                    // Non-negative here, so truncating is flooring.
                    col("bucket").cast(DataType::Int64),
                    col("t_s"),
                    col("used_gib"),
                ]);
            scans.push(scan);
        }
        if scans.is_empty() {
            return Ok(Vec::new());
        }
        let union = UnionArgs {
            parallel: true,
            rechunk: false,
            ..Default::default()
        };
        let reduced = concat(scans, union)
            .map_err(polars_error)?
            .group_by([col("pick"), col("id"), col("bucket")])
            .agg([
                col("scope").first(),
                col("t_s").min(),
                col("used_gib").max(),
            ])
            .sort(
                ["pick", "scope", "id", "t_s"],
                SortMultipleOptions::default(),
            )
            .select([
                col("pick").cast(DataType::UInt32),
                col("scope"),
                col("id"),
                col("t_s"),
                col("used_gib"),
            ]);
        // Streamed: the scan, the tagging and the per-bucket maxima run batch by batch, so a run
        // of ten million samples is never held whole (over 10 M samples: 2.0 GB peak and 1.4 s
        // collected at once, 140 MB and 0.8 s streamed; `cargo bench --bench report`).
        let df = reduced
            .with_streaming(true)
            .collect()
            .map_err(polars_error)?;
        let table = Cells::new(&df, SampleRecord::NAME);
        let (pick, scope, id, t, used) = (
            table.u32("pick")?,
            table.str("scope")?,
            table.str("id")?,
            table.f64("t_s")?,
            table.f64("used_gib")?,
        );
        let mut traces: Vec<Trace> = Vec::new();
        for i in 0..df.height() {
            let key = (
                pick.get(i).unwrap_or_default() as usize,
                scope.get(i).unwrap_or_default(),
                id.get(i).unwrap_or_default(),
            );
            let point = (
                t.get(i).unwrap_or_default() - picks[key.0].t0,
                used.get(i).unwrap_or_default(),
            );
            match traces.last_mut() {
                Some(last) if (last.pick, last.scope.as_str(), last.id.as_str()) == key => {
                    last.points.push(point)
                }
                _ => traces.push(Trace {
                    pick: key.0,
                    scope: key.1.to_string(),
                    id: key.2.to_string(),
                    points: vec![point],
                }),
            }
        }
        Ok(traces)
    }
}
