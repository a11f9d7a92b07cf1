//! `migbench calibrate --table FILE.csv`: fits a workload's sharing model on a table of figures,
//! published or measured by hand, instead of run directories.
//!
//! One row a figure (docs/advise.md, "Calibrating from a table"): `gpu`, `mode`, `profile` (the
//! GPU instance of a MIG row; empty on a whole GPU), `co_runners` (other jobs on the same device
//! at once), `thread_cap` (an MPS active-thread percentage; empty for none), `figure`, `unit`;
//! optionally `workload` (rows of other workloads are skipped), `batch`, `source`. A figure is a
//! time per unit (`s`, `min`, `h`), a rate (`images/s`, `videos/h`: anything per `s`, `min` or
//! `h`), the memory a job used (`MiB`, `GiB`, `MB`, `GB`), or `oom`: the job ran out of memory.
//! Lines starting with `#` are comments.
//!
//! Times are fitted with the simulator's sharing model ([`Sharing::speed`]) in stages, each on
//! the rows that identify it: the whole-GPU time and the MIG shape on rows alone on a device,
//! then MPS on rows beside other clients, then time-slicing. A stage with `k` distinct devices
//! (or sharing contexts) fits at most `k − 1` shape parameters (`k` for MPS and time-slicing,
//! whose whole-GPU time is known by then), in the order of [`MIG_TERMS`] and [`MPS_TERMS`]; the
//! others keep their defaults. Memory is fitted as `a + b × batch` on the memory rows, and
//! predicts which rows run out of memory on their device.

use std::path::Path;

use super::golden_min;
use crate::backend::sim::sharing::{Context, Sharing};
use crate::catalog::{Catalog, GiProfile, GpuModel};
use crate::error::{Error, Result};
use crate::mode::SharingMode;
use crate::workload::Fitted;

/// Columns a table must have, and those it may have.
const REQUIRED: [&str; 7] = [
    "gpu",
    "mode",
    "profile",
    "co_runners",
    "thread_cap",
    "figure",
    "unit",
];
const OPTIONAL: [&str; 3] = ["workload", "batch", "source"];

/// Most rows a table may hold.
const MAX_ROWS: usize = 100_000;

/// A figure, in the unit the model works in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Figure {
    /// Seconds per unit.
    Seconds(f64),
    /// GiB used.
    Gib(f64),
    /// The job ran out of memory.
    Oom,
}

/// One row of a table, checked.
#[derive(Debug, Clone)]
pub struct Row {
    /// `FILE:LINE`.
    pub label: String,
    pub workload: Option<String>,
    pub gpu: &'static GpuModel,
    pub mode: SharingMode,
    pub profile: Option<&'static GiProfile>,
    pub co_runners: u32,
    /// Active-thread fraction, (0, 1].
    pub thread_cap: Option<f64>,
    pub batch: Option<u32>,
    pub figure: Figure,
}

impl Row {
    /// The device name: the MIG profile, or `whole GPU`.
    pub fn device(&self) -> String {
        match self.profile {
            Some(p) => format!("{} {}", self.gpu.key, p.name),
            None => format!("{} whole GPU", self.gpu.key),
        }
    }

    /// What `--hold-out` names it by: its profile, or its mode on a whole GPU.
    fn hold_key(&self) -> &str {
        self.profile.map_or(self.mode.as_str(), |p| p.name.as_str())
    }

    fn context(&self) -> Context {
        let (sm, memory_share) = match self.profile {
            Some(p) => (
                p.ci_sm(p.default_compute()),
                f64::from(p.memory_slices) / f64::from(self.gpu.memory_slices),
            ),
            None => (self.gpu.sm_count, 1.0),
        };
        let jobs = self.co_runners as usize + 1;
        let mps = matches!(self.mode, SharingMode::Mps | SharingMode::MigMps)
            .then(|| self.thread_cap.unwrap_or(1.0));
        Context {
            memory_share,
            gpu_sm: self.gpu.sm_count,
            ..Context::whole(sm, jobs, mps)
        }
    }

