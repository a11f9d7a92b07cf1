//! The terminal: the verdict, the main table and the serving table, grouped by scenario, in at most 100
//! columns, with the warnings. Also written to `report.txt`.

use super::{Exporter, Part};
use crate::error::Result;
use crate::output;
use crate::report::table::{Role, Table};
use crate::report::Report;

pub struct Terminal;

/// The terminal's width, in columns.
const WIDTH: u16 = 100;

impl Exporter for Terminal {
    fn export(&self, report: &Report) -> Result<Vec<Part>> {
        let mut out = String::new();
        // The verdict first; every table says what it is.
        for t in report.tables.iter().filter(|t| t.terminal) {
            out.push_str(&format!("{}\n", t.title));
            out.push_str(&render(t));
        }
        for v in report.data.variants.iter().filter(|v| v.status != "ran") {
            out.push_str(&format!("{} · {}: {}\n", v.scenario, v.variant, v.status));
        }
        for w in &report.data.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        Ok(vec![Part::new("report.txt", out)])
    }
}

/// A table as the terminal shows it: a heading line per group, then its brief columns.
pub fn render(table: &Table) -> String {
    let columns = table.columns_with(&[Role::Brief, Role::Terminal]);
    let mut out = String::new();
    for (heading, rows) in table.groups() {
        if !heading.is_empty() {
            out.push_str(&format!("{heading}\n"));
        }
        let mut t = output::grid(columns.iter().map(|&c| &*table.columns[c].header));
        // Long answers (the verdict's lists) wrap rather than widen the table.
        t.set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
            .set_width(WIDTH);
        for &r in &rows {
            t.add_row(
                columns
                    .iter()
                    .map(|&c| table.display(c, &table.rows[r][c]))
                    .collect::<Vec<_>>(),
            );
        }
        let numeric: Vec<usize> = columns
            .iter()
            .enumerate()
            .filter(|(_, &c)| table.columns[c].numeric())
            .map(|(i, _)| i)
            .collect();
        output::align_right(&mut t, &numeric);
        out.push_str(&format!("{t}\n"));
    }
    out
}
