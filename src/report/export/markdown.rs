//! `report.md`: every table, the warnings, and the plots as images from `plots/`.

use super::{Exporter, Part};
use crate::error::Result;
use crate::report::table::{Role, Table};
use crate::report::Report;

pub struct Markdown;

impl Exporter for Markdown {
    fn export(&self, report: &Report) -> Result<Vec<Part>> {
        let data = &report.data;
        let mut out = format!(
            "# migbench report\n\n{} runs, generated {} by migbench {}.\n\n",
            data.runs.len(),
            data.generated_at,
            data.migbench_version
        );
        if data.variants.iter().any(|v| v.origin.simulated) {
            out.push_str(&format!("> {}\n\n", crate::report::SIMULATED_NOTE));
        }
        for t in &report.tables {
            out.push_str(&format!("## {}\n\n{}", t.title, render(t)));
        }
        if !data.warnings.is_empty() {
            out.push_str("## Warnings\n\n");
            for w in &data.warnings {
                out.push_str(&format!("- {}\n", escape(w)));
            }
            out.push('\n');
        }
        out.push_str("## Plots\n\n");
        for p in &report.plots {
            out.push_str(&format!(
                "### {}\n\n![{}](plots/{}.svg)\n\n",
                escape(&p.title),
                escape(&p.title),
                p.name
            ));
        }
        Ok(vec![Part::new("report.md", out)])
    }
}

/// A table in Markdown: a `###` heading per group, then the brief and detail columns.
pub fn render(table: &Table) -> String {
    let columns = table.columns_with(&[Role::Brief, Role::Detail]);
    let mut out = String::new();
    for (heading, rows) in table.groups() {
        if !heading.is_empty() {
            out.push_str(&format!("### {}\n\n", escape(&heading)));
        }
        let header: Vec<String> = columns
            .iter()
            .map(|&c| escape(&table.columns[c].title()))
            .collect();
        out.push_str(&format!("| {} |\n", header.join(" | ")));
        let rule: Vec<&str> = columns
            .iter()
            .map(|&c| {
                if table.columns[c].numeric() {
                    "--:"
                } else {
                    "---"
                }
            })
            .collect();
        out.push_str(&format!("|{}|\n", rule.join("|")));
        for &r in &rows {
            let cells: Vec<String> = columns
                .iter()
                .map(|&c| escape(&table.display(c, &table.rows[r][c])))
                .collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        out.push('\n');
    }
    for note in &table.notes {
        out.push_str(&format!("{}\n\n", escape(note)));
    }
    out
}

/// Keeps `|` from ending a cell and `<` from opening a tag.
fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('<', "&lt;")
}
