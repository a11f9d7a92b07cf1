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
    if let Some(s) = owned.iter().find(|w| w.kind == WorkloadKind::Server) {
        return Err(Error::Input(format!(
            "--workload {}: advise simulates batch workloads; a model server's figures come from `migbench run --sim` with a [load] table",
            s.name
        )));
    }
    if args.objective == Objective::P99Ttft {
        return Err(Error::Input(
            "--objective p99-ttft: these are batch workloads, which have no time to first token; use units-per-hour or time-per-unit".into(),
        ));
    }
    let mix: Vec<&Workload> = owned.iter().collect();
    let headroom = super::plan::parse_fraction("--headroom", &args.headroom)?;
    let copies = match args.copies {
        Some(c) if (1..=MAX_COPIES).contains(&c) => c,
        Some(c) => {
            return Err(Error::Input(format!(
                "--copies: from 1 to {MAX_COPIES}, found {c}"
            )))
        }
        None => advise::default_copies(gpu, &mix, headroom, MAX_COPIES),
    };
    let req = Request {
        gpu,
        mix,
        copies,
        objective: args.objective,
        isolation_required: args.isolation.is_some(),
        headroom,
    };
    let ranked = advise::advise(&req);
    let advised: Vec<&Candidate> = ranked.iter().filter(|c| c.rejected.is_none()).collect();
    let explanation = match advised.first() {
        Some(w) => advise::explain(w, advised.get(1).copied().or(ranked.get(advised.len())), args.objective),
        None => "no configuration runs every job without running out of memory: the mix does not fit this GPU".into(),
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
            objective: objective_name(args.objective),
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
        objective_name(args.objective)
    );
    let mut table = output::grid([
        "#",
        "Configuration",
        "Mode",
        "OK/OOM",
        "Makespan s",
        "Units/h",
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
            if c.latency_s.is_finite() {
                format!("{:.0}", c.latency_s)
            } else {
                "-".into()
            },
            format!("{:.0} %", c.fullest * 100.0),
            c.isolation.to_string(),
            c.rejected
                .clone()
                .map_or_else(|| "yes".into(), |r| format!("no: {r}")),
        ]);
    }
    output::align_right(&mut table, &[0, 4, 5, 6, 7]);
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

fn objective_name(o: Objective) -> &'static str {
    match o {
        Objective::UnitsPerHour => "units-per-hour",
        Objective::TimePerUnit => "time-per-unit",
        Objective::P99Ttft => "p99-ttft",
    }
}

/// A shipped workload by name, or a workload file (a path, or a name ending in `.toml`).
fn load_workload(arg: &str) -> Result<Workload> {
    if !arg.ends_with(".toml") && !arg.contains('/') {
        return workload::find(arg).cloned();
    }
    let path = Path::new(arg);
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Input(format!("--workload {arg}: cannot read it: {e}")))?;
    Workload::from_toml(&text).map_err(|e| Error::Input(format!("--workload {arg}: {e}")))
}
