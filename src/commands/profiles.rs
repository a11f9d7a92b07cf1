//! `migbench profiles`: a GPU's MIG profile table, like `nvidia-smi mig -lgip` plus placements,
//! with assumed and uncertain values marked.

use serde::Serialize;

use crate::catalog::{Catalog, Caveat, CiProfile, Engines, GiProfile, GpuModel, Variant};
use crate::cli::{Format, ProfilesArgs};
use crate::error::Result;
use crate::output;

/// One profile as `--format json` prints it.
#[derive(Serialize)]
struct ProfileRow<'a> {
    gpu: &'a str,
    id: u32,
    name: &'a str,
    aliases: &'a [String],
    media_extensions: bool,
    /// `+me`, `+gfx`, `+me.all`, `-me`; absent for a plain profile.
    #[serde(skip_serializing_if = "Variant::is_plain")]
    variant: Variant,
    instances: u8,
    memory_gib: f64,
    sm: u32,
    compute_slices: u8,
    memory_slices: u8,
    /// Start memory slices; each placement spans `memory_slices`.
    placements: &'a [u8],
    engines: Engines,
    compute_profiles: Vec<CiRow<'a>>,
    /// Assumed or uncertain values in this row.
    caveats: Vec<&'a Caveat>,
}

#[derive(Serialize)]
struct CiRow<'a> {
    id: u32,
    name: &'a str,
    compute_slices: u8,
    instances: u8,
    sm: u32,
    sm_estimated: bool,
}

pub fn run(args: &ProfilesArgs) -> Result<String> {
    let gpu = Catalog::builtin().gpu(&args.gpu)?;
    if args.format.format == Format::Json {
        let rows: Vec<ProfileRow> = gpu.profiles.iter().map(|p| row(gpu, p)).collect();
        return output::json(&rows);
    }
    Ok(render_table(gpu))
}

fn row<'a>(gpu: &'a GpuModel, p: &'a GiProfile) -> ProfileRow<'a> {
    ProfileRow {
        gpu: &gpu.key,
        id: p.id,
        name: &p.name,
        aliases: &p.aliases,
        media_extensions: p.media_extensions(),
        variant: p.variant,
        instances: p.instances,
        memory_gib: p.memory_gib,
        sm: p.sm,
        compute_slices: p.compute_slices,
        memory_slices: p.memory_slices,
        placements: &p.placements,
        engines: p.engines,
        compute_profiles: p.compute_profiles.iter().map(|c| ci_row(p, c)).collect(),
        caveats: gpu.caveats_for(&p.name).collect(),
    }
}

fn ci_row<'a>(gi: &GiProfile, ci: &'a CiProfile) -> CiRow<'a> {
    CiRow {
        id: ci.id,
        name: &ci.name,
        compute_slices: ci.compute_slices,
        instances: ci.instances,
        sm: gi.ci_sm(ci),
        sm_estimated: ci.sm.is_none() && ci.compute_slices != gi.compute_slices,
    }
}

fn render_table(gpu: &GpuModel) -> String {
    // A value followed by its caveat mark, if the table flags it.
    let marked = |profile: &str, fields: &[&str], value: String| -> String {
        match fields.iter().find_map(|f| gpu.caveat(Some(profile), f)) {
            Some(c) => format!("{value}{}", c.kind.mark()),
            None => value,
        }
    };
    let mut table = output::grid([
        "Name",
        "ID",
        "Instances",
        "Memory GiB",
        "SM",
        "CE",
        "DEC",
        "ENC",
        "JPG",
        "OFA",
        "Placements",
        "Compute instances",
    ]);
    for p in &gpu.profiles {
        let n = p.name.as_str();
        let e = p.engines;
        let engine = |field: &str, v: u8| {
            marked(n, &[&format!("engines.{field}"), "engines"], v.to_string())
        };
        let cis: Vec<String> = p
            .compute_profiles
            .iter()
            .map(|c| format!("{}×{} ({})", c.instances, c.name, c.id))
            .collect();
        table.add_row(vec![
            format!("MIG {n}"),
            p.id.to_string(),
            marked(n, &["instances"], p.instances.to_string()),
            marked(n, &["memory_gib"], output::gib(p.memory_gib)),
            marked(n, &["sm"], p.sm.to_string()),
            engine("ce", e.ce),
            engine("dec", e.dec),
            engine("enc", e.enc),
            engine("jpg", e.jpg),
            engine("ofa", e.ofa),
            marked(n, &["placements"], p.placements_text()),
            marked(n, &["compute_profiles"], cis.join(", ")),
        ]);
    }
    output::align_right(&mut table, &[1, 2, 3, 4, 5, 6, 7, 8, 9]);

    let mark_gpu = |field: &str, value: String| match gpu.caveat(None, field) {
        Some(c) => format!("{value}{}", c.kind.mark()),
        None => value,
    };
    let mut out = format!(
        "{} ({}): {} MiB, {} SMs, {} compute and {} memory slices; NVML name {}\nSource: {}\n{table}\n",
        gpu.name,
        gpu.key,
        mark_gpu("memory_mib", gpu.memory_mib.to_string()),
        mark_gpu("sm_count", gpu.sm_count.to_string()),
        gpu.compute_slices,
        gpu.memory_slices,
        mark_gpu("nvml_names", gpu.nvml_names.join(" / ")),
        gpu.source,
    );
    out.push_str("Placements are {start slices}:size in memory slices; compute instances as count×name (CI profile ID).\n");
    for c in &gpu.caveats {
        let scope = c
            .profile
            .as_deref()
            .map(|p| format!(" of {p}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "{} {} {}{scope}: {}\n",
            c.kind.mark(),
            c.kind.label(),
            c.field,
            c.note
        ));
    }
    out
}
