//! Terminal and JSON rendering shared by the commands.

use comfy_table::{presets, CellAlignment, ContentArrangement, Table};
use serde::Serialize;

use crate::error::Error;

/// A grid of text for the terminal in the house style: horizontal rules, numbers right-aligned by
/// the caller (a report's tables are `report::table::Table`, rendered by its exporters).
pub fn grid<I, S>(header: I) -> Table
where
    I: IntoIterator<Item = S>,
    S: Into<comfy_table::Cell>,
{
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header);
    table
}

/// Right-aligns the given columns (numbers read best that way).
pub fn align_right(table: &mut Table, columns: &[usize]) {
    for &c in columns {
        if let Some(col) = table.column_mut(c) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// Pretty JSON for `--format json`.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    serde_json::to_string_pretty(value)
        .map_err(|e| Error::Harness(format!("cannot write JSON: {e}")))
}

/// `2.5` → `2.50`: GiB figures as nvidia-smi prints them.
pub fn gib(value: f64) -> String {
    format!("{value:.2}")
}
