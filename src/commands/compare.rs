//! `migbench compare`: prints what changed between two sets of results, and fails (exit status
//! 1) when a variant regressed beyond the threshold.

use crate::cli::{CompareArgs, TextFormat};
use crate::commands::plan::parse_fraction;
use crate::compare::{self, Comparison};
use crate::error::{Error, Result};
use crate::output;
use crate::report::export::{render_markdown, render_terminal};

pub fn run(args: &CompareArgs) -> Result<String> {
    let threshold = parse_fraction("--threshold", &args.threshold)?;
    let baseline = compare::read_side("baseline", &args.baseline)?;
    let candidate = compare::read_side("candidate", &args.candidate)?;
    let comparison = compare::compare(&baseline, &candidate, threshold, args.allow_different)?;
    let text = render(&comparison, args.format)?;
    let regressed = comparison.regressed();
    if regressed.is_empty() {
        return Ok(text);
    }
    // The comparison goes to standard output as usual; the verdict to standard error.
    print!("{text}");
    let names: Vec<String> = regressed
        .iter()
        .map(|c| format!("{}/{} ({})", c.scenario, c.variant, c.reasons.join("; ")))
        .collect();
    Err(Error::Regression(format!(
        "{} variant(s) regressed beyond {:.1}%: {}",
        regressed.len(),
        threshold * 100.0,
        names.join(", ")
    )))
}

fn render(comparison: &Comparison, format: TextFormat) -> Result<String> {
    if format == TextFormat::Json {
        return output::json(comparison).map(|j| j + "\n");
    }
    let table = compare::table(comparison);
    // What differs between the sides comes before any figure, so no one reads a change of
    // experiment as a regression.
    let mut out = String::new();
    if !comparison.differences.is_empty() {
        out.push_str("compared although the sides differ (--allow-different):\n");
        for d in &comparison.differences {
            out.push_str(&format!("  {d}\n"));
        }
        out.push('\n');
    }
    out.push_str(&match format {
        TextFormat::Md => render_markdown(&table),
        _ => render_terminal(&table),
    });
    for c in comparison.changes.iter().filter(|c| !c.reasons.is_empty()) {
        out.push_str(&format!(
            "{} {}/{}: {}\n",
            c.verdict.as_str(),
            c.scenario,
            c.variant,
            c.reasons.join("; ")
        ));
    }
    for (side, names) in [
        ("baseline", &comparison.only_in_baseline),
        ("candidate", &comparison.only_in_candidate),
    ] {
        if !names.is_empty() {
            out.push_str(&format!("only in the {side}: {}\n", names.join(", ")));
        }
    }
    Ok(out)
}
