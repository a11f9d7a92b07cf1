//! `migbench validate`: check scenario files without running anything.

use crate::cli::ValidateArgs;
use crate::error::{Error, Result};
use crate::scenario::Scenario;

pub fn run(args: &ValidateArgs) -> Result<String> {
    let mut out = String::new();
    let mut errors = Vec::new();
    for path in &args.files {
        match Scenario::load(path) {
            Ok(s) => {
                let variants: Vec<String> = s
                    .file
                    .variants
                    .iter()
                    .map(|v| format!("{} ({})", v.name.get_ref(), v.mode.get_ref()))
                    .collect();
                out.push_str(&format!(
                    "{}: ok — {} on {}, {} variant(s): {}\n",
                    path.display(),
                    s.name(),
                    s.gpu.key,
                    variants.len(),
                    variants.join(", ")
                ));
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        // The valid files are still reported before the errors.
        eprint!("{out}");
        Err(Error::Input(errors.join("\n")))
    }
}
