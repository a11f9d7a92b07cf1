//! Curves: a line per scenario variant (in shades of its mode's colour) through its sweep
//! points, on numeric axes, with an optional horizontal limit (an SLO) drawn dashed. The Pareto
//! plot of a sweep and its latency-against-load plots are drawn with it.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::legend::{self, Mark, LEGEND_WIDTH};
use super::palette::{mode_colour, shade, OOM_COLOUR};
use super::{axis_top, draw_axes, text, DrawResult};

#[derive(Debug, Clone)]
pub struct Curve {
    pub label: String,
    pub mode: String,
    /// `(x, y)`, in the order the line joins them.
    pub points: Vec<(f64, f64)>,
}

#[derive(Debug, Clone)]
pub struct CurveChart {
    pub name: String,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub curves: Vec<Curve>,
    /// A limit on y, drawn across the plot, with its label.
    pub limit: Option<(f64, String)>,
    pub footnote: String,
}

impl CurveChart {
    pub(super) fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let all = || self.curves.iter().flat_map(|c| c.points.iter());
        let x_max = all().map(|p| p.0).fold(0.0, f64::max);
        let y_max = all()
            .map(|p| p.1)
            .chain(self.limit.as_ref().map(|l| l.0))
            .fold(0.0, f64::max);
        let area = root.titled(&self.title, text(20.0))?;
        let (width, _) = area.dim_in_pixel();
        let (plot_area, legend_area) = area.split_horizontally(width.saturating_sub(LEGEND_WIDTH));
        let x_top = axis_top(x_max, 1.1);
        let mut chart = ChartBuilder::on(&plot_area)
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(72)
            .build_cartesian_2d(0f64..x_top, 0f64..axis_top(y_max, 1.15))?;
        draw_axes(&mut chart, &self.x_label, &self.y_label, None)?;
        let mut entries = Vec::new();
        let modes: Vec<&str> = self.curves.iter().map(|c| c.mode.as_str()).collect();
        for (i, curve) in self.curves.iter().enumerate() {
            let same: Vec<usize> = (0..modes.len()).filter(|&j| modes[j] == modes[i]).collect();
            let rank = same.iter().position(|&j| j == i).unwrap_or(0);
            let colour = shade(mode_colour(&curve.mode), rank, same.len());
            chart.draw_series(LineSeries::new(
                curve.points.iter().copied(),
                colour.stroke_width(2),
            ))?;
            chart.draw_series(
                curve
                    .points
                    .iter()
                    .map(|&p| Circle::new(p, 4, colour.filled())),
            )?;
            entries.push((Mark::Line(colour, 3), curve.label.clone()));
        }
        if let Some((y, label)) = &self.limit {
            chart.draw_series(DashedLineSeries::new(
                [(0.0, *y), (x_top, *y)],
                8,
                5,
                OOM_COLOUR.stroke_width(2),
            ))?;
            entries.push((Mark::Line(OOM_COLOUR, 2), label.clone()));
        }
        legend::draw(&legend_area, &entries, &self.footnote)
    }
}
