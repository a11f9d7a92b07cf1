//! `report.json`: the report's data, which `migbench compare` reads back.

use super::{Exporter, Part};
use crate::error::Result;
use crate::output;
use crate::report::{Report, REPORT_JSON};

pub struct Json;

impl Exporter for Json {
    fn export(&self, report: &Report) -> Result<Vec<Part>> {
        Ok(vec![Part::new(REPORT_JSON, output::json(&report.data)?)])
    }
}
