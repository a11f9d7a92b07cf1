//! `migbench advise`: every sensible configuration simulated and ranked ([`crate::advise`]).

use std::path::Path;

use serde::Serialize;

use crate::advise::{self, Candidate, Request};
use crate::catalog::Catalog;
use crate::cli::{AdviseArgs, Format, Objective};
use crate::error::{Error, Result};
use crate::output;
use crate::workload::{self, Workload, WorkloadKind};

/// Rows of the table; JSON carries every candidate.
const SHOWN: usize = 12;
/// Most copies of the mix `advise` simulates.
const MAX_COPIES: u32 = 16;

#[derive(Serialize)]
struct Advice<'a> {
    gpu: &'a str,
    workloads: Vec<&'a str>,
    copies: u32,
    objective: &'a str,
    explanation: String,
    candidates: &'a [Candidate],
}

pub fn run(args: &AdviseArgs) -> Result<String> {
    let gpu = Catalog::builtin().gpu(&args.gpu)?;
    let owned: Vec<Workload> = args
        .workloads
        .iter()
        .map(|w| load_workload(w))
        .collect::<Result<_>>()?;
    let servers = owned
        .iter()
        .filter(|w| w.kind == WorkloadKind::Server)
        .count();
    if servers > 0 && servers < owned.len() {
        return Err(Error::Input(format!(
            "--workload {}: a mix of model servers and batch workloads; advise ranks one kind at a time",
            args.workloads.join(",")
        )));
    }
    let servers = servers > 0;
    let objective = args.objective.unwrap_or(if servers {
        Objective::P99Ttft
    } else {
        Objective::UnitsPerHour
    });
    let serving_objective = matches!(objective, Objective::P99Ttft | Objective::OutputTokensPerS);
    if serving_objective != servers {
        return Err(Error::Input(if servers {
            format!(
                "--objective {}: these are model servers, which make no units of their own; use p99-ttft or output-tokens-per-s",
                objective_name(objective)
            )
        } else {
            format!(
                "--objective {}: these are batch workloads, which have no time to first token or output tokens; use units-per-hour or time-per-unit",
                objective_name(objective)
            )
        }));
    }
    let load = match (&args.load, servers) {
        (Some(path), true) => Some(advise::serving::read_load(path)?),
        (None, true) => {
            return Err(Error::Input(
                "--load: model servers are ranked under a load; give a file with a [load] table, e.g. --load scenarios/a100-qwen3.toml".into(),
            ))
        }
        (Some(path), false) => {
            return Err(Error::Input(format!(
                "--load {}: a load is for model servers; these are batch workloads",
                path.display()
            )))
        }
        (None, false) => None,
    };
    let mix: Vec<&Workload> = owned.iter().collect();
    let headroom = super::plan::parse_fraction("--headroom", &args.headroom)?;
    let copies = match args.copies {
        Some(c) if (1..=MAX_COPIES).contains(&c) => c,
        Some(c) => {
            return Err(Error::Input(format!(
                "--copies: from 1 to {MAX_COPIES}, found {c}"
            )))
        }
        // Servers preallocate a fraction of what they are given: two of one, one of each.
        None if servers => {
            if mix.len() == 1 {
                2
            } else {
                1
            }
        }
        None => advise::default_copies(gpu, &mix, headroom, MAX_COPIES),
    };
    let req = Request {
        gpu,
        mix,
        copies,
        objective,
        isolation_required: args.isolation.is_some(),
        headroom,
        load,
    };
    let ranked = if servers {
        advise::advise_servers(&req, None)?
    } else {
        advise::advise(&req)
    };
    let advised: Vec<&Candidate> = ranked.iter().filter(|c| c.rejected.is_none()).collect();
    let explanation = match advised.first() {
        Some(w) => advise::explain(w, advised.get(1).copied().or(ranked.get(advised.len())), objective),
        None => "no configuration runs every job without running out of memory: the mix does not fit this GPU".into(),
    };
    let ties: Vec<&str> = ranked
        .iter()
        .filter(|c| c.tie)
        .map(|c| c.name.as_str())
        .collect();
    let explanation = if ties.is_empty() {
        explanation
    } else {
        format!(
            "{explanation} Within the model's error ({:.1} %) of the winner, and so ties it: {}.",
            advise::model_error(&req.mix) * 100.0,
            ties.join(", ")
        )
    };
    let names: Vec<&str> = req.mix.iter().map(|w| w.name.as_str()).collect();
    let mut note = String::new();
    if let Some(path) = &args.out {
        let top: Vec<&Candidate> = advised.iter().take(3).copied().collect();
        if top.is_empty() {
            return Err(Error::Input(format!(
                "--out {}: nothing to write, no configuration was advised",
                path.display()
            )));
        }
        let name = format!("advise-{}-{}", gpu.key, names.join("-"));
        let text = advise::scenario_toml(&req, &name, &top)?;
        std::fs::write(path, text)
            .map_err(|e| Error::Harness(format!("cannot write {}: {e}", path.display())))?;
        note = format!(
            "the top {} written to {} (run it with `migbench run`)\n",
            top.len(),
            path.display()
        );
    }
    if args.format.format == Format::Json {
        return output::json(&Advice {
            gpu: &gpu.key,
            workloads: names,
            copies,
            objective: objective_name(objective),
            explanation,
            candidates: &ranked,
        });
    }
    let mut out = format!(
        "{} ({}): {} x ({}) simulated {} ways, ranked by {} (simulated figures, not measurements)\n",
        gpu.name,
        gpu.key,
        copies,
        names.join(" + "),
        ranked.len(),
        objective_name(objective)
    );
    if servers {
        out.push_str(&serving_table(&ranked));
        out.push_str(&format!("{explanation}\n{note}"));
        return Ok(out);
    }
    let mut table = output::grid([
        "#",
        "Configuration",
        "Mode",
        "OK/OOM",
        "Makespan s",
        "Units/h",
        "Wh/unit",
        "Latency s",
        "Fullest pool",
        "Isolation",
        "Advised",
    ]);
    for (i, c) in ranked.iter().take(SHOWN).enumerate() {
        table.add_row(vec![
            (i + 1).to_string(),
            c.name.clone(),
            c.mode.to_string(),
            format!("{}/{}", c.ok, c.oom),
            format!("{:.0}", c.makespan_s),
            format!("{:.1}", c.units_per_hour),
            if c.energy_per_unit_j.is_finite() {
                format!("{:.1}", c.energy_per_unit_j / 3600.0)
            } else {
                "-".into()
            },
            if c.latency_s.is_finite() {
                format!("{:.0}", c.latency_s)
            } else {
                "-".into()
            },
            format!("{:.0} %", c.fullest * 100.0),
            c.isolation.to_string(),
            match (&c.rejected, c.tie) {
                (Some(r), _) => format!("no: {r}"),
                (None, true) => "yes (a tie)".into(),
                (None, false) => "yes".into(),
            },
        ]);
    }
    output::align_right(&mut table, &[0, 4, 5, 6, 7, 8]);
    out.push_str(&format!("{table}\n"));
    if ranked.len() > SHOWN {
        out.push_str(&format!(
            "... and {} more (--format json lists them all)\n",
            ranked.len() - SHOWN
        ));
    }
    out.push_str(&format!("{explanation}\n{note}"));
    Ok(out)
}

