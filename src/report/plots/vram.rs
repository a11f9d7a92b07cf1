//! VRAM over time in one variant: a line per job in shades of the mode's colour, the whole GPU's
//! use in grey, a dashed line at the capacity of each memory pool, and a cross where a job ran
//! out of memory.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::legend::{self, Mark, LEGEND_WIDTH};
use super::palette::{mode_colour, shade, OOM_COLOUR};
use super::{draw_axes, text, DrawResult};

#[derive(Debug, Clone)]
pub struct JobLine {
    pub label: String,
    /// `(seconds since the variant started, GiB)`.
    pub points: Vec<(f64, f64)>,
    /// Where the job ran out of memory: when it ended, at its last level.
    pub oom_at: Option<(f64, f64)>,
}

#[derive(Debug, Clone)]
pub struct VramChart {
    pub name: String,
    pub title: String,
    pub mode: String,
    pub x_label: String,
    pub lines: Vec<JobLine>,
    /// Memory in use on the whole GPU.
    pub gpu_total: Vec<(f64, f64)>,
    /// `(pool label, GiB)`: the GPU, or the MIG instances sharing that size.
    pub capacities: Vec<(String, f64)>,
    /// Shown in the middle when there is nothing to draw (a variant that did not run).
    pub note: Option<String>,
    /// Under the legend: which run and repetition is shown.
    pub footnote: String,
}

const GPU_TOTAL: RGBColor = RGBColor(0x77, 0x77, 0x77);
const CAPACITY: RGBColor = RGBColor(0x33, 0x33, 0x33);

impl VramChart {
    pub(super) fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let (mut t_max, mut y_max) = (1.0f64, 1.0f64);
        let all_points = self.lines.iter().flat_map(|l| l.points.iter());
        for (t, y) in all_points.chain(self.gpu_total.iter()) {
            t_max = t_max.max(*t);
            y_max = y_max.max(*y);
        }
        for (_, c) in &self.capacities {
            y_max = y_max.max(*c);
        }
        let area = root.titled(&self.title, text(20.0))?;
        // The legend stands right of the plot, where it hides no line.
        let (width, _) = area.dim_in_pixel();
        let (plot_area, legend_area) = area.split_horizontally(width.saturating_sub(LEGEND_WIDTH));
        let mut chart = ChartBuilder::on(&plot_area)
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..t_max * 1.02, 0f64..y_max * 1.1)?;
        draw_axes(&mut chart, &self.x_label, "GPU memory in use, GiB", None)?;

        let mut legend = Vec::new();
        for (label, capacity) in &self.capacities {
            chart.draw_series(DashedLineSeries::new(
                [(0.0, *capacity), (t_max * 1.02, *capacity)],
                10,
                6,
                CAPACITY.stroke_width(2),
            ))?;
            legend.push((
                Mark::Dashed(CAPACITY),
                format!("{label}: {capacity:.1} GiB"),
            ));
        }
        if !self.gpu_total.is_empty() {
            chart.draw_series(LineSeries::new(
                self.gpu_total.iter().copied(),
                GPU_TOTAL.stroke_width(1),
            ))?;
            legend.push((Mark::Line(GPU_TOTAL, 1), "whole GPU in use".to_string()));
        }
        let base = mode_colour(&self.mode);
        // Jobs at the same level would draw one line: each is drawn narrower than the one before
        // it, so the first shows as the outer stripe and the last as the inner one.
        let n = self.lines.len() as u32;
        for (i, line) in self.lines.iter().enumerate() {
            let colour = shade(base, i, self.lines.len());
            chart.draw_series(LineSeries::new(
                line.points.iter().copied(),
                colour.stroke_width(2 + 3 * (n - 1 - i as u32).min(4)),
            ))?;
            legend.push((Mark::Line(colour, 3), line.label.clone()));
        }
        let ooms: Vec<(f64, f64)> = self.lines.iter().filter_map(|l| l.oom_at).collect();
        if !ooms.is_empty() {
            chart.draw_series(ooms.iter().map(|&at| {
                EmptyElement::at(at)
                    + Cross::new((0, 0), 7, OOM_COLOUR.stroke_width(3))
                    + Text::new("OOM", (9, -20), text(15.0).color(&OOM_COLOUR))
            }))?;
            legend.push((Mark::Cross(OOM_COLOUR), "out of memory".to_string()));
        }
        if let Some(note) = &self.note {
            // Wrapped, so that a long reason (a failed setup's) stays inside the plot.
            let at = (t_max * 0.05, y_max * 0.6);
            chart.draw_series(wrap(note, 70).into_iter().enumerate().map(|(i, line)| {
                EmptyElement::at(at) + Text::new(line, (0, 22 * i as i32), text(16.0))
            }))?;
        }
        legend::draw(&legend_area, &legend, &self.footnote)
    }
}

/// `text` cut into lines of at most `width` characters, at spaces (a longer word stays whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    #[test]
    fn wrap_keeps_words_whole_and_lines_short() {
        let lines = super::wrap("not run: setup_failed: GPU setup failed and was undone", 20);
        assert_eq!(
            lines,
            vec![
                "not run:",
                "setup_failed: GPU",
                "setup failed and was",
                "undone"
            ]
        );
        assert_eq!(super::wrap("", 20), Vec::<String>::new());
    }
}
