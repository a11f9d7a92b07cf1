//! `report.md`: the verdict first, a table of contents, per scenario its tables and plots (images
//! from `plots/`), then the tables over every scenario and the warnings.

use super::{Exporter, Part};
use crate::error::Result;
use crate::report::table::{Role, Table};
use crate::report::{sections, Report};

pub struct Markdown;

impl Exporter for Markdown {
    fn export(&self, report: &Report) -> Result<Vec<Part>> {
        let data = &report.data;
        let layout = sections::layout(report);
        let mut out = format!(
            "# migbench report\n\n{} runs, generated {} by migbench {}.\n\n",
            data.runs.len(),
            data.generated_at,
            data.migbench_version
        );
        if data.variants.iter().any(|v| v.origin.simulated) {
            out.push_str(&format!("> {}\n\n", crate::report::SIMULATED_NOTE));
        }
        // Contents: links to the headings as GitHub and most renderers anchor them.
        out.push_str("## Contents\n\n");
        let link = |text: &str| format!("[{}](#{})", escape(text), anchor(text));
        for t in &layout.first {
            out.push_str(&format!("- {}\n", link(&t.title)));
        }
        if !layout.sections.is_empty() {
            out.push_str(&format!("- {}\n", link("Scenarios")));
            // The verdict's groups have the same headings: sections get anchors of their own.
            for s in &layout.sections {
                out.push_str(&format!("  - [{}](#{})\n", escape(&s.heading), s.id));
            }
        }
        for t in &layout.last {
            out.push_str(&format!("- {}\n", link(&t.title)));
        }
        if !data.warnings.is_empty() {
            out.push_str(&format!("- {}\n", link("Warnings")));
        }
        out.push('\n');
        for t in &layout.first {
            out.push_str(&format!("## {}\n\n{}", t.title, render(t)));
        }
        if !layout.sections.is_empty() {
            out.push_str("## Scenarios\n\n");
        }
        for s in &layout.sections {
            out.push_str(&format!(
                "<a id=\"{}\"></a>\n\n### {}\n\n",
                s.id,
                escape(&s.heading)
            ));
            for (t, rows) in &s.tables {
                out.push_str(&format!("#### {}\n\n{}", t.title, group(t, rows)));
                out.push_str(&notes(t));
            }
            for p in &s.plots {
                out.push_str(&format!(
                    "![{}](plots/{}.svg)\n\n",
                    escape(&p.title),
                    p.name
                ));
            }
        }
        for t in &layout.last {
            out.push_str(&format!("## {}\n\n{}", t.title, render(t)));
        }
        if !data.warnings.is_empty() {
            out.push_str("## Warnings\n\n");
            for w in &data.warnings {
                out.push_str(&format!("- {}\n", escape(w)));
            }
            out.push('\n');
        }
        Ok(vec![Part::new("report.md", out)])
    }
}

/// The anchor GitHub gives a heading: lower case, spaces to `-`, punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// A table in Markdown: a `###` heading per group, then the brief and detail columns.
pub fn render(table: &Table) -> String {
    let mut out = String::new();
    for (heading, rows) in table.groups() {
        if !heading.is_empty() {
            out.push_str(&format!("### {}\n\n", escape(&heading)));
        }
        out.push_str(&group(table, &rows));
    }
    out.push_str(&notes(table));
    out
}

/// Some rows of a table.
fn group(table: &Table, rows: &[usize]) -> String {
    let columns = table.columns_with(&[Role::Brief, Role::Detail]);
    let mut out = String::new();
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
    for &r in rows {
        let cells: Vec<String> = columns
            .iter()
            .map(|&c| escape(&table.display(c, &table.rows[r][c])))
            .collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out.push('\n');
    out
}

fn notes(table: &Table) -> String {
    table
        .notes
        .iter()
        .map(|n| format!("{}\n\n", escape(n)))
        .collect()
}

/// Keeps `|` from ending a cell and `<` from opening a tag.
fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('<', "&lt;")
}
