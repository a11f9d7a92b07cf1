//! `migbench validate`: check scenario files without running anything.

use serde::Serialize;

use crate::cli::{Format, ValidateArgs};
use crate::error::{Error, Result};
use crate::output;
use crate::scenario::{Scenario, ScenarioError};

/// One file as `--format json` reports it.
#[derive(Serialize)]
struct Checked {
    file: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    scenario: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gpu: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    variants: Vec<VariantName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Located>,
}

#[derive(Serialize)]
struct VariantName {
    name: String,
    mode: String,
}

/// Where a file is wrong: the file may be another than the scenario (a mig-parted file it names).
#[derive(Serialize)]
struct Located {
    file: String,
    /// 1-based; 0 when the problem is not at one place (an unreadable file).
    line: usize,
    column: usize,
    message: String,
}

pub fn run(args: &ValidateArgs) -> Result<String> {
    let checked: Vec<(Checked, Option<ScenarioError>)> = args
        .files
        .iter()
        .map(|path| match Scenario::load(path) {
            Ok(s) => (
                Checked {
                    file: path.display().to_string(),
                    ok: true,
                    scenario: Some(s.name().to_string()),
                    gpu: Some(s.gpu.key.clone()),
                    variants: s
                        .file
                        .variants
                        .iter()
                        .map(|v| VariantName {
                            name: v.name.get_ref().clone(),
                            mode: v.mode.get_ref().to_string(),
                        })
                        .collect(),
                    error: None,
                },
                None,
            ),
            Err(e) => (
                Checked {
                    file: path.display().to_string(),
                    ok: false,
                    scenario: None,
                    gpu: None,
                    variants: Vec::new(),
                    error: Some(Located {
                        file: e.file.display().to_string(),
                        line: e.line,
                        column: e.column,
                        message: e.message.clone(),
                    }),
                },
                Some(e),
            ),
        })
        .collect();
    let out = match args.format.format {
        Format::Json => {
            let rows: Vec<&Checked> = checked.iter().map(|(c, _)| c).collect();
            output::json(&rows)? + "\n"
        }
        Format::Table => checked
            .iter()
            .filter(|(c, _)| c.ok)
            .map(|(c, _)| {
                let variants: Vec<String> = c
                    .variants
                    .iter()
                    .map(|v| format!("{} ({})", v.name, v.mode))
                    .collect();
                format!(
                    "{}: ok — {} on {}, {} variant(s): {}\n",
                    c.file,
                    c.scenario.as_deref().unwrap_or_default(),
                    c.gpu.as_deref().unwrap_or_default(),
                    variants.len(),
                    variants.join(", ")
                )
            })
            .collect(),
    };
    let errors: Vec<String> = checked
        .iter()
        .filter_map(|(_, e)| e.as_ref().map(ToString::to_string))
        .collect();
    if errors.is_empty() {
        Ok(out)
    } else {
        // What was checked is still reported (JSON on stdout, where scripts read it), then the
        // errors on stderr.
        match args.format.format {
            Format::Json => print!("{out}"),
            Format::Table => eprint!("{out}"),
        }
        Err(Error::Input(errors.join("\n")))
    }
}
