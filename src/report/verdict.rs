//! The answer first: per scenario and GPU, which sharing mode is fastest per unit and makes the
//! most units per hour, which ran out of memory, which guarantee isolation, and how many jobs
//! ran at once without running out of memory beside what `plan` predicts — T's questions for
//! every experiment (its "max videos in parallel" table). When the same workloads ran on several
//! GPU models, the last of these also side by side across them.

use serde::{Deserialize, Serialize};

use super::load::Origin;
use super::parallel::ParallelRow;
use super::serving::ServingSummary;
use super::summary::VariantSummary;
use super::sweep::Capacity;
use super::table::{Column, Kind, Role, Table, Value};

/// A variant picked for a figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pick {
    pub variant: String,
    pub mode: String,
    /// Its mean over repetitions.
    pub value: f64,
}

/// How many jobs of one mode and workload mix ran at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AtOnce {
    pub mode: String,
    pub workloads: String,
    pub most_without_oom: Option<u32>,
    pub plan_together: Option<u32>,
    pub plan_staggered: Option<u32>,
    /// `jobs`, or `copies of the mix` ([`ParallelRow::counted_in`]).
    #[serde(default)]
    pub counted_in: String,
}

/// The verdict of one scenario on one GPU model and backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioVerdict {
    pub scenario: String,
    #[serde(flatten)]
    pub origin: Origin,
    /// What one job produces (`video`).
    pub unit: String,
    /// The lowest time per unit, and the most units per hour (absent when nothing completed).
    pub fastest: Option<Pick>,
    pub most_per_hour: Option<Pick>,
    /// The least energy per unit (Wh) and per million output tokens (kWh), among variants that
    /// completed every job (servers: without OOM), and where the figures come from.
    #[serde(default)]
    pub least_energy_per_unit: Option<Pick>,
    #[serde(default)]
    pub least_energy_per_m_output_tok: Option<Pick>,
    #[serde(default)]
    pub energy_from: Option<String>,
    /// For variants with model servers (which complete no units): the most output tokens per
    /// second, and the lowest cost per million output tokens (with a price).
    #[serde(default)]
    pub most_output_tok_s: Option<Pick>,
    #[serde(default)]
    pub cheapest_per_m_output_tok: Option<Pick>,
    /// For variants that ran a load sweep: the highest capacity within SLO per GPU.
    #[serde(default)]
    pub most_requests_per_gpu_within_slo: Option<Pick>,
    /// The currency of the cheapest's cost.
    #[serde(default)]
    pub cost_currency: Option<String>,
    /// `variant (mode): n of m jobs`, for the variants in which a job ran out of memory.
    pub out_of_memory: Vec<String>,
    /// `variant (mode)`, for the variants whose jobs the GPU isolates from each other (MIG).
    pub isolated: Vec<String>,
    pub at_once: Vec<AtOnce>,
}

/// One verdict per scenario, GPU model and backend, in the main table's order.
pub fn verdicts(
    variants: &[VariantSummary],
    serving: &[ServingSummary],
    capacity: &[Capacity],
    parallel: &[ParallelRow],
) -> Vec<ScenarioVerdict> {
    let mut out: Vec<ScenarioVerdict> = Vec::new();
    for v in variants {
        if !out
            .iter()
            .any(|s| s.scenario == v.scenario && s.origin == v.origin)
        {
            out.push(verdict(v, variants, serving, capacity, parallel));
        }
    }
    out
}

