//! `migbench discover`: the NVIDIA GPUs of this machine, as NVML reports them, matched to the
//! catalog, with MIG mode (current and pending) and MIG devices.

use crate::backend::nvml;
use crate::cli::{DiscoverArgs, Format};
use crate::error::Result;
use crate::output;

pub fn run(args: &DiscoverArgs) -> Result<String> {
    let gpus = nvml::discover()?;
    if args.check_catalog {
        return super::check_catalog::run(&gpus, args.output.format);
    }
    if args.output.format == Format::Json {
        return output::json(&gpus);
    }
    let on_off = |v: Option<bool>| match v {
        Some(true) => "enabled",
        Some(false) => "disabled",
        None => "not supported",
    };
    let mut table = output::grid([
        "GPU",
        "Name",
        "Catalog",
        "UUID",
        "Memory GiB",
        "MIG",
        "Pending",
    ]);
    for g in &gpus {
        table.add_row(vec![
            g.index.to_string(),
            g.name.clone(),
            g.model.clone().unwrap_or_else(|_| "unknown".into()),
            g.uuid.clone(),
            output::gib(g.memory_gib),
            on_off(g.mig_current).into(),
            on_off(g.mig_pending).into(),
        ]);
        for m in &g.mig_devices {
            table.add_row(vec![
                String::new(),
                format!("  GI {} CI {}", m.gpu_instance_id, m.compute_instance_id),
                String::new(),
                m.uuid.clone(),
                output::gib(m.memory_gib),
                String::new(),
                String::new(),
            ]);
        }
    }
    let mut out = format!("{table}\n");
    if let Some(g) = gpus.first() {
        out.push_str(&format!(
            "driver {}, CUDA {}\n",
            g.driver.as_deref().unwrap_or("?"),
            g.cuda.as_deref().unwrap_or("?")
        ));
    }
    for g in &gpus {
        if let Err(why) = &g.model {
            out.push_str(&format!("GPU {}: {why}\n", g.index));
        }
        if g.mig_current != g.mig_pending {
            out.push_str(&format!(
                "GPU {}: a MIG mode change is pending; it needs a GPU reset\n",
                g.index
            ));
        }
    }
    Ok(out)
}
