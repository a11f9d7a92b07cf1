//! A legend drawn in its own area right of a plot, where it hides nothing that is plotted.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{text, DrawResult};

/// Pixels kept right of the plot for the legend.
pub const LEGEND_WIDTH: u32 = 250;

const FOOTNOTE: RGBColor = RGBColor(0x77, 0x77, 0x77);

/// How a legend entry is marked.
pub enum Mark {
    Line(RGBColor, u32),
    Dashed(RGBColor),
    Cross(RGBColor),
    /// A filled box, as a bar.
    Filled(RGBColor),
    /// A box filled with the first colour and outlined with the second.
    Outlined(RGBColor, RGBColor),
}

/// The entries one per row from the top of `area`, then `footnote` in grey.
pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(Mark, String)],
    footnote: &str,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let row = 22;
    let line = 16;
    let (width, _) = area.dim_in_pixel();
    let mut y = 24;
    for (mark, label) in entries {
        let the_box = [(8, y - 7), (24, y + 7)];
        match mark {
            Mark::Line(colour, width) => area.draw(&PathElement::new(
                [(4, y), (28, y)],
                colour.stroke_width(*width),
            ))?,
            Mark::Dashed(colour) => {
                for x in [4, 18] {
                    area.draw(&PathElement::new(
                        [(x, y), (x + 10, y)],
                        colour.stroke_width(2),
                    ))?;
                }
            }
            Mark::Cross(colour) => area.draw(&Cross::new((16, y), 6, colour.stroke_width(3)))?,
            Mark::Filled(colour) => area.draw(&Rectangle::new(the_box, colour.filled()))?,
            Mark::Outlined(fill, line) => {
                area.draw(&Rectangle::new(the_box, fill.filled()))?;
                area.draw(&Rectangle::new(the_box, line.stroke_width(2)))?;
            }
        }
        let lines = wrap(area, label, width.saturating_sub(40));
        for (k, words) in lines.iter().enumerate() {
            area.draw(&Text::new(
                words.clone(),
                (36, y + line * k as i32),
                text(15.0).pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
        }
        y += row + line * (lines.len() as i32 - 1);
    }
    let y = y + 12;
    for (k, line) in footnote.lines().enumerate() {
        area.draw(&Text::new(
            line.to_string(),
            (4, y + 18 * k as i32),
            text(15.0).color(&FOOTNOTE),
        ))?;
    }
    Ok(())
}

/// `label` in lines no wider than `room` pixels, broken after its commas and spaces (a list of
/// MIG instances is long), so a legend entry is never cut off at the plot's edge.
fn wrap<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, label: &str, room: u32) -> Vec<String> {
    let fits = |s: &str| {
        area.estimate_text_size(s, &text(15.0))
            .is_ok_and(|(w, _)| w <= room)
    };
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in label.split_inclusive(' ') {
        let joined = format!("{current}{word}");
        if current.is_empty() || fits(joined.trim_end()) {
            current = joined;
        } else {
            lines.push(current.trim_end().to_string());
            current = word.to_string();
        }
    }
    if !current.trim().is_empty() {
        lines.push(current.trim_end().to_string());
    }
    lines
}
