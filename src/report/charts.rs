//! Which plots a report has, and their data: per scenario a time-per-unit chart and a
//! units-per-hour-by-mode chart, and for its serving variants their output throughput, latency
//! percentiles and tokens per second per user against per GPU; per variant its VRAM over time
//! and, for MIG, its layout.

use std::collections::HashMap;

use super::load::{Damaged, InstanceRow, JobRow, Origin, Results, TracePick, VariantRow};
use super::plots::{
    slug, Bar, BarChart, Chart, Curve, CurveChart, Group, JobLine, LayoutChart, PercentileChart,
    PercentilePanel, Point, ScatterChart, SliceBox, VramChart,
};
use super::serving::ServingSummary;
use super::stats::Summary;
use super::summary::VariantSummary;
use super::sweep::SweepPoint;
use crate::catalog::Catalog;
use crate::error::Result;
use crate::layout::placed_name;
use crate::results::{Outcome, VariantStatus};

/// Points per line in the VRAM plots: enough for a 960-pixel-wide chart.
pub const TRACE_BUCKETS: u32 = 480;

/// A chart and the heading of the section it goes in.
pub type Sectioned = (String, Chart);

/// Every chart of the report, in the order the report shows them, each with the heading of the
/// section it belongs to (the main table's `scenario · GPU · backend`); and the warnings about
/// runs whose VRAM samples could not be read (their plots are left out).
pub fn charts(
    results: &Results,
    rows: &[VariantSummary],
    serving: &[ServingSummary],
    sweep: &[SweepPoint],
) -> Result<(Vec<Sectioned>, Vec<String>)> {
    let mut charts = Vec::new();
    let mut start = 0;
    while start < rows.len() {
        let heading = rows[start].heading();
        let end = start
            + rows[start..]
                .iter()
                .take_while(|r| r.heading() == heading)
                .count();
        let served: Vec<&ServingSummary> =
            serving.iter().filter(|s| s.heading() == heading).collect();
        // Servers complete no units: variants that only served are shown by the serving charts.
        let batch: Vec<&VariantSummary> = rows[start..end]
            .iter()
            .filter(|r| {
                r.time_per_unit_s.is_some() || !served.iter().any(|s| s.variant == r.variant)
            })
            .collect();
        if !batch.is_empty() {
            charts.push((heading.clone(), Chart::Bars(time_per_unit(&batch))));
            charts.push((heading.clone(), Chart::Bars(units_per_hour(&batch))));
            if batch.iter().any(|r| r.energy_per_unit_wh.is_some()) {
                charts.push((heading.clone(), Chart::Bars(energy_per_unit(&batch))));
            }
        }
        if !served.is_empty() {
            let charts_of = [
                Chart::Bars(output_throughput(&served)),
                Chart::Percentiles(latency_percentiles(&served)),
                Chart::Scatter(per_user_against_per_gpu(&served)),
            ];
            charts.extend(charts_of.map(|c| (heading.clone(), c)));
        }
        let swept: Vec<&SweepPoint> = sweep.iter().filter(|p| p.heading() == heading).collect();
        if !swept.is_empty() {
            charts.extend(
                sweep_charts(&swept)
                    .into_iter()
                    .map(|c| (heading.clone(), c)),
            );
        }
        start = end;
    }
    let picks: Vec<Pick> = rows.iter().map(|r| pick(results, r)).collect();
    let wanted: Vec<TracePick> = picks.iter().filter_map(|p| p.trace.clone()).collect();
    let (traces, warnings) = results.vram_traces(&wanted, TRACE_BUCKETS, Damaged::Skip)?;
    let mut by_pick: HashMap<usize, Vec<&super::load::Trace>> = HashMap::new();
    for t in &traces {
        by_pick.entry(t.pick).or_default().push(t);
    }
    // Traces are numbered by their place among the picks that have one.
    let mut traced = 0;
    for (row, p) in rows.iter().zip(&picks) {
        let mut lines = Vec::new();
        if p.trace.is_some() {
            lines = by_pick.remove(&traced).unwrap_or_default();
            traced += 1;
        }
        charts.push((row.heading(), Chart::Vram(vram(results, row, p, &lines))));
        if let Some(layout) = layout(results, row, p) {
            charts.push((row.heading(), Chart::Layout(layout)));
        }
    }
    Ok((charts, warnings))
}

/// `simulated` or `measured`: how a plot's title labels its results.
fn measured_or_simulated(origin: &Origin) -> &'static str {
    if origin.simulated {
        "simulated"
    } else {
        "measured"
    }
}