fn verdict(
    first: &VariantSummary,
    variants: &[VariantSummary],
    serving: &[ServingSummary],
    capacity: &[Capacity],
    parallel: &[ParallelRow],
) -> ScenarioVerdict {
    let rows: Vec<&VariantSummary> = variants
        .iter()
        .filter(|v| v.scenario == first.scenario && v.origin == first.origin)
        .collect();
    let served: Vec<(&str, &str, &ServingSummary)> = serving
        .iter()
        .filter(|s| s.scenario == first.scenario && s.origin == first.origin)
        .map(|s| (s.variant.as_str(), s.mode.as_str(), s))
        .collect();
    // Only a variant that completed every job can be the fastest or do the most per hour: one
    // whose jobs ran out of memory or failed finished less work, often sooner.
    let batch: Vec<(&str, &str, &VariantSummary)> = rows
        .iter()
        .filter(|v| v.jobs > 0 && v.jobs_ok == v.jobs)
        .map(|v| (v.variant.as_str(), v.mode.as_str(), *v))
        .collect();
    let swept: Vec<(&str, &str, &Capacity)> = capacity
        .iter()
        .filter(|c| c.scenario == first.scenario && c.origin == first.origin)
        .map(|c| (c.variant.as_str(), c.mode.as_str(), c))
        .collect();
    let cheapest = best(
        &served,
        |s: &ServingSummary| Some(s.figure("cost_per_million_output_tokens")?.mean),
        true,
    );
    let cost_currency = cheapest.as_ref().map(|p| {
        served
            .iter()
            .find(|s| s.0 == p.variant)
            .and_then(|s| s.2.currency.clone())
            .unwrap_or_else(|| super::cost::UNKNOWN_CURRENCY.into())
    });
    let serving_figure = |key: &'static str, lowest: bool| {
        best(
            &served,
            |s: &ServingSummary| Some(s.figure(key)?.mean),
            lowest,
        )
    };
    // Servers complete no units: the variants that measured requests, for energy per token.
    let serving_variants: Vec<(&str, &str, &VariantSummary)> = rows
        .iter()
        .filter(|v| v.energy_per_kilotoken_j.is_some() && v.jobs_oom == 0)
        .map(|v| (v.variant.as_str(), v.mode.as_str(), *v))
        .collect();
    let names = |keep: fn(&VariantSummary) -> bool| -> Vec<&VariantSummary> {
        rows.iter().copied().filter(|v| keep(v)).collect()
    };
    let names_in = format!("{}/", first.scenario);
    ScenarioVerdict {
        scenario: first.scenario.clone(),
        origin: first.origin.clone(),
        unit: first.unit.clone(),
        fastest: best(&batch, |v| Some(v.time_per_unit_s?.mean), true),
        most_per_hour: best(&batch, |v| Some(v.units_per_hour?.mean), false),
        least_energy_per_unit: best(&batch, |v| Some(v.energy_per_unit_wh?.mean), true),
        least_energy_per_m_output_tok: best(
            &serving_variants,
            // J per 1,000 tokens → kWh per million: × 1000 / 3.6e6.
            |v| Some(v.energy_per_kilotoken_j?.mean / 3600.0),
            true,
        ),
        energy_from: rows.iter().find_map(|v| v.energy_from.clone()),
        most_output_tok_s: serving_figure("output_throughput", false),
        cheapest_per_m_output_tok: cheapest,
        most_requests_per_gpu_within_slo: best(&swept, Capacity::per_gpu, false),
        cost_currency,
        out_of_memory: names(|v| v.jobs_oom > 0)
            .iter()
            .map(|v| {
                format!(
                    "{} ({}): {} of {} jobs",
                    v.variant, v.mode, v.jobs_oom, v.jobs
                )
            })
            .collect(),
        // Isolation a variant guarantees only if it ran: an infeasible layout guarantees nothing.
        isolated: names(|v| {
            crate::report::summary::parse_mode(&v.mode).is_some_and(|m| m.uses_mig())
                && v.status != "infeasible"
                && v.jobs_ok > 0
        })
        .iter()
        .map(|v| format!("{} ({}): {}", v.variant, v.mode, v.isolation))
        .collect(),
        at_once: parallel
            .iter()
            .filter(|p| {
                p.origin == first.origin && p.variants.iter().any(|n| n.starts_with(&names_in))
            })
            .map(|p| AtOnce {
                mode: p.mode.clone(),
                workloads: p.workloads.clone(),
                most_without_oom: p.most_without_oom,
                plan_together: p.plan_together,
                plan_staggered: p.plan_staggered,
                counted_in: p.counted_in.clone(),
            })
            .collect(),
    }
}

/// The variant of `rows` (variant, mode, figures) with the lowest or highest `figure`; the first
/// of equals.
fn best<T>(
    rows: &[(&str, &str, &T)],
    figure: impl Fn(&T) -> Option<f64>,
    lowest: bool,
) -> Option<Pick> {
    let mut found: Option<(&str, &str, f64)> = None;
    for &(variant, mode, r) in rows {
        let Some(x) = figure(r).filter(|x| x.is_finite()) else {
            continue;
        };
        let better = match found {
            None => true,
            Some((.., y)) if lowest => x < y,
            Some((.., y)) => x > y,
        };
        if better {
            found = Some((variant, mode, x));
        }
    }
    found.map(|(variant, mode, value)| Pick {
        variant: variant.into(),
        mode: mode.into(),
        value,
    })
}

