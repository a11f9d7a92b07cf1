//! Bar charts: one bar per variant (or per mode), coloured by sharing mode, with ± one standard
//! deviation as an error bar and out-of-memory errors marked above the bar. The legend has its
//! own area right of the plot, so it covers no bar and no note.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::legend::{self, Mark, LEGEND_WIDTH};
use super::palette::{mode_colour, OOM_COLOUR};
use super::{axis_top, distinct, draw_axes, text, DrawResult};

#[derive(Debug, Clone)]
pub struct Bar {
    /// Under the bar.
    pub label: String,
    /// Sharing mode: the bar's colour.
    pub mode: String,
    /// No bar when nothing was completed.
    pub value: Option<f64>,
    /// One standard deviation, drawn as an error bar.
    pub error: Option<f64>,
    /// Jobs that ran out of memory.
    pub oom: u32,
    /// Written above the bar.
    pub note: Option<String>,
}

#[derive(Debug, Clone)]
pub struct BarChart {
    pub name: String,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub bars: Vec<Bar>,
}

impl BarChart {
    pub(super) fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let n = self.bars.len().max(1);
        let highest = self
            .bars
            .iter()
            .filter_map(|b| Some(b.value? + b.error.unwrap_or(0.0)))
            .fold(0.0, f64::max);
        let top = axis_top(highest, 1.25);
        let labels: Vec<String> = self.bars.iter().map(|b| b.label.clone()).collect();
        let area = root.titled(&self.title, text(20.0))?;
        let (width, _) = area.dim_in_pixel();
        let (plot_area, legend_area) = area.split_horizontally(width.saturating_sub(LEGEND_WIDTH));
        let mut chart = ChartBuilder::on(&plot_area)
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(72)
            .build_cartesian_2d(-0.5f64..n as f64 - 0.5, 0f64..top)?;
        draw_axes(&mut chart, &self.x_label, &self.y_label, Some(&labels))?;

        // One series per mode, so the legend names each once.
        let mut entries = Vec::new();
        for mode in distinct(self.bars.iter().map(|b| b.mode.as_str())) {
            let colour = mode_colour(mode);
            let bars = self.bars.iter().enumerate().filter_map(|(i, b)| {
                let v = b.value.filter(|_| b.mode == mode)?;
                Some(Rectangle::new(
                    [(i as f64 - 0.35, 0.0), (i as f64 + 0.35, v)],
                    colour.filled(),
                ))
            });
            chart.draw_series(bars)?;
            entries.push((Mark::Filled(colour), mode.to_string()));
        }
        chart.draw_series(self.bars.iter().enumerate().filter_map(|(i, b)| {
            let (v, e) = (b.value?, b.error?);
            Some(ErrorBar::new_vertical(
                i as f64,
                (v - e).max(0.0),
                v,
                v + e,
                BLACK.stroke_width(2),
                14,
            ))
        }))?;
        chart.draw_series(self.bars.iter().enumerate().filter(|(_, b)| b.oom > 0).map(
            |(i, b)| {
                let y = b.value.unwrap_or(0.0) + b.error.unwrap_or(0.0) + top * 0.04;
                EmptyElement::at((i as f64, y))
                    + Cross::new((0, 0), 6, OOM_COLOUR.stroke_width(3))
                    + Text::new(
                        format!("{} OOM", b.oom),
                        (10, -8),
                        text(15.0).color(&OOM_COLOUR),
                    )
            },
        ))?;
        if self.bars.iter().any(|b| b.oom > 0) {
            entries.push((Mark::Cross(OOM_COLOUR), "out of memory".into()));
        }
        chart.draw_series(self.bars.iter().enumerate().filter_map(|(i, b)| {
            let (words, y) = match (&b.note, b.value) {
                (_, None) => ("nothing completed".to_string(), top * 0.03),
                (Some(note), Some(v)) => (note.clone(), v + b.error.unwrap_or(0.0) + top * 0.1),
                (None, Some(_)) => return None,
            };
            Some(Text::new(
                words,
                (i as f64, y),
                text(15.0).pos(Pos::new(HPos::Center, VPos::Bottom)),
            ))
        }))?;
        legend::draw(&legend_area, &entries, "")
    }
}
