//! `migbench advise`: simulates every sensible way to run some copies of a workload mix on one
//! GPU and ranks them.
//!
//! The candidates: the whole GPU one job at a time; time-slicing and MPS with every job at once,
//! MPS with thread percentages of `100/n`, with pinned memory limits of `1/n` of the GPU, and
//! with staggered starts; every distinct maximal MIG layout (from the layout engine) in which
//! each workload has an instance it fits, one job per instance at a time (`mig`) or all its jobs
//! at once through one MPS server per instance (`mig+mps`). Each is simulated with the
//! simulator's physics ([`engine`]). A configuration in which a job runs out of memory, or a pool
//! comes closer to full than `--headroom` allows, is listed but never advised.

pub mod engine;
mod scenario_file;
pub mod serving;

use serde::Serialize;

pub use scenario_file::scenario_toml;

use crate::catalog::GpuModel;
use crate::cli::Objective;
use crate::layout::{enumerate, EnumerateOptions, Layout};
use crate::mode::SharingMode;
use crate::workload::Workload;
use engine::{simulate, Config, Simulated};

/// Staggers tried under MPS, seconds between starts.
const STAGGERS_S: [f64; 3] = [30.0, 60.0, 120.0];

/// What to decide.
pub struct Request<'a> {
    pub gpu: &'static GpuModel,
    pub mix: Vec<&'a Workload>,
    pub copies: u32,
    pub objective: Objective,
    pub isolation_required: bool,
    pub headroom: f64,
    /// The load on every server (server workloads only).
    pub load: Option<crate::loadgen::LoadSpec>,
}

/// One configuration and what it did.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// A variant name for the scenario file.
    pub name: String,
    pub mode: SharingMode,
    /// MIG instances as `profile@start`, in slice order.
    pub layout: Vec<String>,
    pub thread_percentage: Option<u8>,
    pub pinned_gib: Option<f64>,
    pub stagger_s: f64,
    /// Per workload, its start offset and the seconds between its own starts (for `start_s`
    /// and `stagger_s` of its group in a scenario).
    pub starts: Vec<(f64, f64)>,
    /// Per workload, the instances (slots) it may use.
    pub instances: Vec<Option<Vec<usize>>>,
    /// Per server workload, the memory fraction its servers are given (`None`: its default).
    pub memory_fraction: Vec<Option<f64>>,
    pub jobs: usize,
    pub ok: usize,
    pub oom: usize,
    pub makespan_s: f64,
    pub units_per_hour: f64,
    /// The whole GPU's simulated energy per unit completed, in J (infinite with none).
    pub energy_per_unit_j: f64,
    /// Mean time from a job's earliest start to its end, finished jobs only.
    pub latency_s: f64,
    /// The fullest any memory pool got at its peak (1 = full).
    pub fullest: f64,
    pub isolation: &'static str,
    /// Why it is not advised, if it is not.
    pub rejected: Option<String>,
    /// Advised, and within the model's error of the winner ([`model_error`]): the model cannot
    /// tell it from the winner.
    pub tie: bool,
    /// What the load generator measured (model servers only).
    pub serving: Option<serving::Serving>,
}

impl Candidate {
    /// Nothing configured, nothing measured.
    fn blank() -> Candidate {
        Candidate {
            name: String::new(),
            mode: SharingMode::Full,
            layout: Vec::new(),
            thread_percentage: None,
            pinned_gib: None,
            stagger_s: 0.0,
            starts: Vec::new(),
            instances: Vec::new(),
            memory_fraction: Vec::new(),
            jobs: 0,
            ok: 0,
            oom: 0,
            makespan_s: 0.0,
            units_per_hour: 0.0,
            energy_per_unit_j: f64::INFINITY,
            latency_s: 0.0,
            fullest: 0.0,
            isolation: isolation(SharingMode::Full),
            rejected: None,
            tie: false,
            serving: None,
        }
    }

    /// The figure the objective ranks by, larger is better.
    fn score(&self, objective: Objective) -> f64 {
        let s = self.serving.as_ref();
        match objective {
            Objective::UnitsPerHour => self.units_per_hour,
            Objective::TimePerUnit => -self.latency_s,
            Objective::P99Ttft => -s.map_or(f64::INFINITY, |s| s.p99_ttft_ms),
            Objective::OutputTokensPerS => s.map_or(0.0, |s| s.output_tokens_per_s),
            Objective::EnergyPerUnit => -self.energy_per_unit_j,
        }
    }