    /// Memory of the device's pool, GiB.
    fn capacity_gib(&self) -> f64 {
        self.profile
            .map_or_else(|| self.gpu.memory_gib(), |p| p.memory_gib)
    }
}

/// Reads and checks a table; errors name the file, line and column.
pub fn read(path: &Path) -> Result<Vec<Row>> {
    let bytes = crate::input::read(path, crate::input::SCENARIO)
        .map_err(|e| Error::Input(format!("{}: cannot read the table: {e}", path.display())))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = crate::location::not_utf8(path, e.as_bytes(), &e.utf8_error());
        Error::Input(at.to_string())
    })?;
    parse(path, &text)
}

fn at(path: &Path, line: usize, column: usize, message: String) -> Error {
    Error::Input(format!("{}:{line}:{column}: {message}", path.display()))
}

/// The fields of one CSV line with the 1-based column each starts at: comma-separated, a field
/// in double quotes may hold commas and `""` for a quote.
fn fields(path: &Path, n: usize, line: &str) -> Result<Vec<(usize, String)>> {
    let mut out = Vec::new();
    let mut chars = line.chars().enumerate().peekable();
    let mut start = 1;
    let mut field = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some((i, c)) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek().is_some_and(|&(_, n)| n == '"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.trim().is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
                field.clear();
            }
            (false, ',') => {
                out.push((start, std::mem::take(&mut field)));
                start = i + 2;
                was_quoted = false;
            }
            (false, c) if was_quoted && !c.is_whitespace() => {
                return Err(at(
                    path,
                    n,
                    i + 1,
                    format!("found '{c}' after a quoted field; a field ends at the next comma"),
                ));
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err(at(
            path,
            n,
            start,
            "a quoted field is not closed on its line".into(),
        ));
    }
    out.push((start, field));
    Ok(out
        .into_iter()
        .map(|(c, f)| (c, f.trim().to_string()))
        .collect())
}

/// Parses a table from `text` (read from `path`).
pub fn parse(path: &Path, text: &str) -> Result<Vec<Row>> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let Some((hl, header)) = lines.next() else {
        return Err(at(
            path,
            1,
            1,
            format!(
                "the table is empty: it needs a header line naming the columns {}",
                REQUIRED.join(", ")
            ),
        ));
    };
    let names = fields(path, hl, header)?;
    let mut index: Vec<(&str, usize)> = Vec::new();
    for (i, (col, name)) in names.iter().enumerate() {
        let lower = name.to_ascii_lowercase();
        let Some(known) = REQUIRED.iter().chain(&OPTIONAL).find(|k| **k == lower) else {
            return Err(at(
                path,
                hl,
                *col,
                format!(
                    "unknown column '{}'; the columns are {} and optionally {}",
                    crate::bounds::short(name),
                    REQUIRED.join(", "),
                    OPTIONAL.join(", ")
                ),
            ));
        };
        if index.iter().any(|(k, _)| k == known) {
            return Err(at(
                path,
                hl,
                *col,
                format!("column '{known}' is named twice"),
            ));
        }
        index.push((known, i));
    }
    if let Some(missing) = REQUIRED
        .iter()
        .find(|k| !index.iter().any(|(n, _)| n == *k))
    {
        return Err(at(
            path,
            hl,
            1,
            format!(
                "the header has no column '{missing}'; a table needs {}",
                REQUIRED.join(", ")
            ),
        ));
    }
    let mut rows = Vec::new();
    for (n, line) in lines {
        if rows.len() == MAX_ROWS {
            return Err(at(path, n, 1, format!("at most {MAX_ROWS} rows")));
        }
        let f = fields(path, n, line)?;
        if f.len() != names.len() {
            return Err(at(
                path,
                n,
                f.last().map_or(1, |x| x.0),
                format!(
                    "{} fields, the header names {} columns",
                    f.len(),
                    names.len()
                ),
            ));
        }
        let cell = |key: &str| index.iter().find(|(k, _)| *k == key).map(|&(_, i)| &f[i]);
        rows.push(row(path, n, &cell)?);
    }
    Ok(rows)
}

