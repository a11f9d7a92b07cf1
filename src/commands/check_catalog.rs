//! `migbench discover --check-catalog`: each GPU's profile tables as its driver lists them,
//! against the catalog ([`crate::backend::nvml::catalog_check`]). Exit status 0 when every GPU
//! checked matches, 1 when something differs (what differs on standard output, the verdict on
//! standard error), 2 when no GPU could be checked.

use serde::Serialize;

use crate::backend::nvml::{catalog_check, FoundGpu};
use crate::catalog::Catalog;
use crate::cli::Format;
use crate::error::{Error, Result};
use crate::output;

/// One GPU's check.
#[derive(Debug, Serialize)]
struct Checked {
    gpu: u32,
    name: String,
    /// The catalog key the GPU matched, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<String>,
    /// Why the GPU was not compared, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    not_checked: Option<String>,
    differences: Vec<catalog_check::Difference>,
    /// Profiles the driver names otherwise, accepted as the catalog's (same ID, slices, size).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    driver_names: Vec<catalog_check::DriverName>,
}

pub fn run(gpus: &[FoundGpu], format: Format) -> Result<String> {
    let checks = gpus.iter().map(check).collect::<Result<Vec<_>>>()?;
    let text = match format {
        Format::Json => output::json(&checks)? + "\n",
        Format::Table => render(&checks),
    };
    let compared = checks.iter().filter(|c| c.not_checked.is_none()).count();
    let differing: Vec<String> = checks
        .iter()
        .filter(|c| !c.differences.is_empty())
        .map(|c| format!("GPU {} ({} difference(s))", c.gpu, c.differences.len()))
        .collect();
    if !differing.is_empty() {
        print!("{text}");
        return Err(Error::CatalogDiffers(format!(
            "the driver's MIG profile tables differ from the catalog on {}",
            differing.join(", ")
        )));
    }
    if compared == 0 {
        let why: Vec<String> = checks
            .iter()
            .map(|c| format!("GPU {}: {}", c.gpu, c.not_checked.as_deref().unwrap_or("")))
            .collect();
        return Err(Error::Input(if why.is_empty() {
            "no NVIDIA GPU found to check against the catalog".into()
        } else {
            format!(
                "no GPU could be checked against the catalog: {}",
                why.join("; ")
            )
        }));
    }
    Ok(text)
}

fn check(gpu: &FoundGpu) -> Result<Checked> {
    let mut checked = Checked {
        gpu: gpu.index,
        name: gpu.name.clone(),
        model: gpu.model.as_ref().ok().cloned(),
        not_checked: None,
        differences: Vec::new(),
        driver_names: Vec::new(),
    };
    match (&gpu.model, gpu.mig_current) {
        (Err(why), _) => {
            // The catalog lacking a GPU is a difference, not a reason to skip it silently.
            checked.differences.push(catalog_check::Difference {
                profile: "-".into(),
                field: "model".into(),
                catalog: "no such GPU".into(),
                driver: gpu.name.clone(),
                caveat: Some(why.clone()),
            });
        }
        (Ok(_), None) => checked.not_checked = Some("it has no MIG".into()),
        (Ok(_), Some(false)) => {
            checked.not_checked = Some(format!(
                "MIG mode is off, and nvidia-smi lists profiles only with it on \
                 (`sudo nvidia-smi -i {} -mig 1`)",
                gpu.index
            ))
        }
        (Ok(key), Some(true)) => {
            let model = Catalog::builtin().gpu(key)?;
            let found = catalog_check::check_gpu(gpu.index, model)?;
            checked.differences = found.differences;
            checked.driver_names = found.names;
        }
    }
    Ok(checked)
}

fn render(checks: &[Checked]) -> String {
    let mut out = String::new();
    let mut table = output::grid([
        "GPU",
        "Profile",
        "Field",
        "Catalog",
        "Driver",
        "Catalog's caveat",
    ]);
    for c in checks {
        for d in &c.differences {
            table.add_row(vec![
                c.gpu.to_string(),
                d.profile.clone(),
                d.field.clone(),
                d.catalog.clone(),
                d.driver.clone(),
                d.caveat.clone().unwrap_or_default(),
            ]);
        }
    }
    if checks.iter().any(|c| !c.differences.is_empty()) {
        out.push_str(&format!("{table}\n"));
    }
    for c in checks {
        let model = c.model.as_deref().unwrap_or("not in the catalog");
        let verdict = match (&c.not_checked, c.differences.len()) {
            (Some(why), _) => format!("not checked: {why}"),
            (None, 0) => "the driver's profile tables match the catalog".into(),
            (None, n) => format!("{n} difference(s) from the catalog"),
        };
        out.push_str(&format!("GPU {} {} ({model}): {verdict}\n", c.gpu, c.name));
        for n in &c.driver_names {
            out.push_str(&format!(
                "  {}: the driver calls it {} (accepted: {})\n",
                n.profile, n.driver, n.accepted_as
            ));
        }
    }
    out
}
