//! Latency percentiles per variant: one panel per latency (TTFT, TPOT, ...), stacked, each with
//! a pair of bars per variant, the median solid in the mode's colour and the p99 beside it in a
//! light tint of it, each with its value written above; one legend right of the panels.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::legend::{self, Mark, LEGEND_WIDTH};
use super::palette::{mode_colour, tint};
use super::{axis_top, distinct, draw_axes, text, DrawResult};

/// A variant's place on the x axis.
#[derive(Debug, Clone)]
pub struct Group {
    pub label: String,
    /// Sharing mode: the bars' colour.
    pub mode: String,
}

/// One latency.
#[derive(Debug, Clone)]
pub struct PercentilePanel {
    pub y_label: String,
    /// Per group: `(median, p99)`.
    pub values: Vec<(Option<f64>, Option<f64>)>,
    /// Digits of the values written above the bars.
    pub digits: usize,
}

#[derive(Debug, Clone)]
pub struct PercentileChart {
    pub name: String,
    pub title: String,
    pub x_label: String,
    pub groups: Vec<Group>,
    pub panels: Vec<PercentilePanel>,
}

/// How far the p99 bar's fill is mixed towards white.
const TINT: f64 = 0.6;

impl PercentileChart {
    pub(super) fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let area = root.titled(&self.title, text(20.0))?;
        let (width, _) = area.dim_in_pixel();
        let (plots, legend_area) = area.split_horizontally(width.saturating_sub(LEGEND_WIDTH));
        let panels = plots.split_evenly((self.panels.len().max(1), 1));
        for (panel, area) in self.panels.iter().zip(&panels) {
            self.draw_panel(panel, area)?;
        }
        let mut entries: Vec<(Mark, String)> = self
            .modes()
            .into_iter()
            .map(|m| (Mark::Filled(mode_colour(m)), m.to_string()))
            .collect();
        let grey = RGBColor(0x66, 0x66, 0x66);
        entries.push((Mark::Filled(grey), "left, solid: median".into()));
        entries.push((
            Mark::Outlined(tint(grey, TINT), grey),
            "right, light: 99th percentile".into(),
        ));
        legend::draw(&legend_area, &entries, "")
    }

    fn modes(&self) -> Vec<&str> {
        distinct(self.groups.iter().map(|g| g.mode.as_str()))
    }

    fn draw_panel<DB: DrawingBackend>(
        &self,
        panel: &PercentilePanel,
        area: &DrawingArea<DB, Shift>,
    ) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let n = self.groups.len().max(1);
        let highest = panel
            .values
            .iter()
            .flat_map(|(m, p)| [*m, *p])
            .flatten()
            .fold(0.0, f64::max);
        let top = axis_top(highest, 1.12);
        let labels: Vec<String> = self.groups.iter().map(|g| g.label.clone()).collect();
        let mut chart = ChartBuilder::on(area)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(72)
            .build_cartesian_2d(-0.5f64..n as f64 - 0.5, 0f64..top)?;
        draw_axes(&mut chart, &self.x_label, &panel.y_label, Some(&labels))?;

        // Median left of the centre, p99 right of it.
        let (median_at, p99_at) = ((-0.38, -0.02), (0.02, 0.38));
        for mode in self.modes() {
            let colour = mode_colour(mode);
            let light = tint(colour, TINT);
            let mine = || {
                self.groups
                    .iter()
                    .zip(&panel.values)
                    .enumerate()
                    .filter(move |(_, (g, _))| g.mode == mode)
            };
            let medians = mine().filter_map(|(i, (_, (m, _)))| {
                let x = i as f64;
                Some(Rectangle::new(
                    [(x + median_at.0, 0.0), (x + median_at.1, (*m)?)],
                    colour.filled(),
                ))
            });
            chart.draw_series(medians)?;
            let p99s = mine().filter_map(|(i, (_, (_, p)))| {
                let x = i as f64;
                let corners = [(x + p99_at.0, 0.0), (x + p99_at.1, (*p)?)];
                Some([
                    Rectangle::new(corners, light.filled()),
                    Rectangle::new(corners, colour.stroke_width(2)),
                ])
            });
            chart.draw_series(p99s.flatten())?;
        }
        let values = panel.values.iter().enumerate().flat_map(|(i, (m, p))| {
            let x = i as f64;
            [(*m, median_at), (*p, p99_at)]
                .into_iter()
                .filter_map(move |(v, (a, b))| {
                    let v = v?;
                    Some(Text::new(
                        format!("{v:.*}", panel.digits),
                        (x + (a + b) / 2.0, v + top * 0.01),
                        text(15.0).pos(Pos::new(HPos::Center, VPos::Bottom)),
                    ))
                })
        });
        chart.draw_series(values)?;
        Ok(())
    }
}
