//! `plots/<name>.svg` and `plots/<name>.png` for every plot.

use super::{Exporter, Part};
use crate::error::Result;
use crate::report::Report;

pub struct PlotFiles;

impl Exporter for PlotFiles {
    fn export(&self, report: &Report) -> Result<Vec<Part>> {
        Ok(report
            .plots
            .iter()
            .flat_map(|p| {
                [
                    Part::new(format!("plots/{}.svg", p.name), p.svg.as_bytes()),
                    Part::new(format!("plots/{}.png", p.name), p.png.clone()),
                ]
            })
            .collect())
    }
}
