//! `migbench import`: `vllm bench serve --save-result` (or `vllm-bench`) files made into a run
//! directory.

use crate::catalog::Catalog;
use crate::cli::ImportArgs;
use crate::error::{Error, Result};
use crate::import::{self, Options};
use crate::mode::SharingMode;
use crate::results::schema::Named;

pub fn run(args: &ImportArgs) -> Result<String> {
    let gpu = Catalog::builtin().gpu(&args.gpu)?;
    let mode = SharingMode::parse_name(&args.mode).ok_or_else(|| {
        let allowed: Vec<&str> = SharingMode::ALL.iter().map(|m| m.as_str()).collect();
        Error::Input(format!(
            "--mode {}: not a sharing mode; allowed: {}",
            crate::bounds::short(&args.mode),
            allowed.join(", ")
        ))
    })?;
    let options = Options {
        gpu,
        mode,
        variant: args.variant.as_deref(),
        scenario: &args.scenario,
        instance: &args.instance,
        command: std::env::args().collect(),
    };
    let imported = import::import(&args.files, &args.out, &options)?;
    Ok(format!(
        "imported {} file(s) from {}: {}\n",
        args.files.len(),
        imported.from,
        imported.dir.display()
    ))
}