/// `s` or `simulated s`: the unit of time on an axis.
fn seconds(origin: &Origin) -> &'static str {
    if origin.simulated {
        "simulated s"
    } else {
        "s"
    }
}

/// `ms` or `simulated ms`.
fn milliseconds(origin: &Origin) -> &'static str {
    if origin.simulated {
        "simulated ms"
    } else {
        "ms"
    }
}

/// A bar at a figure's mean, its standard deviation as the error bar (none without the figure).
fn bar(label: &str, mode: &str, figure: Option<Summary>, oom: u32, note: Option<String>) -> Bar {
    Bar {
        label: label.to_string(),
        mode: mode.to_string(),
        value: figure.map(|s| s.mean),
        error: figure.and_then(|s| s.stddev),
        oom,
        note,
    }
}

fn time_per_unit(rows: &[&VariantSummary]) -> BarChart {
    let first = rows[0];
    BarChart {
        name: format!("time-per-unit-{}", slug(&first.scenario)),
        title: format!(
            "{}: time per {} ({})",
            first.scenario,
            first.unit,
            measured_or_simulated(&first.origin)
        ),
        x_label: "variant".into(),
        y_label: format!(
            "makespan ÷ {}s completed, {} (± sd)",
            first.unit,
            seconds(&first.origin)
        ),
        bars: rows
            .iter()
            .map(|r| bar(&r.variant, &r.mode, r.time_per_unit_s, r.jobs_oom, None))
            .collect(),
    }
}

/// The whole GPU's energy per unit, per variant, labelled simulated or with what measured it.
fn energy_per_unit(rows: &[&VariantSummary]) -> BarChart {
    let first = rows[0];
    let from = if first.origin.simulated {
        "simulated power model".to_string()
    } else {
        format!(
            "measured: {}",
            rows.iter()
                .find_map(|r| r.energy_from.as_deref())
                .unwrap_or("unknown")
        )
    };
    BarChart {
        name: format!("energy-per-unit-{}", slug(&first.scenario)),
        title: format!("{}: energy per {} ({from})", first.scenario, first.unit),
        x_label: "variant".into(),
        y_label: format!("whole GPU's Wh ÷ {}s completed (± sd)", first.unit),
        bars: rows
            .iter()
            .map(|r| bar(&r.variant, &r.mode, r.energy_per_unit_wh, r.jobs_oom, None))
            .collect(),
    }
}

/// The best variant of each mode by units per hour.
fn units_per_hour(rows: &[&VariantSummary]) -> BarChart {
    let first = rows[0];
    let mut best: Vec<&VariantSummary> = Vec::new();
    for &r in rows {
        let rate = |r: &VariantSummary| r.units_per_hour.map_or(-1.0, |s| s.mean);
        match best.iter_mut().find(|b| b.mode == r.mode) {
            Some(b) if rate(r) > rate(b) => *b = r,
            Some(_) => {}
            None => best.push(r),
        }
    }
    BarChart {
        name: format!("units-per-hour-{}", slug(&first.scenario)),
        title: format!(
            "{}: {}s per hour by mode, best variant ({})",
            first.scenario,
            first.unit,
            measured_or_simulated(&first.origin)
        ),
        x_label: "sharing mode".into(),
        y_label: format!(
            "{}s completed per {} of makespan, {}s/h (± sd)",
            first.unit,
            if first.origin.simulated {
                "simulated hour"
            } else {
                "hour"
            },
            first.unit
        ),
        bars: best
            .into_iter()
            .map(|r| {
                let note = Some(r.variant.clone());
                bar(&r.mode, &r.mode, r.units_per_hour, r.jobs_oom, note)
            })
            .collect(),
    }
}

/// Output tokens per second of each serving variant, for the whole GPU.
fn output_throughput(rows: &[&ServingSummary]) -> BarChart {
    let first = rows[0];
    BarChart {
        name: format!("output-throughput-{}", slug(&first.scenario)),
        title: format!(
            "{}: output tokens per second, whole GPU ({})",
            first.scenario,
            measured_or_simulated(&first.origin)
        ),
        x_label: "variant".into(),
        y_label: format!(
            "output tokens per {}, all servers (± sd)",
            seconds(&first.origin)
        ),
        bars: rows
            .iter()
            .map(|r| {
                let throughput = r.figure("output_throughput").filter(|s| s.mean > 0.0);
                let plural = if r.servers == 1 { "" } else { "s" };
                let note = Some(format!("{} server{plural}", r.servers));
                bar(&r.variant, &r.mode, throughput, r.servers_oom, note)
            })
            .collect(),
    }
}