fn row<'a>(
    path: &Path,
    n: usize,
    cell: &dyn Fn(&str) -> Option<&'a (usize, String)>,
) -> Result<Row> {
    let req = |k: &str| cell(k).expect("required columns are checked");
    let bad = |k: &str, allowed: &str| {
        let (col, v) = req(k);
        at(
            path,
            n,
            *col,
            format!("{k}: found '{}', {allowed}", crate::bounds::short(v)),
        )
    };
    let (_, g) = req("gpu");
    let gpu = Catalog::builtin().gpu(g).map_err(|e| {
        let (col, _) = req("gpu");
        at(path, n, *col, format!("gpu: {e}"))
    })?;
    let mode = SharingMode::ALL
        .into_iter()
        .find(|m| m.as_str() == req("mode").1.to_ascii_lowercase())
        .ok_or_else(|| bad("mode", "expected one of full, timeslice, mps, mig, mig+mps"))?;
    let (pcol, p) = req("profile");
    let profile = match (mode.uses_mig(), p.is_empty()) {
        (true, true) => return Err(bad("profile", "a MIG row names its GPU instance (7g.80gb)")),
        (false, false) => {
            return Err(bad(
                "profile",
                "a row on a whole GPU (full, timeslice, mps) leaves it empty",
            ))
        }
        (false, true) => None,
        (true, false) => Some(
            gpu.profile(p)
                .map_err(|e| at(path, n, *pcol, format!("profile: {e}")))?,
        ),
    };
    let co_runners = req("co_runners")
        .1
        .parse::<u32>()
        .ok()
        .filter(|c| *c < crate::bounds::MPS_MAX_CLIENTS)
        .ok_or_else(|| {
            bad(
                "co_runners",
                &format!(
                    "expected the other jobs on the device at once, 0 to {}",
                    crate::bounds::MPS_MAX_CLIENTS - 1
                ),
            )
        })?;
    let mps = matches!(mode, SharingMode::Mps | SharingMode::MigMps);
    let cap = &req("thread_cap").1;
    let thread_cap = match (cap.is_empty(), mps) {
        (true, _) => None,
        (false, false) => return Err(bad("thread_cap", "only an MPS row has a thread cap")),
        (false, true) => Some(
            cap.trim_end_matches('%')
                .parse::<u32>()
                .ok()
                .filter(|p| (1..=100).contains(p))
                .map(|p| f64::from(p) / 100.0)
                .ok_or_else(|| bad("thread_cap", "expected a percentage from 1 to 100"))?,
        ),
    };
    let batch = match cell("batch") {
        None => None,
        Some((_, b)) if b.is_empty() => None,
        Some(_) => Some(
            cell("batch")
                .and_then(|(_, b)| b.parse::<u32>().ok())
                .filter(|b| (1..=1 << 20).contains(b))
                .ok_or_else(|| bad("batch", "expected a batch size from 1 to 1048576"))?,
        ),
    };
    let figure = figure(&req("figure").1, &req("unit").1).map_err(|(key, m)| bad(key, &m))?;
    Ok(Row {
        label: format!("{}:{n}", path.display()),
        workload: cell("workload")
            .map(|(_, w)| w.clone())
            .filter(|w| !w.is_empty()),
        gpu,
        mode,
        profile,
        co_runners,
        thread_cap,
        batch,
        figure,
    })
}

