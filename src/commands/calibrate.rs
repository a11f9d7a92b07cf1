//! `migbench calibrate`: a workload file fitted on measured runs ([`crate::calibrate`]).

use crate::cli::CalibrateArgs;
use crate::error::{Error, Result};

pub fn run(args: &CalibrateArgs) -> Result<String> {
    let fitted = crate::calibrate::calibrate(&args.runs, &args.workload)?;
    let toml = toml::to_string(&fitted.workload)
        .map_err(|e| Error::Harness(format!("cannot write the workload file: {e}")))?;
    let text = format!(
        "# Calibrated by `migbench calibrate` from measured runs: [calibration] says which runs and jobs\n# each figure was fitted on, and its residuals.\n{toml}"
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
