//! How the Markdown and HTML reports are laid out: the answer first (the verdict, and the table
//! across GPUs), then one section per scenario, GPU and backend with its rows of the per-variant
//! tables and, beside them, its plots; then the tables over every scenario (how many in
//! parallel, the runs).

use super::plots::Plot;
use super::table::Table;
use super::Report;

/// The tables shown first, by name.
pub const FIRST: &[&str] = &["verdict", "across_gpus"];
/// The tables whose rows are split over the scenario sections, by name.
pub const PER_SCENARIO: &[&str] = &["variants", "serving"];

/// One scenario on one GPU model and backend.
pub struct Section<'a> {
    /// `scenario · GPU · backend`, as the tables' group headings say.
    pub heading: String,
    /// An anchor for the table of contents (`s-1`, `s-2`, ...).
    pub id: String,
    /// The per-scenario tables, each with the indices of this section's rows.
    pub tables: Vec<(&'a Table, Vec<usize>)>,
    pub plots: Vec<&'a Plot>,
}

/// The tables shown first, then the sections, then the remaining tables.
pub struct Layout<'a> {
    pub first: Vec<&'a Table>,
    pub sections: Vec<Section<'a>>,
    pub last: Vec<&'a Table>,
}

pub fn layout(report: &Report) -> Layout<'_> {
    let named = |names: &[&str], t: &Table| names.contains(&t.name);
    let mut sections: Vec<Section> = Vec::new();
    for t in report.tables.iter().filter(|t| named(PER_SCENARIO, t)) {
        for (heading, rows) in t.groups() {
            let n = sections.len();
            let section = match sections.iter_mut().position(|s| s.heading == heading) {
                Some(i) => &mut sections[i],
                None => {
                    sections.push(Section {
                        heading,
                        id: format!("s-{}", n + 1),
                        tables: Vec::new(),
                        plots: Vec::new(),
                    });
                    &mut sections[n]
                }
            };
            section.tables.push((t, rows));
        }
    }
    for p in &report.plots {
        if let Some(s) = sections.iter_mut().find(|s| s.heading == p.section) {
            s.plots.push(p);
        }
    }
    Layout {
        first: report.tables.iter().filter(|t| named(FIRST, t)).collect(),
        sections,
        last: report
            .tables
            .iter()
            .filter(|t| !named(FIRST, t) && !named(PER_SCENARIO, t))
            .collect(),
    }
}
