//! The jobs of one workload as the fit sees them: where each ran, how its device was shared at
//! each moment of its run (from the start and end of every job on the same device), and how
//! much work the sharing model says that is.

use crate::backend::sim::sharing::{Context, Sharing};
use crate::catalog::{Catalog, GpuModel};
use crate::error::{Error, Result};
use crate::mode::SharingMode;
use crate::report::load::{JobRow, Results};

/// One job of the workload, with its device's sharing over its run.
#[derive(Debug, Clone)]
pub struct Observed {
    /// `RUN_DIR:variant#repetition/job`.
    pub label: String,
    pub run: usize,
    pub variant: String,
    pub repetition: u32,
    pub ok: bool,
    pub gpu: &'static GpuModel,
    /// On a whole GPU (not a MIG instance).
    pub whole_gpu: bool,
    pub device_sm: u32,
    /// Its GPU instance's memory slices ÷ the GPU's (1 on a whole GPU).
    pub memory_share: f64,
    /// The active-thread fraction of its MPS server; `None` without MPS.
    pub mps_cap: Option<f64>,
    pub start: f64,
    pub end: f64,
    /// `(seconds, jobs on the device)` in time order, covering `[start, end]`.
    pub segments: Vec<(f64, usize)>,
    pub pid: Option<u32>,
    pub vram_peak_gib: Option<f64>,
    pub vram_constant_gib: Option<f64>,
}

impl Observed {
    pub fn duration(&self) -> f64 {
        self.end - self.start
    }

    /// Most jobs on its device at once during its run, itself included.
    pub fn max_neighbours(&self) -> usize {
        self.segments.iter().map(|s| s.1).max().unwrap_or(1)
    }

    /// Whether another job shared its device at some moment.
    pub fn shared(&self) -> bool {
        self.max_neighbours() > 1
    }

    fn speed(&self, sharing: Sharing, ref_sm: u32, jobs: usize) -> f64 {
        // Jobs of CIs that share one GI are not told apart here: the pool is the device.
        sharing.speed(
            Context {
                memory_share: self.memory_share,
                gpu_sm: self.gpu.sm_count,
                ..Context::whole(self.device_sm, jobs, self.mps_cap)
            },
            ref_sm,
        )
    }

    /// Work done over its run (seconds on the reference GPU alone) under `sharing`.
    pub fn work(&self, sharing: Sharing, ref_sm: u32) -> f64 {
        self.segments
            .iter()
            .map(|&(dt, n)| dt * self.speed(sharing, ref_sm, n))
            .sum()
    }

    /// How long `full_s` of work takes under `sharing` with its neighbours as they were (the last
    /// sharing going on past its measured end).
    pub fn predicted_duration(&self, sharing: Sharing, ref_sm: u32, full_s: f64) -> f64 {
        let (mut t, mut left) = (0.0, full_s);
        for &(dt, n) in &self.segments {
            let rate = self.speed(sharing, ref_sm, n);
            if rate * dt >= left {
                return t + left / rate;
            }
            t += dt;
            left -= rate * dt;
        }
        let last = self.segments.last().map_or(1, |s| s.1);
        t + left / self.speed(sharing, ref_sm, last)
    }
}

/// Every job of workload `name` with a start and an end, with its device's sharing.
pub fn jobs(results: &Results, name: &str) -> Result<Vec<Observed>> {
    let mine: Vec<&JobRow> = results
        .jobs
        .iter()
        .filter(|j| j.workload.eq_ignore_ascii_case(name))
        .collect();
    if mine.is_empty() {
        let mut found: Vec<&str> = results.jobs.iter().map(|j| j.workload.as_str()).collect();
        found.sort_unstable();
        found.dedup();
        return Err(Error::Input(format!(
            "no job of workload {name} in the runs; they ran: {}",
            found.join(", ")
        )));
    }
    let mut out = Vec::new();
    for j in mine {
        let (Some(start), Some(end)) = (j.start_s, j.end_s) else {
            continue;
        };
        if end <= start {
            continue;
        }
        let run = &results.runs[j.run];
        let gpu = Catalog::builtin().gpu(&run.manifest.gpu_model)?;
        // The job's own record names its mode.
        let mode = j.mode;
        let whole_gpu = matches!(
            mode,
            SharingMode::Full | SharingMode::Timeslice | SharingMode::Mps
        );
        let device = if whole_gpu {
            Some((gpu.sm_count, 1.0))
        } else {
            instance_sm(results, j, gpu)
        };
        let Some((device_sm, memory_share)) = device else {
            continue;
        };
        let mps_cap = matches!(mode, SharingMode::Mps | SharingMode::MigMps).then(|| {
            run.scenario
                .as_ref()
                .and_then(|s| {
                    s.file
                        .variants
                        .iter()
                        .find(|v| v.name.get_ref() == &j.variant)
                })
                .and_then(|v| v.mps.as_ref())
                .and_then(|m| m.get_ref().active_thread_percentage)
                .map_or(1.0, |p| f64::from(p) / 100.0)
        });
        out.push(Observed {
            label: format!(
                "{}:{}#{}/{}",
                run.dir.display(),
                j.variant,
                j.repetition,
                j.job
            ),
            run: j.run,
            variant: j.variant.clone(),
            repetition: j.repetition,
            ok: j.outcome == crate::results::Outcome::Ok,
            gpu,
            whole_gpu,
            device_sm,
            memory_share,
            mps_cap,
            start,
            end,
            segments: segments(results, j, start, end),
            pid: j.pid,
            vram_peak_gib: j.vram_peak_gib,
            vram_constant_gib: j.vram_constant_gib,
        });
    }
    Ok(out)
}

/// SMs and share of memory slices of the MIG instance a job ran on, from the `instances` table's
/// name (`3g.40gb@4`).
fn instance_sm(results: &Results, j: &JobRow, gpu: &GpuModel) -> Option<(u32, f64)> {
    let uuid = j.instance_uuid.as_deref()?;
    let instance = results.instances.iter().find(|i| {
        i.run == j.run && i.variant == j.variant && i.repetition == j.repetition && i.uuid == uuid
    })?;
    let profile = gpu.profile(instance.instance.split('@').next()?).ok()?;
    Some((
        profile.ci_sm(profile.default_compute()),
        f64::from(profile.memory_slices) / f64::from(gpu.memory_slices),
    ))
}

/// `(seconds, jobs on the device)` over `[start, end]`: every job of the same variant
/// repetition on the same device counts while it runs, whatever its outcome.
fn segments(results: &Results, j: &JobRow, start: f64, end: f64) -> Vec<(f64, usize)> {
    let others: Vec<(f64, f64)> = results
        .jobs
        .iter()
        .filter(|o| {
            o.run == j.run
                && o.variant == j.variant
                && o.repetition == j.repetition
                && o.instance_uuid == j.instance_uuid
        })
        .filter_map(|o| Some((o.start_s?, o.end_s?)))
        .collect();
    let mut cuts: Vec<f64> = others
        .iter()
        .flat_map(|&(s, e)| [s, e])
        .filter(|&t| t > start && t < end)
        .chain([start, end])
        .collect();
    cuts.sort_by(f64::total_cmp);
    cuts.dedup();
    let mut out: Vec<(f64, usize)> = Vec::new();
    for w in cuts.windows(2) {
        let mid = (w[0] + w[1]) / 2.0;
        let n = others.iter().filter(|&&(s, e)| s <= mid && mid < e).count();
        match out.last_mut() {
            Some(last) if last.1 == n => last.0 += w[1] - w[0],
            _ => out.push((w[1] - w[0], n.max(1))),
        }
    }
    out
}
