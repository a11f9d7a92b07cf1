//! `migbench history DIR`: the trends of a nightly history, the last night judged against the
//! median of the nights before; exit status 1 when it regressed.

use std::path::Path;

use crate::cli::{HistoryArgs, TextFormat};
use crate::commands::plan::parse_fraction;
use crate::error::{Error, Result};
use crate::fleet::history::{self, History, Judge};
use crate::output;
use crate::report::export::{
    html_escape, html_figure, html_table, html_warnings, render_markdown, render_terminal,
    HTML_STYLE,
};
use crate::report::plots::{self, Plot};
use crate::report::table::Table;

/// The most nights a baseline or the table takes: a year of nights.
const MAX_NIGHTS: usize = 366;

pub fn run(args: &HistoryArgs) -> Result<String> {
    let threshold = parse_fraction("--threshold", &args.threshold)?;
    for (name, n) in [
        ("--baseline-nights", args.baseline_nights),
        ("--nights", args.nights),
    ] {
        if !(1..=MAX_NIGHTS).contains(&n) {
            return Err(Error::Input(format!(
                "{name} {n}: a number of nights, 1 to {MAX_NIGHTS}"
            )));
        }
    }
    let (nights, warnings) = history::read_nights(&args.dir)?;
    let judge = Judge {
        baseline_nights: args.baseline_nights,
        threshold,
        shown: args.nights,
    };
    let mut found = history::history(&args.dir, &nights, judge);
    found.warnings.splice(0..0, warnings);
    let table = history::table(&found, judge.shown);
    let plots = plots::render_all(&history::charts(&found))?;
    write(&args.out, &found, &table, &plots)?;
    let mut text = match args.format {
        TextFormat::Json => output::json(&found)? + "\n",
        TextFormat::Md => render_markdown(&table),
        TextFormat::Table => render_terminal(&table),
    };
    if args.format != TextFormat::Json {
        for w in &found.warnings {
            text.push_str(&format!("warning: {w}\n"));
        }
        text.push_str(&format!(
            "history: {} ({} nights, {} plots)\n",
            args.out.display(),
            found.nights.len(),
            plots.len()
        ));
    }
    let regressed = found.regressed();
    if regressed.is_empty() {
        return Ok(text);
    }
    print!("{text}");
    let names: Vec<String> = regressed
        .iter()
        .map(|t| {
            format!(
                "{}/{} ({})",
                t.scenario,
                t.variant,
                t.reason.as_deref().unwrap_or(t.figure)
            )
        })
        .collect();
    Err(Error::Regression(format!(
        "the last night ({}) regressed: {}",
        found.nights.last().map_or("", String::as_str),
        names.join(", ")
    )))
}

/// `history.md`, `history.json`, `history.html` (the table and every trend plot inline) and the
/// plots as SVG and PNG, in `out`.
fn write(out: &Path, found: &History, table: &Table, plots: &[Plot]) -> Result<()> {
    let fail =
        |p: &Path, e: std::io::Error| Error::Harness(format!("cannot write {}: {e}", p.display()));
    let dir = out.join("plots");
    std::fs::create_dir_all(&dir).map_err(|e| fail(&dir, e))?;
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>migbench history</title>\n<style>\n{HTML_STYLE}\n</style>\n</head>\n<body>\n<h1>migbench history</h1>\n<p>{} nights in {}.</p>\n<h2>{}</h2>\n{}",
        found.nights.len(),
        html_escape(&found.dir),
        html_escape(&table.title),
        html_table(table)
    );
    html.push_str(&html_warnings(&found.warnings));
    html.push_str("<h2>Trends</h2>\n");
    let mut files: Vec<(std::path::PathBuf, Vec<u8>)> = Vec::new();
    for p in plots {
        html.push_str(&html_figure(p));
        files.push((
            dir.join(format!("{}.svg", p.name)),
            p.svg.clone().into_bytes(),
        ));
        files.push((dir.join(format!("{}.png", p.name)), p.png.clone()));
    }
    html.push_str("</body>\n</html>\n");
    files.push((out.join("history.html"), html.into_bytes()));
    files.push((out.join("history.md"), render_markdown(table).into_bytes()));
    files.push((
        out.join("history.json"),
        (output::json(found)? + "\n").into_bytes(),
    ));
    for (path, bytes) in files {
        std::fs::write(&path, bytes).map_err(|e| fail(&path, e))?;
    }
    Ok(())
}