/// A figure and its unit, in seconds per unit or GiB; the key at fault otherwise.
fn figure(value: &str, unit: &str) -> std::result::Result<Figure, (&'static str, String)> {
    if value.eq_ignore_ascii_case("oom") {
        return Ok(Figure::Oom);
    }
    let per = |u: &str| match u {
        "s" => Some(1.0),
        "min" => Some(60.0),
        "h" => Some(3600.0),
        _ => None,
    };
    let memory = match unit {
        "MiB" => Some(1.0 / 1024.0),
        "GiB" => Some(1.0),
        "MB" => Some(1e6 / (1u64 << 30) as f64),
        "GB" => Some(1e9 / (1u64 << 30) as f64),
        _ => None,
    };
    let units = "expected s, min or h (a time per unit), THING/s, /min or /h (a rate), or MiB, GiB, MB or GB (memory)";
    let kind = match (per(unit), unit.rsplit_once('/'), memory) {
        (Some(s), _, _) => Ok((false, s)),
        (None, Some((thing, u)), None) if !thing.is_empty() => {
            per(u).map(|s| (true, s)).ok_or(("unit", units.to_string()))
        }
        (None, _, Some(g)) => return parse_number(value).map(|v| Figure::Gib(v * g)),
        _ => Err(("unit", units.to_string())),
    }?;
    let v = parse_number(value)?;
    Ok(Figure::Seconds(match kind {
        (true, s) => s / v,
        (false, s) => v * s,
    }))
}

fn parse_number(value: &str) -> std::result::Result<f64, (&'static str, String)> {
    value
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0 && *v < 1e12)
        .ok_or((
            "figure",
            "expected a number above 0 (below 1e12), or oom".to_string(),
        ))
}

/// The MIG shape parameters, in the order rows on more devices identify them: a part the GPU
/// does not speed up, a part that follows memory bandwidth, then the exponent on SMs.
pub const MIG_TERMS: [&str; 3] = ["sim.host_fraction", "sim.bandwidth_fraction", "sim.alpha"];
/// The MPS parameters, in the order more sharing contexts identify them.
pub const MPS_TERMS: [&str; 2] = ["sim.mps_exponent", "sim.mps_interference"];

/// Where each parameter is searched for.
fn range(key: &str, s: &Sharing) -> (f64, f64) {
    match key {
        "sim.host_fraction" => (0.0, 1.0 - s.bandwidth_fraction),
        "sim.bandwidth_fraction" => (0.0, 1.0 - s.host_fraction),
        "sim.mps_interference" => (0.0, 10.0),
        _ => super::ALPHA_RANGE,
    }
}

fn set(s: &mut Sharing, key: &str, v: f64) {
    match key {
        "sim.host_fraction" => s.host_fraction = v,
        "sim.bandwidth_fraction" => s.bandwidth_fraction = v,
        "sim.alpha" => s.alpha = v,
        "sim.mps_exponent" => s.mps_exponent = v,
        "sim.mps_interference" => s.mps_interference = v,
        _ => s.timeslice_efficiency = v,
    }
}

fn get(s: &Sharing, key: &str) -> f64 {
    match key {
        "sim.host_fraction" => s.host_fraction,
        "sim.bandwidth_fraction" => s.bandwidth_fraction,
        "sim.alpha" => s.alpha,
        "sim.mps_exponent" => s.mps_exponent,
        "sim.mps_interference" => s.mps_interference,
        _ => s.timeslice_efficiency,
    }
}

/// A time figure as the fit sees it.
struct Point<'r> {
    row: &'r Row,
    seconds: f64,
    ctx: Context,
}

/// The fitted model and how each point fits it.
pub struct TableFit {
    pub reference: &'static GpuModel,
    pub full_gpu_s: f64,
    pub sharing: Sharing,
    pub fitted: Vec<Fitted>,
    /// Per time row: its label, device, sharing, measured and predicted seconds per unit, and
    /// whether it was held out of the fit.
    pub points: Vec<PointFit>,
    pub memory: Option<MemoryFit>,
}

pub struct PointFit {
    pub label: String,
    pub what: String,
    pub measured_s: f64,
    pub predicted_s: f64,
    pub held_out: bool,
}