    /// The score as ranked: a server's figures to the precision printed (0.1 ms, 1 token/s),
    /// below which the simulated load's floating-point order decides nothing.
    fn key(&self, objective: Objective) -> f64 {
        let s = self.score(objective);
        match objective {
            Objective::P99Ttft => (s * 10.0).round() / 10.0,
            Objective::OutputTokensPerS => s.round(),
            _ => s,
        }
    }

    /// Between servers equal on the objective, the other serving figure decides.
    fn second(&self, objective: Objective) -> f64 {
        match objective {
            Objective::P99Ttft => self.score(Objective::OutputTokensPerS),
            Objective::OutputTokensPerS => self.score(Objective::P99Ttft),
            _ => 0.0,
        }
    }

    pub fn objective_text(&self, objective: Objective) -> String {
        let s = self.serving.clone().unwrap_or_default();
        match objective {
            Objective::UnitsPerHour => format!("{:.1} units per hour", self.units_per_hour),
            Objective::TimePerUnit => format!("{:.0} s from submission to end", self.latency_s),
            Objective::P99Ttft => format!("p99 TTFT {:.1} ms", s.p99_ttft_ms),
            Objective::OutputTokensPerS => {
                format!("{:.0} output tokens/s", s.output_tokens_per_s)
            }
            Objective::EnergyPerUnit => format!(
                "{:.1} Wh per unit (simulated power model)",
                self.energy_per_unit_j / 3600.0
            ),
        }
    }
}

/// What a mode guarantees a job against its neighbours.
fn isolation(mode: SharingMode) -> &'static str {
    match mode {
        SharingMode::Full => "whole GPU per job",
        SharingMode::Mig => "guaranteed (MIG)",
        SharingMode::MigMps => "between instances only",
        SharingMode::Mps | SharingMode::Timeslice => "none",
    }
}

/// Every candidate, advised ones first, best first.
pub fn advise(req: &Request) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = configurations(req)
        .into_iter()
        .map(|(name, config)| {
            let sim = simulate(req.gpu, &req.mix, req.copies, &config);
            candidate(req, name, &config, &sim)
        })
        .collect();
    rank(req, &mut out);
    out
}

/// Model servers: every configuration run as a variant of one scenario on the simulated GPU
/// ([`serving`]), ranked. `keep` keeps that scenario and its run.
pub fn advise_servers(
    req: &Request,
    keep: Option<&std::path::Path>,
) -> crate::error::Result<Vec<Candidate>> {
    let load = req.load.as_ref().ok_or_else(|| {
        crate::error::Error::Input(
            "--load: model servers need a load (a file with a [load] table)".into(),
        )
    })?;
    let mut out = serving::configurations(req, load)?;
    for c in &mut out {
        c.isolation = isolation(c.mode);
    }
    rank_filter(req, &mut out);
    serving::measure(req, &mut out, keep)?;
    rank(req, &mut out);
    Ok(out)
}

fn rank_filter(req: &Request, out: &mut Vec<Candidate>) {
    out.retain(|c| {
        !req.isolation_required || matches!(c.mode, SharingMode::Full | SharingMode::Mig)
    });
}

/// Advised first, best first; ties to the simpler setup, then the emptier fullest pool. Those
/// advised within the model's error of the winner are marked ties.
fn rank(req: &Request, out: &mut Vec<Candidate>) {
    rank_filter(req, out);
    out.sort_by(|a, b| {
        a.rejected
            .is_some()
            .cmp(&b.rejected.is_some())
            .then(b.key(req.objective).total_cmp(&a.key(req.objective)))
            .then(b.second(req.objective).total_cmp(&a.second(req.objective)))
            .then(setup_steps(a.mode).cmp(&setup_steps(b.mode)))
            .then(a.fullest.total_cmp(&b.fullest))
            .then(a.name.cmp(&b.name))
    });
    let error = model_error(&req.mix);
    if let Some(best) = out.first().filter(|c| c.rejected.is_none()) {
        let w = best.score(req.objective);
        for c in out.iter_mut().skip(1).filter(|c| c.rejected.is_none()) {
            c.tie = (c.score(req.objective) - w).abs() <= error * w.abs();
        }
    }
}

/// The relative error of the sharing model's predictions, below which two configurations are
/// not told apart: the largest error on MIGProfiler's held-out rows (2 %, docs/advise.md), or
/// a larger residual of a workload's own calibration.
pub const MODEL_ERROR: f64 = 0.02;

/// The error band of a mix: [`MODEL_ERROR`], or the largest residual its calibrations record.
pub fn model_error(mix: &[&Workload]) -> f64 {
    mix.iter()
        .filter_map(|w| w.calibration.as_ref())
        .flat_map(|c| c.fitted.iter().filter_map(|f| f.max_residual))
        .fold(MODEL_ERROR, f64::max)
}

