//! `migbench layouts`: every maximal MIG layout of a GPU with its waste figures, best first.

use serde::Serialize;

use crate::catalog::{Catalog, GiProfile};
use crate::cli::{LayoutFormat, LayoutsArgs};
use crate::error::Result;
use crate::layout::{self, mig_parted, EnumerateOptions, InstanceSpec, LayoutFigures};
use crate::output;

/// One layout as `--format json` prints it.
#[derive(Serialize)]
struct LayoutRow {
    rank: usize,
    /// Instances with pinned placements, in slice order (`3g.40gb@0`).
    layout: Vec<InstanceSpec>,
    /// Profile names, largest first: also the order to create them in.
    summary: String,
    #[serde(flatten)]
    figures: LayoutFigures,
}

pub fn run(args: &LayoutsArgs) -> Result<String> {
    let gpu = Catalog::builtin().gpu(&args.gpu)?;
    let profiles = match &args.profiles {
        Some(names) => Some(
            names
                .iter()
                .map(|n| gpu.profile(n))
                .collect::<Result<Vec<&GiProfile>, _>>()?,
        ),
        None => None,
    };
    let options = EnumerateOptions {
        profiles,
        full_only: args.full_only,
    };
    let layouts = layout::enumerate(gpu, &options);
    let rows: Vec<LayoutRow> = layouts
        .iter()
        .enumerate()
        .map(|(i, l)| LayoutRow {
            rank: i + 1,
            layout: l.specs(),
            summary: l.summary(),
            figures: l.figures(),
        })
        .collect();
    match args.format.format {
        LayoutFormat::Json => return output::json(&rows),
        LayoutFormat::MigParted => {
            let labelled: Vec<(String, layout::Layout)> = layouts
                .into_iter()
                .map(|l| (mig_parted::devices_label(&l), l))
                .collect();
            let heading = format!(
                "Every maximal MIG layout of the {} ({}), best first, written by migbench {}.",
                gpu.name,
                gpu.key,
                crate::version::long()
            );
            return Ok(mig_parted::write(&labelled, &heading));
        }
        LayoutFormat::Table => {}
    }

    let mut table = output::grid([
        "#",
        "Layout (profile@start slice)",
        "Compute slices",
        "Memory slices",
        "SMs",
        "Memory GiB",
    ]);
    for r in &rows {
        let f = &r.figures;
        let specs: Vec<String> = r.layout.iter().map(ToString::to_string).collect();
        table.add_row(vec![
            r.rank.to_string(),
            specs.join(" "),
            unused(f.compute_slices_used, f.compute_slices_unused),
            unused(f.memory_slices_used, f.memory_slices_unused),
            format!("{}/{}", f.sm_available, f.sm_total),
            format!(
                "{}/{}",
                output::gib(f.memory_gib_available),
                output::gib(f.memory_gib_total)
            ),
        ]);
    }
    output::align_right(&mut table, &[0, 2, 3, 4, 5]);
    let scope = match &args.profiles {
        Some(p) => format!("profiles {}", p.join(",")),
        None => {
            let names: Vec<&str> = gpu
                .default_profiles()
                .iter()
                .map(|p| p.name.as_str())
                .collect();
            format!(
                "profiles {} (name a variant such as +me with --profiles to include it)",
                names.join(",")
            )
        }
    };
    let mut out = format!(
        "{} ({}): {} maximal layouts{} from {scope}; best first (least unused compute, then memory, then most SMs)\n{table}\n",
        gpu.name,
        gpu.key,
        rows.len(),
        if args.full_only { " using every slice" } else { "" },
    );
    out.push_str("Slices as used/total, with the unused count in brackets; SMs and GiB against the whole GPU without MIG.\n");
    if let Some(c) = gpu.caveat(None, "placements") {
        out.push_str(&format!(
            "{} placements {}: {}\n",
            c.kind.mark(),
            c.kind.label(),
            c.note
        ));
    }
    Ok(out)
}

fn unused(used: u8, unused: u8) -> String {
    let total = used + unused;
    if unused == 0 {
        format!("{used}/{total}")
    } else {
        format!("{used}/{total} ({unused} unused)")
    }
}