impl PointFit {
    pub fn error(&self) -> f64 {
        self.predicted_s / self.measured_s - 1.0
    }
}

/// Memory as `gib_at_zero + gib_per_batch × batch`, and the OOMs it predicts.
pub struct MemoryFit {
    pub gib_at_zero: f64,
    pub gib_per_batch: f64,
    /// Per memory row: label, batch, measured and predicted GiB.
    pub points: Vec<(String, u32, f64, f64)>,
    /// Per row with a batch and a time or `oom`: label, device, batch, predicted GiB, the
    /// device's GiB, whether it ran out of memory.
    pub oom: Vec<(String, String, u32, f64, f64, bool)>,
}

impl MemoryFit {
    pub fn at(&self, batch: u32) -> f64 {
        self.gib_at_zero + self.gib_per_batch * f64::from(batch)
    }
}

/// Fits workload `name` on `rows`; rows whose profile (or mode, on a whole GPU) is in
/// `held_out` are predicted, not fitted; `batch` picks the rows of one batch size.
pub fn fit(rows: &[Row], name: &str, held_out: &[String], batch: Option<u32>) -> Result<TableFit> {
    let mine: Vec<&Row> = rows
        .iter()
        .filter(|r| {
            r.workload
                .as_deref()
                .is_none_or(|w| w.eq_ignore_ascii_case(name))
        })
        .collect();
    if mine.is_empty() {
        let mut found: Vec<&str> = rows.iter().filter_map(|r| r.workload.as_deref()).collect();
        found.sort_unstable();
        found.dedup();
        return Err(Error::Input(format!(
            "no row of workload {name} in the table; it has: {}",
            found.join(", ")
        )));
    }
    let timed: Vec<&Row> = mine
        .iter()
        .copied()
        .filter(|r| matches!(r.figure, Figure::Seconds(_)))
        .collect();
    let mut batches: Vec<u32> = timed.iter().filter_map(|r| r.batch).collect();
    batches.sort_unstable();
    batches.dedup();
    let batch = match (batch, batches.len()) {
        (Some(b), _) if !batches.contains(&b) => {
            return Err(Error::Input(format!(
                "--batch {b}: workload {name} has no time figure at that batch size; it has {}",
                list(&batches)
            )))
        }
        (Some(b), _) => Some(b),
        (None, 0 | 1) => batches.first().copied(),
        (None, _) => {
            return Err(Error::Input(format!(
                "workload {name} has time figures at batch sizes {}: a time depends on the batch, so pick one with --batch",
                list(&batches)
            )))
        }
    };
    let is_held = |r: &Row| {
        held_out
            .iter()
            .any(|h| h.eq_ignore_ascii_case(r.hold_key()))
    };
    let points: Vec<Point> = timed
        .iter()
        .filter(|r| batch.is_none() || r.batch == batch)
        .map(|r| Point {
            row: r,
            seconds: match r.figure {
                Figure::Seconds(s) => s,
                _ => unreachable!("filtered on times"),
            },
            ctx: r.context(),
        })
        .collect();
    if let Some(h) = held_out.iter().find(|h| {
        !points
            .iter()
            .any(|p| p.row.hold_key().eq_ignore_ascii_case(h))
    }) {
        return Err(Error::Input(format!(
            "--hold-out {h}: no time figure of workload {name} is on that profile (or mode, on a whole GPU)"
        )));
    }
    let fitting: Vec<&Point> = points.iter().filter(|p| !is_held(p.row)).collect();
    let alone: Vec<&Point> = fitting
        .iter()
        .copied()
        .filter(|p| p.ctx.jobs == 1)
        .collect();
    let Some(first) = alone.first() else {
        return Err(Error::Input(format!(
            "cannot identify timing.full_gpu_s of {name}: no row of it (outside --hold-out) has co_runners = 0; add the figure of one job alone on a whole GPU or a MIG instance"
        )));
    };
    let reference = first.row.gpu;
    let ref_sm = reference.sm_count;
    let mut sharing = Sharing::from_alpha(1.0);
    let mut fitted = Vec::new();

    // 1. Alone: the whole-GPU time and as many MIG shape terms as distinct devices allow.
    let full_of = |s: &Sharing| -> f64 {
        let logs: f64 = alone
            .iter()
            .map(|p| (p.seconds * s.speed(p.ctx, ref_sm)).ln())
            .sum();
        (logs / alone.len() as f64).exp()
    };
    let devices = distinct(
        alone
            .iter()
            .map(|p| (p.ctx.device_sm, p.ctx.memory_share, p.ctx.gpu_sm)),
    );
    let mig_free: Vec<&str> = MIG_TERMS.iter().copied().take(devices - 1).collect();
    let cost_alone = |s: &Sharing| -> f64 {
        let full = full_of(s);
        alone
            .iter()
            .map(|p| (full / s.speed(p.ctx, ref_sm) / p.seconds).ln().powi(2))
            .sum()
    };
    descend(&mut sharing, &mig_free, &cost_alone);
    sharing.mps_exponent = sharing.alpha;
    let full_s = full_of(&sharing);
    let alone_labels = labels(&alone);
    fitted.push(Fitted {
        key: "timing.full_gpu_s".into(),
        value: full_s,
        how: "fitted".into(),
        jobs: alone_labels.clone(),
        rms_residual: None,
        max_residual: None,
        note: format!(
            "{} figures alone on {devices} device(s) of the {}",
            alone.len(),
            reference.name
        ),
    });
    for key in MIG_TERMS {
        fitted.push(if mig_free.contains(&key) {
            entry(
                key,
                get(&sharing, key),
                &alone_labels,
                "alone on devices of other SMs and memory slices",
            )
        } else {
            default_entry(key, get(&sharing, key), devices)
        });
    }

    // 2. MPS beside other clients.
    let mps: Vec<&Point> = fitting
        .iter()
        .copied()
        .filter(|p| p.ctx.jobs > 1 && p.ctx.mps.is_some())
        .collect();
    let contexts = distinct(
        mps.iter()
            .map(|p| (p.ctx.jobs as u32, p.ctx.mps.unwrap_or(1.0), p.ctx.device_sm)),
    );
    let mps_free: Vec<&str> = MPS_TERMS.iter().copied().take(contexts).collect();
    descend(&mut sharing, &mps_free, &|s| cost(&mps, s, full_s, ref_sm));
    for key in MPS_TERMS {
        fitted.push(if mps_free.contains(&key) {
            entry(
                key,
                get(&sharing, key),
                &labels(&mps),
                "beside other clients of one MPS server",
            )
        } else {
            default_entry(key, get(&sharing, key), contexts)
        });
    }

    // 3. Time-slicing.
    let sliced: Vec<&Point> = fitting
        .iter()
        .copied()
        .filter(|p| p.ctx.jobs > 1 && p.ctx.mps.is_none())
        .collect();
    let ts = ["sim.timeslice_efficiency"];
    let ts_free = if sliced.is_empty() { &ts[..0] } else { &ts[..] };
    descend(&mut sharing, ts_free, &|s| cost(&sliced, s, full_s, ref_sm));
    fitted.push(if sliced.is_empty() {
        default_entry(ts[0], sharing.timeslice_efficiency, 0)
    } else {
        entry(
            ts[0],
            sharing.timeslice_efficiency,
            &labels(&sliced),
            "time-sliced with other jobs",
        )
    });
    for f in &mut fitted {
        let exponent = matches!(
            f.key.as_str(),
            "sim.alpha" | "sim.mps_exponent" | "sim.timeslice_efficiency"
        );
        let (lo, hi) = super::ALPHA_RANGE;
        let edge = (hi - lo) * 1e-6;
        if exponent && f.how == "fitted" && (f.value - lo < edge || hi - f.value < edge) {
            return Err(Error::Input(format!(
                "cannot fit {}: the figures it is fitted on ({}) put it at the edge of {lo} to {hi}, where the model does not describe them",
                f.key,
                f.jobs.join(", ")
            )));
        }
    }

    let points: Vec<PointFit> = points
        .iter()
        .map(|p| PointFit {
            label: p.row.label.clone(),
            what: describe(p.row),
            measured_s: p.seconds,
            predicted_s: full_s / sharing.speed(p.ctx, ref_sm),
            held_out: is_held(p.row),
        })
        .collect();
    for f in &mut fitted {
        if f.how != "fitted" {
            continue;
        }
        let errors: Vec<f64> = points
            .iter()
            .filter(|p| f.jobs.contains(&p.label))
            .map(PointFit::error)
            .collect();
        let n = errors.len().max(1) as f64;
        f.rms_residual = Some((errors.iter().map(|e| e * e).sum::<f64>() / n).sqrt());
        f.max_residual = Some(errors.iter().fold(0.0, |m, e| m.max(e.abs())));
    }
    Ok(TableFit {
        reference,
        full_gpu_s: full_s,
        sharing,
        fitted,
        points,
        memory: memory_fit(&mine),
    })
}

