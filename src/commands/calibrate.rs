//! `migbench calibrate`: a workload file fitted on measured runs or on a table of figures
//! ([`crate::calibrate`]).

use crate::cli::CalibrateArgs;
use crate::error::{Error, Result};

pub fn run(args: &CalibrateArgs) -> Result<String> {
    let (fitted, from) = match &args.table {
        Some(table) => (
            crate::calibrate::calibrate_table(table, &args.workload, &args.hold_out, args.batch)?,
            "a table of figures",
        ),
        None => (
            crate::calibrate::calibrate(&args.runs, &args.workload)?,
            "measured runs",
        ),
    };
    let Some(workload) = &fitted.workload else {
        if let Some(path) = &args.out {
            return Err(Error::Input(format!(
                "--out {}: {} is not a workload migbench ships, so there is no workload file (command, memory) to write the fit into; without --out calibrate prints the fit",
                path.display(),
                args.workload
            )));
        }
        return Ok(fitted.summary);
    };
    let toml = toml::to_string(workload)
        .map_err(|e| Error::Harness(format!("cannot write the workload file: {e}")))?;
    let text = format!(
        "# Calibrated by `migbench calibrate` from {from}: [calibration] says which runs or rows\n# each figure was fitted on, and its residuals.\n{toml}"
    );
    match &args.out {
        None => Ok(text),
        Some(path) => {
            std::fs::write(path, &text)
                .map_err(|e| Error::Harness(format!("cannot write {}: {e}", path.display())))?;
            Ok(format!("{}written to {}\n", fitted.summary, path.display()))
        }
    }
}