/// The ranking of model-server configurations: what the load generator measured.
fn serving_table(ranked: &[Candidate]) -> String {
    let mut table = output::grid([
        "#",
        "Configuration",
        "Mode",
        "Servers OK",
        "p99 TTFT ms",
        "Median TTFT ms",
        "p99 TPOT ms",
        "Output tok/s",
        "Fullest pool",
        "Isolation",
        "Advised",
    ]);
    let ms = |v: Option<f64>| {
        v.filter(|v| v.is_finite())
            .map_or("-".into(), |v| format!("{v:.1}"))
    };
    for (i, c) in ranked.iter().take(SHOWN).enumerate() {
        let s = c.serving.as_ref();
        table.add_row(vec![
            (i + 1).to_string(),
            c.name.clone(),
            c.mode.to_string(),
            format!("{}/{}", c.ok, c.jobs),
            ms(s.map(|s| s.p99_ttft_ms)),
            ms(s.map(|s| s.median_ttft_ms)),
            ms(s.map(|s| s.p99_tpot_ms)),
            s.map_or("-".into(), |s| format!("{:.0}", s.output_tokens_per_s)),
            format!("{:.0} %", c.fullest * 100.0),
            c.isolation.to_string(),
            c.rejected
                .clone()
                .map_or_else(|| "yes".into(), |r| format!("no: {r}")),
        ]);
    }
    output::align_right(&mut table, &[0, 4, 5, 6, 7, 8]);
    let mut out = format!("{table}\n");
    if ranked.len() > SHOWN {
        out.push_str(&format!(
            "... and {} more (--format json lists them all)\n",
            ranked.len() - SHOWN
        ));
    }
    out
}

fn objective_name(o: Objective) -> &'static str {
    match o {
        Objective::UnitsPerHour => "units-per-hour",
        Objective::TimePerUnit => "time-per-unit",
        Objective::P99Ttft => "p99-ttft",
        Objective::OutputTokensPerS => "output-tokens-per-s",
        Objective::EnergyPerUnit => "energy-per-unit",
    }
}

/// A shipped workload by name, or a workload file (a path, or a name ending in `.toml`).
fn load_workload(arg: &str) -> Result<Workload> {
    if !arg.ends_with(".toml") && !arg.contains('/') {
        return workload::find(arg).cloned();
    }
    Workload::load(Path::new(arg)).map_err(|e| Error::Input(format!("--workload: {e}")))
}