/// TTFT and TPOT of each serving variant, median and p99.
fn latency_percentiles(rows: &[&ServingSummary]) -> PercentileChart {
    let first = rows[0];
    let ms = milliseconds(&first.origin);
    let panel = |name: &str, what: &str, digits: usize| PercentilePanel {
        y_label: format!("{what}, {ms}"),
        values: rows
            .iter()
            .map(|r| {
                let mean = |key: String| r.figure(&key).map(|s| s.mean);
                (
                    mean(format!("median_{name}_ms")),
                    mean(format!("p99_{name}_ms")),
                )
            })
            .collect(),
        digits,
    };
    PercentileChart {
        name: format!("latency-{}", slug(&first.scenario)),
        title: format!(
            "{}: time to first token and per output token, median and p99 ({})",
            first.scenario,
            measured_or_simulated(&first.origin)
        ),
        x_label: "variant".into(),
        groups: rows
            .iter()
            .map(|r| Group {
                label: r.variant.clone(),
                mode: r.mode.clone(),
            })
            .collect(),
        panels: vec![
            panel("ttft", "time to first token (TTFT)", 0),
            panel("tpot", "time per output token (TPOT)", 1),
        ],
    }
}

/// Tokens per second per user (1000 ÷ median TPOT in ms) against output tokens per second of
/// the whole GPU: one point per serving variant.
fn per_user_against_per_gpu(rows: &[&ServingSummary]) -> ScatterChart {
    let first = rows[0];
    let s = seconds(&first.origin);
    ScatterChart {
        name: format!("per-user-per-gpu-{}", slug(&first.scenario)),
        title: format!(
            "{}: tokens per second per user against per GPU ({})",
            first.scenario,
            measured_or_simulated(&first.origin)
        ),
        x_label: format!("output tokens per {s} per user (1000 ÷ median TPOT in ms)"),
        y_label: format!("output tokens per {s}, whole GPU"),
        points: rows
            .iter()
            .filter_map(|r| {
                let tpot = r.figure("median_tpot_ms").filter(|t| t.mean > 0.0)?;
                Some(Point {
                    label: r.variant.clone(),
                    mode: r.mode.clone(),
                    x: 1000.0 / tpot.mean,
                    y: r.figure("output_throughput")?.mean,
                })
            })
            .collect(),
    }
}

/// A sweep's charts: the Pareto plot (tokens per second per user against per GPU, a line per
/// variant through its points, as vLLM's `plot_pareto` draws them), then TTFT and TPOT against
/// the requests per second carried, with the SLO drawn.
fn sweep_charts(points: &[&SweepPoint]) -> Vec<Chart> {
    let first = points[0];
    let owned: Vec<SweepPoint> = points.iter().map(|p| (*p).clone()).collect();
    let groups = super::sweep::by_variant(&owned);
    let (s, ms) = (seconds(&first.origin), milliseconds(&first.origin));
    let curves = |x: &dyn Fn(&SweepPoint) -> Option<f64>,
                  y: &dyn Fn(&SweepPoint) -> Option<f64>| {
        groups
            .iter()
            .map(|g| Curve {
                label: g[0].variant.clone(),
                mode: g[0].mode.clone(),
                points: g.iter().filter_map(|p| Some((x(p)?, y(p)?))).collect(),
            })
            .collect::<Vec<_>>()
    };
    let mean = |key: &'static str| move |p: &SweepPoint| Some(p.figure(key)?.mean);
    let per_user = |p: &SweepPoint| {
        let tpot = p.figure("median_tpot_ms").filter(|t| t.mean > 0.0)?;
        Some(1000.0 / tpot.mean)
    };
    let slug = slug(&first.scenario);
    let what = measured_or_simulated(&first.origin);
    let footnote = format!(
        "Each point a sweep point, its figures over the point's steady window; within SLO when at least {:.0}% of its requests met every SLO.",
        first.attainment_target * 100.0
    );
    let mut charts = vec![Chart::Curves(CurveChart {
        name: format!("sweep-pareto-{slug}"),
        title: format!(
            "{}: tokens per second per user against per GPU, by load ({what})",
            first.scenario
        ),
        x_label: format!("output tokens per {s} per user (1000 ÷ median TPOT in ms)"),
        y_label: format!("output tokens per {s}, whole GPU"),
        curves: curves(&per_user, &mean("output_throughput")),
        limit: None,
        footnote: footnote.clone(),
    })];
    let (ttft, tpot, _) = first.slo_ms;
    for (key, name, limit) in [
        ("p99_ttft_ms", "p99 time to first token (TTFT)", ttft),
        ("p99_tpot_ms", "p99 time per output token (TPOT)", tpot),
    ] {
        charts.push(Chart::Curves(CurveChart {
            name: format!("sweep-{}-{slug}", &key[4..8]),
            title: format!("{}: {name} against load ({what})", first.scenario),
            x_label: format!("requests per {s} carried, whole GPU"),
            y_label: format!("{name}, {ms}"),
            curves: curves(&mean("request_throughput"), &mean(key)),
            limit: limit.map(|l| (l, format!("SLO {l} ms"))),
            footnote: footnote.clone(),
        }));
    }
    charts
}

