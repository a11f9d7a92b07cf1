//! One labelled point per variant, coloured by mode, with the Pareto front (the points no other
//! point beats on both axes) joined by a dashed line: the view of a `vllm bench` sweep, where
//! more of both is better.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::palette::mode_colour;
use super::{axis_top, distinct, draw_axes, draw_series_legend, text, DrawResult};

#[derive(Debug, Clone)]
pub struct Point {
    pub label: String,
    /// Sharing mode: the point's colour.
    pub mode: String,
    pub x: f64,
    pub y: f64,
}

#[derive(Debug, Clone)]
pub struct ScatterChart {
    pub name: String,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub points: Vec<Point>,
}

const FRONT: RGBColor = RGBColor(0x55, 0x55, 0x55);

/// Indices of the points no other point matches or beats on both axes (higher is better on
/// both), in order of x.
pub fn pareto_front(points: &[Point]) -> Vec<usize> {
    let beaten = |i: usize| {
        let p = &points[i];
        points
            .iter()
            .enumerate()
            .any(|(j, q)| j != i && q.x >= p.x && q.y >= p.y && (q.x > p.x || q.y > p.y || j < i))
    };
    let mut front: Vec<usize> = (0..points.len()).filter(|&i| !beaten(i)).collect();
    front.sort_by(|&a, &b| points[a].x.total_cmp(&points[b].x));
    front
}

impl ScatterChart {
    pub(super) fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let x_max = self.points.iter().map(|p| p.x).fold(0.0, f64::max);
        let y_max = self.points.iter().map(|p| p.y).fold(0.0, f64::max);
        // Room right of the points for their labels, and above them for the legend.
        let (x_top, y_top) = (axis_top(x_max, 1.3), axis_top(y_max, 1.3));
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, text(20.0))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(72)
            .build_cartesian_2d(0f64..x_top, 0f64..y_top)?;
        draw_axes(&mut chart, &self.x_label, &self.y_label, None)?;

        let front: Vec<(f64, f64)> = pareto_front(&self.points)
            .into_iter()
            .map(|i| (self.points[i].x, self.points[i].y))
            .collect();
        if front.len() > 1 {
            chart
                .draw_series(DashedLineSeries::new(front, 8, 5, FRONT.stroke_width(2)))?
                .label("Pareto front")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], FRONT.stroke_width(2)));
        }
        for mode in distinct(self.points.iter().map(|p| p.mode.as_str())) {
            let colour = mode_colour(mode);
            let mine = self.points.iter().filter(|p| p.mode == mode);
            chart
                .draw_series(mine.map(|p| {
                    EmptyElement::at((p.x, p.y))
                        + Circle::new((0, 0), 7, colour.filled())
                        + Circle::new((0, 0), 7, BLACK.stroke_width(1))
                        + Text::new(
                            p.label.clone(),
                            (10, 0),
                            text(15.0).pos(Pos::new(HPos::Left, VPos::Center)),
                        )
                }))?
                .label(mode)
                .legend(move |(x, y)| Circle::new((x + 7, y), 6, colour.filled()));
        }
        draw_series_legend(&mut chart)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(xy: &[(f64, f64)]) -> Vec<Point> {
        xy.iter()
            .enumerate()
            .map(|(i, &(x, y))| Point {
                label: format!("p{i}"),
                mode: "mps".into(),
                x,
                y,
            })
            .collect()
    }

    #[test]
    fn the_front_holds_the_points_nothing_beats_on_both_axes() {
        // p1 is beaten by p0 (more per user and per GPU); p3 ties p2 and comes later.
        let p = points(&[
            (100.0, 750.0),
            (40.0, 560.0),
            (27.0, 1100.0),
            (27.0, 1100.0),
        ]);
        assert_eq!(pareto_front(&p), vec![2, 0]);
        assert_eq!(pareto_front(&points(&[])), Vec::<usize>::new());
        assert_eq!(pareto_front(&points(&[(1.0, 1.0)])), vec![0]);
    }
}
