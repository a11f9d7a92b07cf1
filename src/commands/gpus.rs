//! `migbench gpus`: the catalog at a glance.

use serde::Serialize;

use crate::catalog::Catalog;
use crate::cli::{Format, FormatArg};
use crate::error::Result;
use crate::output;

#[derive(Serialize)]
struct GpuRow<'a> {
    key: &'a str,
    name: &'a str,
    nvml_names: &'a [String],
    /// As mig-parted's `device-filter` names GPUs (`0x2330` is its `0x233010DE`).
    pci_device_ids: &'a [String],
    memory_mib: u64,
    sm_count: u32,
    compute_slices: u8,
    memory_slices: u8,
    profiles: usize,
    /// The model whose profile table this one shares, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    profiles_from: Option<&'a str>,
    source: &'a str,
}

pub fn run(args: &FormatArg) -> Result<String> {
    let rows: Vec<GpuRow> = Catalog::builtin()
        .gpus()
        .iter()
        .map(|g| GpuRow {
            key: &g.key,
            name: &g.name,
            nvml_names: &g.nvml_names,
            pci_device_ids: &g.pci_device_ids,
            memory_mib: g.memory_mib,
            sm_count: g.sm_count,
            compute_slices: g.compute_slices,
            memory_slices: g.memory_slices,
            profiles: g.profiles.len(),
            profiles_from: g.profiles_from.as_deref(),
            source: &g.source,
        })
        .collect();
    if args.format == Format::Json {
        return output::json(&rows);
    }
    let mut table = output::grid([
        "Key",
        "GPU",
        "PCI IDs",
        "Memory MiB",
        "SMs",
        "Slices (compute/memory)",
        "Profiles",
    ]);
    for r in &rows {
        table.add_row(vec![
            r.key.to_string(),
            r.name.to_string(),
            r.pci_device_ids.join(" "),
            r.memory_mib.to_string(),
            r.sm_count.to_string(),
            format!("{}/{}", r.compute_slices, r.memory_slices),
            match r.profiles_from {
                Some(from) => format!("{} (as {from})", r.profiles),
                None => r.profiles.to_string(),
            },
        ]);
    }
    output::align_right(&mut table, &[3, 4, 5]);
    // Every model with where its table comes from (the files say so value by value).
    let sources: Vec<String> = rows
        .iter()
        .map(|r| format!("{}: {}", r.key, r.source))
        .collect();
    Ok(format!(
        "{table}\nSources (values not in a public source are marked in `migbench profiles`):\n{}\n",
        sources.join("\n")
    ))
}
