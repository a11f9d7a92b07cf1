//! A figure over nights: a line per scenario variant (in shades of its mode's colour), the
//! nights on the x axis oldest first, and a cross on a night that regressed.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::legend::{self, Mark, LEGEND_WIDTH};
use super::palette::{mode_colour, shade, OOM_COLOUR};
use super::{axis_top, draw_axes, text, DrawResult};

#[derive(Debug, Clone)]
pub struct TrendLine {
    pub label: String,
    pub mode: String,
    /// `(night index, value)`; nights without a value are left out.
    pub points: Vec<(usize, f64)>,
    /// Nights whose value regressed against the baseline before them.
    pub regressed: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct TrendChart {
    pub name: String,
    pub title: String,
    pub y_label: String,
    /// The nights' names, oldest first.
    pub nights: Vec<String>,
    pub lines: Vec<TrendLine>,
    pub footnote: String,
}

impl TrendChart {
    pub(super) fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let y_max = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|(_, y)| *y))
            .fold(0.0, f64::max);
        let area = root.titled(&self.title, text(20.0))?;
        let (width, _) = area.dim_in_pixel();
        let (plot_area, legend_area) = area.split_horizontally(width.saturating_sub(LEGEND_WIDTH));
        let last = self.nights.len().max(1) as f64 - 0.5;
        let mut chart = ChartBuilder::on(&plot_area)
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(72)
            .build_cartesian_2d(-0.5f64..last, 0f64..axis_top(y_max, 1.15))?;
        draw_axes(&mut chart, "night", &self.y_label, Some(&self.nights))?;
        let mut entries = Vec::new();
        let modes: Vec<&str> = self.lines.iter().map(|l| l.mode.as_str()).collect();
        for (i, line) in self.lines.iter().enumerate() {
            let same: Vec<usize> = (0..modes.len()).filter(|&j| modes[j] == modes[i]).collect();
            let rank = same.iter().position(|&j| j == i).unwrap_or(0);
            let colour = shade(mode_colour(&line.mode), rank, same.len());
            let points: Vec<(f64, f64)> = line.points.iter().map(|&(x, y)| (x as f64, y)).collect();
            chart.draw_series(LineSeries::new(
                points.iter().copied(),
                colour.stroke_width(2),
            ))?;
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
            entries.push((Mark::Line(colour, 3), line.label.clone()));
        }
        let crosses: Vec<(f64, f64)> = self
            .lines
            .iter()
            .flat_map(|l| {
                l.regressed
                    .iter()
                    .filter_map(|n| l.points.iter().find(|(x, _)| x == n))
                    .map(|&(x, y)| (x as f64, y))
            })
            .collect();
        if !crosses.is_empty() {
            chart.draw_series(
                crosses
                    .iter()
                    .map(|&at| Cross::new(at, 8, OOM_COLOUR.stroke_width(3))),
            )?;
            entries.push((Mark::Cross(OOM_COLOUR), "regressed".to_string()));
        }
        legend::draw(&legend_area, &entries, &self.footnote)
    }
}