/// `3 (plan 2 together, 3 staggered)`; `-` where nothing ran without running out of memory.
fn at_once_text(n: Option<u32>, together: Option<u32>, staggered: Option<u32>) -> String {
    let ran = n.map_or("-".to_string(), |n| n.to_string());
    match (together, staggered) {
        (Some(t), Some(s)) if t == s => format!("{ran} (plan {t})"),
        (Some(t), Some(s)) => format!("{ran} (plan {t} together, {s} staggered)"),
        _ => format!("{ran} (no plan)"),
    }
}

/// The verdict as a table: grouped like the main table, one row per question.
pub fn table(verdicts: &[ScenarioVerdict]) -> Table {
    use Kind::Text;
    use Role::*;
    let mut rows = Vec::new();
    for v in verdicts {
        let unit = &v.unit;
        let picked = |p: &Option<Pick>, what: &str, digits: usize| {
            p.as_ref()
                .map_or("no variant completed every job".into(), |p| {
                    format!("{} ({}): {:.digits$} {what}", p.variant, p.mode, p.value)
                })
        };
        let list = |items: &[String], none: &str| {
            if items.is_empty() {
                none.to_string()
            } else {
                items.join("; ")
            }
        };
        let several_mixes = v
            .at_once
            .iter()
            .any(|a| a.workloads != v.at_once[0].workloads);
        let at_once: Vec<String> = v
            .at_once
            .iter()
            .map(|a| {
                let mut what = if several_mixes {
                    format!("{}, {}", a.mode, a.workloads)
                } else {
                    a.mode.clone()
                };
                if a.counted_in != "jobs" && !a.counted_in.is_empty() {
                    what.push_str(&format!(" (in {})", a.counted_in));
                }
                format!(
                    "{what}: {}",
                    at_once_text(a.most_without_oom, a.plan_together, a.plan_staggered)
                )
            })
            .collect();
        let mut answers = Vec::new();
        // Servers complete no units: a scenario that only served is judged by its tokens.
        let served = v.most_output_tok_s.is_some() || v.most_requests_per_gpu_within_slo.is_some();
        if v.fastest.is_some() || !served {
            answers.push((
                format!("Fastest, s per {unit}"),
                picked(&v.fastest, &format!("s per {unit}"), 1),
            ));
            answers.push((
                format!("Most {unit}s per hour"),
                picked(&v.most_per_hour, &format!("{unit}s per h"), 1),
            ));
        }
        let energy_from = v.energy_from.as_deref().unwrap_or("unknown");
        if v.least_energy_per_unit.is_some() {
            answers.push((
                format!("Least energy per {unit}"),
                picked(
                    &v.least_energy_per_unit,
                    &format!("Wh per {unit} ({energy_from})"),
                    1,
                ),
            ));
        }
        if v.least_energy_per_m_output_tok.is_some() {
            answers.push((
                "Least energy per M output tok".into(),
                picked(
                    &v.least_energy_per_m_output_tok,
                    &format!("kWh per M output tok ({energy_from})"),
                    3,
                ),
            ));
        }
        if v.most_output_tok_s.is_some() {
            answers.push((
                "Most output tok/s".into(),
                picked(&v.most_output_tok_s, "output tok/s", 0),
            ));
        }
        if v.most_requests_per_gpu_within_slo.is_some() {
            answers.push((
                "Most requests/s per GPU within SLO".into(),
                picked(&v.most_requests_per_gpu_within_slo, "req/s per GPU", 2),
            ));
        }
        if v.cheapest_per_m_output_tok.is_some() {
            answers.push((
                "Cheapest per M output tok".into(),
                picked(
                    &v.cheapest_per_m_output_tok,
                    &format!(
                        "{} per M output tok",
                        v.cost_currency.as_deref().unwrap_or_default()
                    ),
                    2,
                ),
            ));
        }
        answers.extend([
            ("Ran out of memory".into(), list(&v.out_of_memory, "none")),
            (
                "Isolation guaranteed".into(),
                list(
                    &v.isolated,
                    "none: no MIG variant (MPS and time-slicing share memory and SMs)",
                ),
            ),
            (
                "Most at once without OOM".into(),
                list(&at_once, "no job ran"),
            ),
        ]);
        for (question, answer) in answers {
            rows.push(vec![
                Value::Text(v.scenario.clone()),
                Value::Text(v.origin.gpu.clone()),
                Value::Text(v.origin.provenance()),
                Value::Text(question),
                Value::Text(answer),
            ]);
        }
    }
    Table {
        name: "verdict",
        title: "Verdict".into(),
        columns: vec![
            Column::new("scenario", "Scenario", Text, Group),
            Column::new("gpu", "GPU", Text, Group),
            Column::new("backend", "Backend", Text, Group),
            Column::new("question", "Question", Text, Brief),
            Column::new("answer", "Answer", Text, Brief),
        ],
        rows,
        notes: vec![
            "Fastest: the lowest makespan ÷ units completed, mean over repetitions; most per hour: units completed per hour of makespan on one GPU.".into(),
            "Least energy: the whole GPU's energy over the jobs ÷ units completed (or per million output tokens), mean over repetitions, among variants that completed every job (servers: without OOM); measured by the GPU's energy counter, or under --sim modelled from the catalog's board and idle power.".into(),
            "Most at once without OOM: the most jobs running at the same moment in a repetition in which none ran out of memory, beside what `migbench plan` predicts when every job may peak at once (together) or starts are staggered.".into(),
        ],
        terminal: true,
    }
}