/// How much a mode changes on the GPU, for ties: none, an MPS daemon, MIG instances, both.
fn setup_steps(mode: SharingMode) -> u8 {
    match mode {
        SharingMode::Full | SharingMode::Timeslice => 0,
        SharingMode::Mps => 1,
        SharingMode::Mig => 2,
        SharingMode::MigMps => 3,
    }
}

/// Figures within this fraction of each other are a tie: the simulator's own inputs are not
/// known better (T's times are given to the second, its VRAM to the GB).
const TIE: f64 = 0.005;

/// As many copies as the most that fit at once under any mode (`plan`), at least 1, or 2 for
/// a single workload (so that sharing is a question at all), at most `max`.
pub fn default_copies(gpu: &'static GpuModel, mix: &[&Workload], headroom: f64, max: u32) -> u32 {
    let plans = crate::plan::plan(&crate::plan::PlanRequest {
        gpu,
        mix: mix.to_vec(),
        headroom,
    });
    let most = plans
        .iter()
        .map(|p| p.max_staggered.max(p.max_together))
        .max()
        .unwrap_or(1) as u32;
    let least = if mix.len() == 1 { 2 } else { 1 };
    most.clamp(least, max)
}

fn candidate(req: &Request, name: String, config: &Config, sim: &Simulated) -> Candidate {
    let makespan = sim.makespan();
    let finished: Vec<f64> = sim
        .jobs
        .iter()
        .filter(|j| !j.oom)
        .map(|j| j.end - j.earliest)
        .collect();
    let latency = if finished.is_empty() {
        f64::INFINITY
    } else {
        finished.iter().sum::<f64>() / finished.len() as f64
    };
    let rejected = if sim.oom() > 0 {
        Some(format!(
            "{} of {} jobs run out of memory",
            sim.oom(),
            sim.jobs.len()
        ))
    } else if sim.fullest > 1.0 - req.headroom + 1e-9 {
        Some(headroom_text(sim.fullest, req.headroom))
    } else {
        None
    };
    Candidate {
        name,
        mode: config.mode,
        layout: config.layout.as_ref().map_or_else(Vec::new, |l| {
            let mut gis: Vec<_> = l.instances.iter().collect();
            gis.sort_by_key(|g| g.start);
            gis.iter()
                .map(|g| crate::layout::placed_name(&g.profile.name, g.start))
                .collect()
        }),
        thread_percentage: config.thread_percentage,
        pinned_gib: config.pinned_gib,
        stagger_s: config.stagger_s,
        starts: (0..req.mix.len())
            .map(|w| {
                let first = engine::earliest(config, w, 0);
                (first, engine::earliest(config, w, 1) - first)
            })
            .collect(),
        instances: config.allowed.clone(),
        jobs: sim.jobs.len(),
        ok: sim.ok(),
        oom: sim.oom(),
        makespan_s: makespan,
        units_per_hour: if makespan > 0.0 {
            sim.ok() as f64 * 3600.0 / makespan
        } else {
            0.0
        },
        energy_per_unit_j: if sim.ok() > 0 {
            sim.energy_j / sim.ok() as f64
        } else {
            f64::INFINITY
        },
        latency_s: latency,
        memory_fraction: vec![None; req.mix.len()],
        fullest: sim.fullest,
        isolation: isolation(config.mode),
        rejected,
        tie: false,
        serving: None,
    }
}

fn headroom_text(fullest: f64, headroom: f64) -> String {
    let why = if headroom == DEFAULT_HEADROOM {
        " (by default 10 % is kept free, as vLLM keeps it: allocator fragmentation and a framework's own buffers need room a profile does not show; --headroom 0 allows it)"
    } else {
        ""
    };
    format!(
        "a pool reaches {:.0} % at its peak, above the {:.0} % that --headroom leaves{why}",
        fullest * 100.0,
        (1.0 - headroom) * 100.0
    )
}

/// Memory kept free in every pool unless `--headroom` says otherwise: vLLM's own margin
/// (`--gpu-memory-utilization` 0.9 by default, V).
pub const DEFAULT_HEADROOM: f64 = 0.1;

