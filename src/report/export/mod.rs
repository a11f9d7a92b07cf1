//! Exporters: each renders a [`Report`] into files of the report directory, as hyperfine's
//! exporters render its results. Adding a format is adding one implementation to [`all`].

mod csv;
mod html;
mod json;
mod markdown;
mod plot_files;
mod terminal;

use std::path::PathBuf;

pub use self::csv::Csv;
pub use html::Html;
pub use json::Json;
pub use markdown::Markdown;
pub use plot_files::PlotFiles;
pub use terminal::Terminal;

use super::Report;
use crate::error::Result;

/// One file of an export, its path relative to the report directory.
#[derive(Debug, Clone)]
pub struct Part {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

impl Part {
    pub fn new(path: impl Into<PathBuf>, bytes: impl Into<Vec<u8>>) -> Part {
        Part {
            path: path.into(),
            bytes: bytes.into(),
        }
    }
}

pub trait Exporter {
    /// The files this format makes of the report.
    fn export(&self, report: &Report) -> Result<Vec<Part>>;
}

/// Every exporter a report directory gets.
pub fn all() -> Vec<Box<dyn Exporter>> {
    vec![
        Box::new(Terminal),
        Box::new(Markdown),
        Box::new(Html),
        Box::new(Csv),
        Box::new(Json),
        Box::new(PlotFiles),
    ]
}

pub use html::{
    escape as html_escape, figure as html_figure, render as html_table, warnings as html_warnings,
    STYLE as HTML_STYLE,
};
pub use markdown::render as render_markdown;
pub use terminal::render as render_terminal;