/// The repetition a variant's VRAM plot and layout drawing show: the first repetition of the
/// latest run in which it ran.
struct Pick<'a> {
    variant: Option<&'a VariantRow>,
    jobs: Vec<&'a JobRow>,
    instances: Vec<&'a InstanceRow>,
    trace: Option<TracePick>,
}

fn pick<'a>(results: &'a Results, row: &VariantSummary) -> Pick<'a> {
    let members = results.variants.iter().filter(|v| {
        let m = &results.runs[v.run].manifest;
        v.variant == row.variant && m.scenario == row.scenario && m.origin() == row.origin
    });
    let chosen = members
        .map(|v| {
            (
                (
                    v.status == VariantStatus::Ran,
                    v.run,
                    std::cmp::Reverse(v.repetition),
                ),
                v,
            )
        })
        .max_by_key(|(k, _)| *k)
        .map(|(_, v)| v);
    let Some(v) = chosen else {
        return Pick {
            variant: None,
            jobs: Vec::new(),
            instances: Vec::new(),
            trace: None,
        };
    };
    let same = |run: usize, variant: &str, repetition: u32| {
        run == v.run && variant == v.variant && repetition == v.repetition
    };
    let mut jobs: Vec<&JobRow> = results
        .jobs
        .iter()
        .filter(|j| same(j.run, &j.variant, j.repetition))
        .collect();
    jobs.sort_by_key(|j| j.job);
    let instances = results
        .instances
        .iter()
        .filter(|i| same(i.run, &i.variant, i.repetition))
        .collect();
    let t0 = jobs
        .iter()
        .filter_map(|j| j.start_s)
        .fold(f64::INFINITY, f64::min);
    let t1 = jobs
        .iter()
        .filter_map(|j| j.end_s)
        .fold(f64::NEG_INFINITY, f64::max);
    let trace = (t1 > t0).then(|| TracePick {
        run: v.run,
        variant: v.variant.clone(),
        repetition: v.repetition,
        t0,
        t1,
    });
    Pick {
        variant: Some(v),
        jobs,
        instances,
        trace,
    }
}

fn vram(
    results: &Results,
    row: &VariantSummary,
    p: &Pick,
    traces: &[&super::load::Trace],
) -> VramChart {
    let t0 = p.trace.as_ref().map_or(0.0, |t| t.t0);
    let points = |scope: &str, id: &str| -> Vec<(f64, f64)> {
        traces
            .iter()
            .find(|t| t.scope == scope && t.id == id)
            .map(|t| t.points.clone())
            .unwrap_or_default()
    };
    let instance_of = |uuid: &str| {
        p.instances
            .iter()
            .find(|i| i.uuid == uuid && i.instance != "GPU")
            .map(|i| i.instance.clone())
    };
    let lines = p
        .jobs
        .iter()
        .filter(|j| j.start_s.is_some())
        .map(|j| {
            let pts = j
                .pid
                .map_or_else(Vec::new, |pid| points("process", &pid.to_string()));
            let mut label = format!("job {} · {}", j.job, j.workload);
            if let Some(instance) = j.instance_uuid.as_deref().and_then(instance_of) {
                label.push_str(&format!(" on {instance}"));
            }
            let oom_at = (j.outcome == Outcome::Oom).then(|| {
                let level = pts.last().map(|p| p.1).or(j.vram_peak_gib).unwrap_or(0.0);
                (j.end_s.unwrap_or(t0) - t0, level)
            });
            JobLine {
                label,
                points: pts,
                oom_at,
            }
        })
        .collect();
    let gpu_total = traces
        .iter()
        .find(|t| t.scope == "gpu")
        .map(|t| t.points.clone())
        .unwrap_or_default();
    let note = match (p.variant, &p.trace) {
        (None, _) => Some("no record of this variant".to_string()),
        (Some(v), None) => Some(format!(
            "not run: {}{}",
            v.status.as_str(),
            v.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        )),
        _ if traces.is_empty() => Some("no VRAM samples recorded".to_string()),
        _ => None,
    };
    let footnote = p
        .variant
        .map(|v| {
            format!(
                "run of {}\nrepetition {}",
                results.runs[v.run].manifest.started_at, v.repetition
            )
        })
        .unwrap_or_default();
    VramChart {
        name: format!("vram-{}-{}", slug(&row.scenario), slug(&row.variant)),
        title: format!(
            "{} · {}: VRAM per job ({})",
            row.scenario,
            row.variant,
            measured_or_simulated(&row.origin)
        ),
        mode: row.mode.clone(),
        x_label: format!("time since the variant started, {}", seconds(&row.origin)),
        lines,
        gpu_total,
        capacities: capacities(row, p),
        note,
        footnote,
    }
}