/// How many ran at once without running out of memory, side by side across GPU models: one row
/// per backend, workload mix and mode that ran on at least two GPU models, one column per GPU
/// model. `None` when no workload mix ran on two.
pub fn across_gpus(parallel: &[ParallelRow]) -> Option<Table> {
    use Kind::Text;
    use Role::*;
    // The rows that some other GPU model also ran (same backend kind and workloads).
    let shared: Vec<&ParallelRow> = parallel
        .iter()
        .filter(|p| {
            parallel.iter().any(|q| {
                q.origin.gpu_model != p.origin.gpu_model
                    && q.origin.simulated == p.origin.simulated
                    && q.workloads == p.workloads
            })
        })
        .collect();
    if shared.is_empty() {
        return None;
    }
    let mut gpus: Vec<(&str, &str)> = Vec::new();
    for p in &shared {
        let g = (p.origin.gpu_model.as_str(), p.origin.gpu.as_str());
        if !gpus.contains(&g) {
            gpus.push(g);
        }
    }
    gpus.sort();
    let mut keys: Vec<(bool, &str, &str)> = shared
        .iter()
        .map(|p| (p.origin.simulated, p.workloads.as_str(), p.mode.as_str()))
        .collect();
    keys.sort();
    keys.dedup();
    let rows = keys
        .iter()
        .map(|&(simulated, workloads, mode)| {
            let mut cells = vec![
                Value::Text(if simulated { "simulated" } else { "measured" }.into()),
                Value::Text(workloads.into()),
                Value::Text(mode.into()),
            ];
            for (model, _) in &gpus {
                let row = shared.iter().find(|p| {
                    p.origin.simulated == simulated
                        && p.workloads == workloads
                        && p.mode == mode
                        && p.origin.gpu_model == *model
                });
                cells.push(Value::Text(row.map_or("not run".into(), |p| {
                    at_once_text(p.most_without_oom, p.plan_together, p.plan_staggered)
                })));
            }
            cells
        })
        .collect();
    let mut columns = vec![
        Column::new("results", "Results", Text, Group),
        Column::new("workloads", "Workloads", Text, Brief),
        Column::new("mode", "Mode", Kind::Mode, Brief),
    ];
    for (model, name) in &gpus {
        columns.push(Column::named(
            format!("at_once_{}", model.replace('-', "_")),
            name.to_string(),
            Text,
            Brief,
        ));
    }
    Some(Table {
        name: "across_gpus",
        title: "Across GPUs: most at once without OOM".into(),
        columns,
        rows,
        notes: vec![
            "Per workload mix and mode, on each GPU model: the most jobs that ran at once without running out of memory, and in brackets what `migbench plan` predicts (together, staggered). Only mixes run on at least two GPU models are shown.".into(),
        ],
        terminal: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(model: &str) -> Origin {
        Origin {
            gpu_model: model.into(),
            gpu: model.to_uppercase(),
            backend: "sim".into(),
            simulated: true,
        }
    }

    fn variant(name: &str, mode: &str, per_unit: Option<f64>, oom: u32) -> VariantSummary {
        VariantSummary {
            origin: origin("h100-80gb"),
            ..crate::report::summary::example(name, mode, per_unit, oom)
        }
    }

    fn at_once(model: &str, mode: &str, n: u32, plan: (u32, u32)) -> ParallelRow {
        ParallelRow {
            origin: origin(model),
            mode: mode.into(),
            workloads: "ti2v-5b".into(),
            most_without_oom: Some(n),
            fewest_with_oom: None,
            plan_together: Some(plan.0),
            plan_staggered: Some(plan.1),
            counted_in: "jobs".into(),
            verdict: String::new(),
            variants: vec![format!("s/{mode}")],
        }
    }

    #[test]
    fn the_verdict_picks_the_fastest_the_most_per_hour_the_ooms_and_the_isolated() {
        let rows = [
            variant("full-sequential", "full", Some(242.0), 0),
            variant("mps-together", "mps", Some(248.0), 1),
            variant("mps-staggered", "mps", Some(185.0), 0),
            variant("mig-2x3g", "mig", Some(273.0), 0),
        ];
        let parallel = [
            at_once("h100-80gb", "mps", 3, (2, 3)),
            at_once("h100-80gb", "mig", 2, (2, 2)),
        ];
        let v = &verdicts(&rows, &[], &[], &parallel)[0];
        assert_eq!(v.fastest.as_ref().unwrap().variant, "mps-staggered");
        assert_eq!(v.most_per_hour.as_ref().unwrap().variant, "mps-staggered");
        assert_eq!(v.out_of_memory, ["mps-together (mps): 1 of 3 jobs"]);
        assert_eq!(v.isolated, ["mig-2x3g (mig): guaranteed (MIG)"]);
        let t = table(&verdicts(&rows, &[], &[], &parallel));
        let answer = |q: &str| {
            let row = t
                .rows
                .iter()
                .find(|r| r[3] == Value::Text(q.into()))
                .unwrap();
            t.display(4, &row[4])
        };
        assert_eq!(
            answer("Fastest, s per video"),
            "mps-staggered (mps): 185.0 s per video"
        );
        assert_eq!(
            answer("Most at once without OOM"),
            "mps: 3 (plan 2 together, 3 staggered); mig: 2 (plan 2)"
        );
    }

    #[test]
    fn a_variant_whose_jobs_ran_out_of_memory_is_never_the_fastest_nor_an_infeasible_one_isolated()
    {
        // h100-2x-s2v: mps-together finished its one surviving job soonest.
        let mut infeasible = variant("mig-7x1g", "mig", None, 0);
        infeasible.status = "infeasible".into();
        infeasible.jobs_ok = 0;
        let rows = [
            variant("full-sequential", "full", Some(490.0), 0),
            variant("mps-together", "mps", Some(245.0), 1),
            variant("mig-2x3g", "mig", Some(300.0), 0),
            infeasible,
        ];
        let v = &verdicts(&rows, &[], &[], &[])[0];
        assert_eq!(v.fastest.as_ref().unwrap().variant, "mig-2x3g");
        assert_eq!(v.most_per_hour.as_ref().unwrap().variant, "mig-2x3g");
        assert_eq!(v.isolated, ["mig-2x3g (mig): guaranteed (MIG)"]);
        // Nothing completed every job: the verdict says so.
        let v = &verdicts(&rows[1..2], &[], &[], &[])[0];
        assert!(v.fastest.is_none());
        let t = table(&verdicts(&rows[1..2], &[], &[], &[]));
        assert!(t
            .rows
            .iter()
            .any(|r| r[4] == Value::Text("no variant completed every job".into())));
    }

    #[test]
    fn gpus_are_side_by_side_only_for_workloads_run_on_several() {
        assert!(across_gpus(&[at_once("h100-80gb", "mig", 2, (2, 2))]).is_none());
        let t = across_gpus(&[
            at_once("b200", "mig", 4, (4, 4)),
            at_once("h100-80gb", "mig", 2, (2, 2)),
            at_once("h100-80gb", "mps", 3, (2, 3)),
        ])
        .unwrap();
        let headers: Vec<&str> = t.columns.iter().map(|c| &*c.header).collect();
        assert_eq!(
            headers,
            ["Results", "Workloads", "Mode", "B200", "H100-80GB"]
        );
        let cells: Vec<Vec<String>> = t
            .rows
            .iter()
            .map(|r| (0..r.len()).map(|c| t.display(c, &r[c])).collect())
            .collect();
        assert_eq!(cells[0][2..], ["mig", "4 (plan 4)", "2 (plan 2)"]);
        assert_eq!(
            cells[1][2..],
            ["mps", "not run", "3 (plan 2 together, 3 staggered)"]
        );
    }
}
