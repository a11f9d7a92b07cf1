//! A drawing of a MIG layout: the GPU's memory slices and compute slices in two rows, each
//! instance a box over the slices it holds, and the slices no instance holds greyed out as
//! unused.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::palette::{mode_colour, shade, UNUSED};
use super::{text, DrawResult};

/// One GPU instance in the drawing.
#[derive(Debug, Clone)]
pub struct SliceBox {
    /// `3g.40gb@0`.
    pub label: String,
    /// Second line: SMs, jobs, peak.
    pub detail: String,
    pub memory_start: u8,
    pub memory_slices: u8,
    pub compute_slices: u8,
}

#[derive(Debug, Clone)]
pub struct LayoutChart {
    pub name: String,
    pub title: String,
    pub mode: String,
    pub memory_slices: u8,
    pub compute_slices: u8,
    /// Instances in order of their start slice.
    pub instances: Vec<SliceBox>,
    /// What the layout leaves unused, under the drawing.
    pub summary: String,
}

const LEFT: i32 = 150;
const ROW_HEIGHT: i32 = 90;

impl LayoutChart {
    pub(super) fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let area = root.titled(&self.title, text(20.0))?;
        let (width, _) = area.dim_in_pixel();
        let right = width as i32 - 20;
        let centred = |size: f64| text(size).pos(Pos::new(HPos::Center, VPos::Center));
        let base = mode_colour(&self.mode);
        let n = self.instances.len();

        // Memory row: slices are positions; an instance covers start..start + size.
        let memory_top = 40;
        let slice = (right - LEFT) as f64 / f64::from(self.memory_slices.max(1));
        let x = |s: f64| LEFT + (s * slice).round() as i32;
        area.draw(&Text::new(
            "memory slices",
            (10, memory_top + ROW_HEIGHT / 2 - 8),
            text(15.0),
        ))?;
        for s in 0..self.memory_slices {
            let held = self
                .instances
                .iter()
                .any(|i| (i.memory_start..i.memory_start + i.memory_slices).contains(&s));
            let (x0, x1) = (x(f64::from(s)), x(f64::from(s) + 1.0));
            area.draw(&Text::new(
                s.to_string(),
                ((x0 + x1) / 2, memory_top - 12),
                centred(15.0),
            ))?;
            if !held {
                self.unused(&area, (x0, memory_top), (x1, memory_top + ROW_HEIGHT))?;
            }
        }
        for (k, i) in self.instances.iter().enumerate() {
            let x0 = x(f64::from(i.memory_start));
            let x1 = x(f64::from(i.memory_start + i.memory_slices));
            self.instance(
                &area,
                k,
                n,
                base,
                i,
                (x0, memory_top),
                (x1, memory_top + ROW_HEIGHT),
            )?;
        }

        // Compute row: compute slices are a count, not a position; instances in order, then
        // the unused ones.
        let compute_top = memory_top + ROW_HEIGHT + 30;
        let slice = (right - LEFT) as f64 / f64::from(self.compute_slices.max(1));
        let x = |s: f64| LEFT + (s * slice).round() as i32;
        area.draw(&Text::new(
            "compute slices",
            (10, compute_top + ROW_HEIGHT / 2 - 8),
            text(15.0),
        ))?;
        let mut used = 0u8;
        for (k, i) in self.instances.iter().enumerate() {
            let (x0, x1) = (x(f64::from(used)), x(f64::from(used + i.compute_slices)));
            self.instance(
                &area,
                k,
                n,
                base,
                i,
                (x0, compute_top),
                (x1, compute_top + ROW_HEIGHT),
            )?;
            used += i.compute_slices;
        }
        for s in used..self.compute_slices {
            self.unused(
                &area,
                (x(f64::from(s)), compute_top),
                (x(f64::from(s) + 1.0), compute_top + ROW_HEIGHT),
            )?;
        }
        area.draw(&Text::new(
            self.summary.clone(),
            (LEFT, compute_top + ROW_HEIGHT + 24),
            text(15.0),
        ))?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn instance<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        k: usize,
        n: usize,
        base: RGBColor,
        i: &SliceBox,
        top_left: (i32, i32),
        bottom_right: (i32, i32),
    ) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let centred = |size: f64| text(size).pos(Pos::new(HPos::Center, VPos::Center));
        area.draw(&Rectangle::new(
            [top_left, bottom_right],
            shade(base, k, n).filled(),
        ))?;
        area.draw(&Rectangle::new(
            [top_left, bottom_right],
            WHITE.stroke_width(3),
        ))?;
        let cx = (top_left.0 + bottom_right.0) / 2;
        let cy = (top_left.1 + bottom_right.1) / 2;
        // Narrow instances (1g of 7) get the detail's parts on lines of their own, and any
        // line still wider than the box a smaller font, so no caption runs into its neighbour's.
        let room = (bottom_right.0 - top_left.0 - 10).max(10) as u32;
        let fits = |line: &str, size: f64| {
            area.estimate_text_size(line, &text(size))
                .is_ok_and(|(w, _)| w <= room)
        };
        let mut lines = vec![(i.label.clone(), 16.0)];
        let mut current = String::new();
        for part in i.detail.split(" · ") {
            let joined = if current.is_empty() {
                part.to_string()
            } else {
                format!("{current} · {part}")
            };
            if current.is_empty() || fits(&joined, 15.0) {
                current = joined;
            } else {
                lines.push((std::mem::replace(&mut current, part.to_string()), 15.0));
            }
        }
        if !current.is_empty() {
            lines.push((current, 15.0));
        }
        let step = 16;
        let first = cy - step * (lines.len() as i32 - 1) / 2;
        for (k, (line, size)) in lines.into_iter().enumerate() {
            let mut size: f64 = size;
            while size > 13.0 && !fits(&line, size) {
                size -= 1.0;
            }
            area.draw(&Text::new(
                line,
                (cx, first + step * k as i32),
                centred(size),
            ))?;
        }
        Ok(())
    }

    fn unused<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        top_left: (i32, i32),
        bottom_right: (i32, i32),
    ) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        area.draw(&Rectangle::new([top_left, bottom_right], UNUSED.filled()))?;
        area.draw(&Rectangle::new(
            [top_left, bottom_right],
            WHITE.stroke_width(3),
        ))?;
        area.draw(&Text::new(
            "unused",
            (
                (top_left.0 + bottom_right.0) / 2,
                (top_left.1 + bottom_right.1) / 2,
            ),
            text(15.0).pos(Pos::new(HPos::Center, VPos::Center)),
        ))?;
        Ok(())
    }
}