/// Each memory pool's capacity, instances of one size on one line.
fn capacities(row: &VariantSummary, p: &Pick) -> Vec<(String, f64)> {
    let mut pools: Vec<(Vec<String>, f64)> = Vec::new();
    for i in &p.instances {
        let Some(capacity) = i.capacity_gib else {
            continue;
        };
        match pools.iter_mut().find(|(_, c)| (*c - capacity).abs() < 1e-9) {
            Some((names, _)) => names.push(i.instance.clone()),
            None => pools.push((vec![i.instance.clone()], capacity)),
        }
    }
    if pools.is_empty() {
        // Runs from before the instances table: the GPU's capacity from the catalog.
        if let Ok(gpu) = Catalog::builtin().gpu(&row.origin.gpu_model) {
            pools.push((vec!["GPU".into()], gpu.memory_gib()));
        }
    }
    pools
        .into_iter()
        .map(|(names, c)| (names.join(", "), c))
        .collect()
}

fn layout(results: &Results, row: &VariantSummary, p: &Pick) -> Option<LayoutChart> {
    let v = p.variant?;
    let scenario = results.runs[v.run].scenario.as_ref()?;
    let spec = scenario
        .file
        .variants
        .iter()
        .find(|s| s.name.get_ref() == &row.variant)?;
    let layout = scenario.layout(spec)?;
    let instances = layout
        .instances
        .iter()
        .map(|i| {
            let label = placed_name(&i.profile.name, i.start);
            let sms: u32 = i.compute.iter().map(|c| i.profile.ci_sm(c)).sum();
            let mut detail = vec![format!("{sms} SMs")];
            if let Some(rec) = p.instances.iter().find(|r| r.instance.starts_with(&label)) {
                let jobs = p
                    .jobs
                    .iter()
                    .filter(|j| j.instance_uuid.as_deref() == Some(rec.uuid.as_str()))
                    .count();
                detail.push(format!("{jobs} job{}", if jobs == 1 { "" } else { "s" }));
                detail.push(format!(
                    "peak {:.1}/{:.1} GiB",
                    rec.vram_peak_gib,
                    rec.capacity_gib.unwrap_or(i.profile.memory_gib)
                ));
            }
            SliceBox {
                label: i.to_string(),
                detail: detail.join(" · "),
                memory_start: i.start,
                memory_slices: i.profile.memory_slices,
                compute_slices: i.profile.compute_slices,
            }
        })
        .collect();
    let f = layout.figures();
    Some(LayoutChart {
        name: format!("layout-{}-{}", slug(&row.scenario), slug(&row.variant)),
        title: format!(
            "{} · {}: MIG layout on {}",
            row.scenario, row.variant, layout.gpu.name
        ),
        mode: row.mode.clone(),
        memory_slices: layout.gpu.memory_slices,
        compute_slices: layout.gpu.compute_slices,
        instances,
        summary: format!(
            "unused: {} of {} compute slices, {} of {} memory slices · {} of {} SMs, {:.1} of {:.1} GiB in instances",
            f.compute_slices_unused,
            layout.gpu.compute_slices,
            f.memory_slices_unused,
            layout.gpu.memory_slices,
            f.sm_available,
            f.sm_total,
            f.memory_gib_available,
            f.memory_gib_total
        ),
    })
}