/// Least squares of a line through the memory rows (a constant with one batch size), and the
/// OOM it predicts for every row with a batch.
fn memory_fit(rows: &[&Row]) -> Option<MemoryFit> {
    let pts: Vec<(String, u32, f64)> = rows
        .iter()
        .filter_map(|r| match (r.figure, r.batch) {
            (Figure::Gib(g), Some(b)) => Some((r.label.clone(), b, g)),
            _ => None,
        })
        .collect();
    if pts.is_empty() {
        return None;
    }
    let n = pts.len() as f64;
    let mx = pts.iter().map(|p| f64::from(p.1)).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.2).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (f64::from(p.1) - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (f64::from(p.1) - mx) * (p.2 - my)).sum();
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let mut fit = MemoryFit {
        gib_at_zero: my - slope * mx,
        gib_per_batch: slope,
        points: Vec::new(),
        oom: Vec::new(),
    };
    fit.points = pts
        .into_iter()
        .map(|(l, b, g)| (l, b, g, fit.at(b)))
        .collect();
    fit.oom = rows
        .iter()
        .filter_map(|r| {
            let b = r.batch?;
            let oom = match r.figure {
                Figure::Oom => true,
                Figure::Seconds(_) => false,
                Figure::Gib(_) => return None,
            };
            Some((
                r.label.clone(),
                r.device(),
                b,
                fit.at(b),
                r.capacity_gib(),
                oom,
            ))
        })
        .collect();
    Some(fit)
}

