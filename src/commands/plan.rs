//! `migbench plan`: how many copies of a workload fit at once under each sharing mode.

use crate::catalog::Catalog;
use crate::cli::{LayoutFormat, PlanArgs};
use crate::error::{Error, Result};
use crate::layout::{mig_parted, Layout};
use crate::output;
use crate::plan::{self, ModePlan, PlanRequest, PlannedLayout};
use crate::workload;

/// Layouts shown per MIG mode in the table; JSON carries them all.
const SHOWN_ALTERNATIVES: usize = 3;

pub fn run(args: &PlanArgs) -> Result<String> {
    let gpu = Catalog::builtin().gpu(&args.gpu)?;
    let mix = args
        .workloads
        .iter()
        .map(|w| workload::find(w))
        .collect::<Result<Vec<_>>>()?;
    let headroom = parse_fraction("--headroom", &args.headroom)?;
    let request = PlanRequest { gpu, mix, headroom };
    let plans = plan::plan(&request);
    let names: Vec<&str> = request.mix.iter().map(|w| w.name.as_str()).collect();
    match args.format.format {
        LayoutFormat::Json => return output::json(&plans),
        LayoutFormat::MigParted => return as_mig_parted(&request, &names, &plans),
        LayoutFormat::Table => {}
    }

    let copy = if names.len() == 1 {
        format!("copies of {}", names[0])
    } else {
        format!("copies of the mix {}", names.join(" + "))
    };
    let need: Vec<String> = request
        .mix
        .iter()
        .map(|w| {
            format!(
                "{} holds {} GiB, peaks at {} GiB",
                w.name,
                output::gib(w.memory.constant_gib),
                output::gib(w.memory.peak_gib)
            )
        })
        .collect();
    let mut out = format!(
        "{} ({}, {} GiB): {copy} that run at once without running out of memory{}\n{}\n",
        gpu.name,
        gpu.key,
        output::gib(gpu.memory_gib()),
        if headroom > 0.0 {
            format!(", keeping {:.0}% of every pool free", headroom * 100.0)
        } else {
            String::new()
        },
        need.join("; "),
    );
    let mut table = output::grid([
        "Mode",
        "Started together",
        "Staggered peaks",
        "Isolation",
        "Best MIG layout",
    ]);
    for p in &plans {
        table.add_row(vec![
            p.mode.to_string(),
            p.max_together.to_string(),
            p.max_staggered.to_string(),
            p.isolation.to_string(),
            p.layout
                .as_ref()
                .map(|l| l.summary.clone())
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    output::align_right(&mut table, &[1, 2]);
    out.push_str(&format!("{table}\n"));

    for p in &plans {
        if let Some(best) = &p.layout {
            out.push_str(&format!("{} best: {}\n", p.mode, describe(best)));
        }
        if let Some(staggered) = &p.layout_staggered {
            out.push_str(&format!("{} staggered: {}\n", p.mode, describe(staggered)));
        }
        if !p.alternatives.is_empty() {
            out.push_str(&format!(
                "{} also with {} layout(s):",
                p.mode,
                p.alternatives.len()
            ));
            for alt in p.alternatives.iter().take(SHOWN_ALTERNATIVES) {
                out.push_str(&format!("\n  {}", describe(alt)));
            }
            if p.alternatives.len() > SHOWN_ALTERNATIVES {
                out.push_str("\n  … (all in --format json)");
            }
            out.push('\n');
        }
        for note in &p.notes {
            out.push_str(&format!("{}: {note}\n", p.mode));
        }
    }
    Ok(out)
}

/// The best layout of each MIG mode (and the one for staggered starts, where it differs) as a
/// mig-parted file: one label each, `GPU-WORKLOADS-MODE[-staggered]`.
fn as_mig_parted(request: &PlanRequest, names: &[&str], plans: &[ModePlan]) -> Result<String> {
    let gpu = request.gpu;
    let workloads = names.join("_");
    let mut labelled = Vec::new();
    for p in plans {
        let mode = p.mode.to_string();
        let chosen = [(&p.layout, None), (&p.layout_staggered, Some("staggered"))];
        for (planned, suffix) in chosen {
            let Some(planned) = planned else { continue };
            let layout = Layout::build(gpu, &planned.layout)?;
            let mut parts = vec![gpu.key.as_str(), workloads.as_str(), mode.as_str()];
            parts.extend(suffix);
            labelled.push((mig_parted::label(&parts), layout));
        }
    }
    if labelled.is_empty() {
        return Err(Error::Input(format!(
            "no MIG layout runs a copy of {} on {}, so there is no mig-parted file to write; \
             --format table says why",
            names.join(" + "),
            gpu.key
        )));
    }
    let heading = format!(
        "The MIG layouts `migbench plan` chose for {} on the {} ({}), written by migbench {}.",
        names.join(" + "),
        gpu.name,
        gpu.key,
        crate::version::long()
    );
    Ok(mig_parted::write(&labelled, &heading))
}

/// `3g.40gb@0[ti2v-5b] 3g.40gb@4[ti2v-5b] — 1 compute slice unused, 60 SMs per copy`
fn describe(p: &PlannedLayout) -> String {
    let parts: Vec<String> = p
        .layout
        .iter()
        .zip(&p.assignment)
        .map(|(spec, jobs)| {
            if jobs.is_empty() {
                format!("{spec}[idle]")
            } else {
                format!("{spec}[{}]", jobs.join(","))
            }
        })
        .collect();
    let f = &p.figures;
    let mut waste = Vec::new();
    if f.compute_slices_unused > 0 {
        waste.push(format!(
            "{} compute slice(s) unused",
            f.compute_slices_unused
        ));
    }
    if f.memory_slices_unused > 0 {
        waste.push(format!("{} memory slice(s) unused", f.memory_slices_unused));
    }
    if waste.is_empty() {
        waste.push("no slice unused".into());
    }
    format!(
        "{} — {}, ≥{} SMs per copy",
        parts.join(" "),
        waste.join(", "),
        p.sm_per_copy
    )
}

/// Reads an option's `10%` or `0.1` as 0.1; a fraction must be in [0, 1).
pub fn parse_fraction(option: &str, text: &str) -> Result<f64> {
    let t = text.trim();
    let value = match t.strip_suffix('%') {
        Some(pct) => pct.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| {
        Error::Input(format!(
            "{option}: expected a percentage such as 10% or a fraction such as 0.1, found '{text}'"
        ))
    })?;
    if !(0.0..1.0).contains(&value) {
        return Err(Error::Input(format!(
            "{option}: must be at least 0% and below 100%, found '{text}'"
        )));
    }
    Ok(value)
}
