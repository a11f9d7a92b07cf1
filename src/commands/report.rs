//! `migbench report`: reads every run below the given paths, writes the report directory and
//! prints the main table.

use crate::cli::{ReportArgs, TextFormat};
use crate::error::{Error, Result};
use crate::output;
use crate::report::export::{self, Exporter};
use crate::report::Report;

pub fn run(args: &ReportArgs) -> Result<String> {
    let report = Report::build(&args.paths)?;
    report.write(&args.out)?;
    if let Some(file) = &args.openmetrics {
        crate::fleet::openmetrics::write(&report.data, file)?;
    }
    let printed = match args.format {
        TextFormat::Json => return output::json(&report.data),
        TextFormat::Md => export::Markdown.export(&report)?,
        TextFormat::Table => export::Terminal.export(&report)?,
    };
    let mut text = String::new();
    for part in printed {
        text.push_str(&String::from_utf8(part.bytes).map_err(|e| Error::Harness(e.to_string()))?);
    }
    text.push_str(&format!(
        "report: {} ({} runs, {} plots)\n",
        args.out.display(),
        report.data.runs.len(),
        report.plots.len()
    ));
    Ok(text)
}