/// Squares of the log errors of `points` under `s` with `full_s` alone on the reference GPU.
fn cost(points: &[&Point], s: &Sharing, full_s: f64, ref_sm: u32) -> f64 {
    points
        .iter()
        .map(|p| (full_s / s.speed(p.ctx, ref_sm) / p.seconds).ln().powi(2))
        .sum()
}

/// Coordinate descent over `keys`, each by golden section within its range.
fn descend(s: &mut Sharing, keys: &[&str], cost: &dyn Fn(&Sharing) -> f64) {
    if keys.is_empty() {
        return;
    }
    // Terms that trade off (a host part against a bandwidth part) make a narrow valley that
    // coordinate descent walks down slowly: enough rounds, stopping when a round moves nothing.
    for _ in 0..if keys.len() == 1 { 1 } else { 20_000 } {
        let before = *s;
        for key in keys {
            let r = range(key, s);
            let v = golden_min(r, |v| {
                let mut t = *s;
                set(&mut t, key, v);
                cost(&t)
            });
            // A term at the bottom of its range is absent, not a rounding residue.
            set(s, key, if v - r.0 < 1e-9 { r.0 } else { v });
        }
        if keys
            .iter()
            .all(|k| (get(s, k) - get(&before, k)).abs() < 1e-13)
        {
            break;
        }
    }
}