/// Every configuration worth simulating, named.
fn configurations<'g>(req: &Request) -> Vec<(String, Config<'g>)> {
    let n = req.copies as usize * req.mix.len();
    let all = vec![None; req.mix.len()];
    let given: Vec<usize> = (0..req.mix.len()).collect();
    let whole = |mode, stagger_s, thread_percentage, pinned_gib| Config {
        mode,
        layout: None,
        thread_percentage,
        pinned_gib,
        stagger_s,
        order: given.clone(),
        allowed: all.clone(),
    };
    let mut out = vec![(
        "full-sequential".to_string(),
        whole(SharingMode::Full, 0.0, None, None),
    )];
    if n > 1 {
        out.push((
            "timeslice-together".into(),
            whole(SharingMode::Timeslice, 0.0, None, None),
        ));
        out.push((
            "mps-together".into(),
            whole(SharingMode::Mps, 0.0, None, None),
        ));
        let pct = (100.0 / n as f64).ceil() as u8;
        out.push((
            format!("mps-threads{pct}"),
            whole(SharingMode::Mps, 0.0, Some(pct), None),
        ));
        let pinned = (req.gpu.memory_gib() / n as f64 * 100.0).floor() / 100.0;
        out.push((
            format!("mps-pinned{pinned:.0}g"),
            whole(SharingMode::Mps, 0.0, None, Some(pinned)),
        ));
        for s in STAGGERS_S {
            out.push((
                format!("mps-stagger{s:.0}s"),
                whole(SharingMode::Mps, s, None, None),
            ));
            // Which workload starts first decides whose peak meets whose: try each first.
            for (first, w) in req.mix.iter().enumerate().skip(1) {
                let order: Vec<usize> = (0..req.mix.len())
                    .map(|i| (i + req.mix.len() - first) % req.mix.len())
                    .collect();
                out.push((
                    format!("mps-stagger{s:.0}s-{}-first", w.name),
                    Config {
                        order,
                        ..whole(SharingMode::Mps, s, None, None)
                    },
                ));
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for layout in enumerate(req.gpu, &EnumerateOptions::default()) {
        let Some(allowed) = fitting_slots(&layout, &req.mix) else {
            continue;
        };
        let mut key: Vec<&str> = layout
            .instances
            .iter()
            .map(|i| i.profile.name.as_str())
            .collect();
        key.sort_unstable();
        if !seen.insert(key.join("+")) {
            continue;
        }
        let label = short_layout(&layout);
        for mode in [SharingMode::Mig, SharingMode::MigMps] {
            out.push((
                format!("{}-{label}", mode.as_str().replace('+', "-")),
                Config {
                    mode,
                    layout: Some(layout.clone()),
                    thread_percentage: None,
                    pinned_gib: None,
                    stagger_s: 0.0,
                    order: given.clone(),
                    allowed: allowed.clone(),
                },
            ));
        }
    }
    out
}

/// Per workload, the slots (compute instances in slice order) whose pool holds its peak; `None`
/// when some workload fits in none. `None` entries mean every slot fits.
fn fitting_slots(layout: &Layout, mix: &[&Workload]) -> Option<Vec<Option<Vec<usize>>>> {
    let mut gis: Vec<_> = layout.instances.iter().collect();
    gis.sort_by_key(|g| g.start);
    let pools: Vec<f64> = gis
        .iter()
        .flat_map(|g| g.compute.iter().map(|_| g.profile.memory_gib))
        .collect();
    let mut out = Vec::new();
    for w in mix {
        let fits: Vec<usize> = (0..pools.len())
            .filter(|&s| pools[s] + 1e-9 >= w.memory_curve().peak().max(w.memory.peak_gib))
            .collect();
        if fits.is_empty() {
            return None;
        }
        out.push((fits.len() < pools.len()).then_some(fits));
    }
    Some(out)
}

/// `2x3g.40gb_1g.10gb`: a layout's profiles, counted (`_` between them: names allow no `+`).
fn short_layout(layout: &Layout) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    let mut gis: Vec<_> = layout.instances.iter().collect();
    gis.sort_by(|a, b| {
        b.profile
            .compute_slices
            .cmp(&a.profile.compute_slices)
            .then(a.start.cmp(&b.start))
    });
    for g in gis {
        match counts.iter_mut().find(|(p, _)| *p == g.profile.name) {
            Some(c) => c.1 += 1,
            None => counts.push((g.profile.name.clone(), 1)),
        }
    }
    counts
        .iter()
        .map(|(p, n)| {
            if *n > 1 {
                format!("{n}x{p}")
            } else {
                p.clone()
            }
        })
        .collect::<Vec<_>>()
        .join("_")
}

/// One sentence: why the winner beats the runner-up.
pub fn explain(winner: &Candidate, runner_up: Option<&Candidate>, objective: Objective) -> String {
    let Some(r) = runner_up else {
        return format!(
            "{} is the only configuration in which every job finishes: {}.",
            winner.name,
            winner.objective_text(objective)
        );
    };
    let (wv, rv) = (winner.score(objective), r.score(objective));
    if r.rejected.is_none() && (wv - rv).abs() <= TIE * wv.abs().max(rv.abs()) {
        let (ws, rs) = (winner.second(objective), r.second(objective));
        let first = if winner.serving.is_some() && ws - rs > TIE * ws.abs().max(rs.abs()) {
            let other = match objective {
                Objective::P99Ttft => Objective::OutputTokensPerS,
                _ => Objective::P99Ttft,
            };
            format!(
                "{} is first for its {} against {}",
                winner.name,
                winner.objective_text(other),
                r.objective_text(other)
            )
        } else if setup_steps(winner.mode) != setup_steps(r.mode) {
            format!(
                "{} is first as the simpler setup ({} against {})",
                winner.name,
                setup_text(winner.mode),
                setup_text(r.mode)
            )
        } else if r.fullest - winner.fullest > TIE {
            format!(
                "{} is first for the memory it leaves free (its fullest pool peaks at {:.0} % against {:.0} %)",
                winner.name,
                winner.fullest * 100.0,
                r.fullest * 100.0
            )
        } else {
            "either will do".to_string()
        };
        return format!(
            "{} and {} tie on {} ({}): {first}.",
            winner.name,
            r.name,
            objective_name(objective),
            winner.objective_text(objective),
        );
    }
    let why = if r.rejected.is_some() {
        format!(
            "{} is ruled out because {}",
            r.name,
            r.rejected.as_deref().unwrap_or("")
        )
    } else if let (Some(ws), Some(rs)) = (&winner.serving, &r.serving) {
        format!(
            "its {} servers {} against {} there, at {:.0} output tokens/s and a p99 TPOT of {:.1} ms against {:.0} and {:.1} ms",
            ws.servers,
            serving_text(winner),
            serving_text(r),
            ws.output_tokens_per_s,
            ws.p99_tpot_ms,
            rs.output_tokens_per_s,
            rs.p99_tpot_ms
        )
    } else if winner.makespan_s < r.makespan_s {
        let at_once = |c: &Candidate| match c.mode {
            SharingMode::Full => "one at a time".to_string(),
            SharingMode::Mig | SharingMode::MigMps => {
                format!("on {} instance(s)", c.layout.len())
            }
            _ if c.stagger_s > 0.0 => format!("{:.0} s apart", c.stagger_s),
            _ => "all at once".to_string(),
        };
        format!(
            "running its {} jobs {} finishes them in {:.0} s against {:.0} s {} for {}",
            winner.jobs,
            at_once(winner),
            winner.makespan_s,
            r.makespan_s,
            at_once(r),
            r.name
        )
    } else {
        format!(
            "its jobs wait less for one another, although the last ends at {:.0} s against {:.0} s",
            winner.makespan_s, r.makespan_s
        )
    };
    let isolation = if winner.isolation != r.isolation {
        format!(
            ", with isolation {} against {}",
            winner.isolation, r.isolation
        )
    } else {
        String::new()
    };
    format!(
        "{} beats {} on {} ({} against {}): {why}{isolation}; its fullest pool peaks at {:.0} %.",
        winner.name,
        r.name,
        objective_name(objective),
        winner.objective_text(objective),
        r.objective_text(objective),
        winner.fullest * 100.0
    )
}

fn objective_name(objective: Objective) -> &'static str {
    match objective {
        Objective::UnitsPerHour => "units per hour",
        Objective::TimePerUnit => "time per unit",
        Objective::P99Ttft => "p99 time to first token",
        Objective::OutputTokensPerS => "output tokens per second",
        Objective::EnergyPerUnit => "energy per unit",
    }
}

/// How a configuration's servers share the GPU, for the explanation.
fn serving_text(c: &Candidate) -> String {
    let fraction = c
        .memory_fraction
        .iter()
        .flatten()
        .next()
        .map_or(String::new(), |f| format!(", {f} of its memory each"));
    match (c.mode, c.thread_percentage) {
        (SharingMode::Full, _) => "have the whole GPU".into(),
        (SharingMode::Mig | SharingMode::MigMps, _) => {
            format!(
                "each have an instance of their own ({})",
                c.layout.join(", ")
            )
        }
        (SharingMode::Mps, Some(p)) => format!("run at once on {p} % of the SMs each{fraction}"),
        (SharingMode::Mps, None) => format!("run at once on all the SMs{fraction}"),
        (SharingMode::Timeslice, _) => format!("take turns on the whole GPU{fraction}"),
    }
}

fn setup_text(mode: SharingMode) -> &'static str {
    match setup_steps(mode) {
        0 => "nothing to set up",
        1 => "an MPS daemon",
        2 => "MIG instances",
        _ => "MIG instances and MPS daemons",
    }
}