fn distinct<T: PartialEq>(items: impl Iterator<Item = T>) -> usize {
    let mut seen: Vec<T> = Vec::new();
    for i in items {
        if !seen.contains(&i) {
            seen.push(i);
        }
    }
    seen.len()
}

fn labels(points: &[&Point]) -> Vec<String> {
    points.iter().map(|p| p.row.label.clone()).collect()
}

fn list(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

fn describe(r: &Row) -> String {
    let mut s = format!("{} {}", r.mode, r.device());
    if r.co_runners > 0 {
        s.push_str(&format!(" +{} co-runner(s)", r.co_runners));
    }
    if let Some(c) = r.thread_cap {
        s.push_str(&format!(" cap {:.0} %", c * 100.0));
    }
    s
}

fn entry(key: &str, value: f64, jobs: &[String], note: &str) -> Fitted {
    Fitted {
        key: key.into(),
        value,
        how: "fitted".into(),
        jobs: jobs.to_vec(),
        rms_residual: None,
        max_residual: None,
        note: format!("{} figures {note}", jobs.len()),
    }
}

fn default_entry(key: &str, value: f64, distinct: usize) -> Fitted {
    let why = match key {
        "sim.alpha" => "compute-bound work follows the share of SMs (MIGProfiler's 1g and 2g rows: docs/advise.md)",
        "sim.mps_exponent" => "alpha, an MPS client at a share c of the SMs runs as on a MIG slice of that share",
        "sim.timeslice_efficiency" => "1, context switches cost nothing",
        _ => "0, the single-exponent model's",
    };
    super::default_entry(
        key,
        value,
        &format!(
            "not identified by the table ({distinct} distinct device(s) or sharing(s) for it): the default, {why}"
        ),
    )
}

/// The fit, for the terminal: the figures, each point's error, the memory line and its OOMs.
pub fn summary(name: &str, fit: &TableFit) -> String {
    let mut out = format!(
        "{name}: fitted on a table, reference {} ({} s alone)\n",
        fit.reference.name,
        sig(fit.full_gpu_s)
    );
    for f in &fit.fitted {
        out.push_str(&format!(
            "  {:<26} {:>12}  {}\n",
            f.key,
            sig(f.value),
            f.how
        ));
    }
    out.push_str("  point                                 sharing                                 measured s  model s   error\n");
    for p in &fit.points {
        out.push_str(&format!(
            "  {:<37} {:<39} {:>10} {:>8} {:>+6.1} %{}\n",
            p.label,
            p.what,
            sig(p.measured_s),
            sig(p.predicted_s),
            p.error() * 100.0,
            if p.held_out {
                "  (held out: predicted)"
            } else {
                ""
            }
        ));
    }
    if let Some(m) = &fit.memory {
        out.push_str(&format!(
            "  memory: {:.3} GiB + {:.4} GiB per batch item\n",
            m.gib_at_zero, m.gib_per_batch
        ));
        for (label, b, measured, model) in &m.points {
            out.push_str(&format!(
                "  {label:<37} batch {b:>5}: {measured:.2} GiB, model {model:.2} GiB ({:+.1} %)\n",
                (model / measured - 1.0) * 100.0
            ));
        }
        for (label, device, b, need, has, oom) in &m.oom {
            let predicted = need > has;
            out.push_str(&format!(
                "  {label:<37} {device} batch {b}: needs {need:.2} of {has:.2} GiB: predicted {}, {} ({})\n",
                if predicted { "OOM" } else { "fits" },
                if *oom { "ran out of memory" } else { "ran" },
                if predicted == *oom { "right" } else { "WRONG" }
            ));
        }
    }
    out
}

/// Six significant digits.
fn sig(v: f64) -> String {
    format!("{}", super::round6(v))
}
