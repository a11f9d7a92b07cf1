//! The report's plots, drawn with plotters: each chart is drawn once into SVG (for the HTML page
//! and `plots/*.svg`) and once into PNG (`plots/*.png`), by the same drawing code.
//!
//! PNG needs glyphs: plotters' default `ttf` feature asks fontconfig for a system font, which a
//! bare CI machine does not have. Instead the `ab_glyph` feature rasterises DejaVu Sans, bundled
//! in `assets/fonts` (Bitstream Vera licence, beside it) and compiled into the binary: no system
//! font, no C library, and the same metrics for laying out the SVG and the PNG. Rendering the
//! SVG with resvg would also work but pulls in a text shaper and a font database for the same
//! result.

mod bars;
mod curves;
mod layout;
mod legend;
mod palette;
mod percentiles;
mod scatter;
mod trend;
mod vram;

use std::error::Error as StdError;
use std::sync::OnceLock;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

pub use bars::{Bar, BarChart};
pub use curves::{Curve, CurveChart};
pub use layout::{LayoutChart, SliceBox};
pub use palette::{mode_colour, mode_hex, OOM_COLOUR};
pub use percentiles::{Group, PercentileChart, PercentilePanel};
pub use scatter::{pareto_front, Point, ScatterChart};
pub use trend::{TrendChart, TrendLine};
pub use vram::{JobLine, VramChart};

use crate::error::{Error, Result};

/// The font family every chart asks for; [`register_font`] maps it to the bundled font.
pub const FONT: &str = "sans-serif";
const FONT_BYTES: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// A rendered plot.
#[derive(Debug, Clone)]
pub struct Plot {
    /// File stem (`vram-h100-3x-ti2v-mps-together`), unique within a report.
    pub name: String,
    pub title: String,
    /// The heading of the report section it belongs to (`scenario · GPU · backend`); set by
    /// the report.
    pub section: String,
    pub svg: String,
    pub png: Vec<u8>,
}

type DrawResult = std::result::Result<(), Box<dyn StdError>>;

/// Every kind of chart the report draws.
#[derive(Debug, Clone)]
pub enum Chart {
    Bars(BarChart),
    Vram(VramChart),
    Layout(LayoutChart),
    Percentiles(PercentileChart),
    Scatter(ScatterChart),
    Trend(TrendChart),
    Curves(CurveChart),
}

impl Chart {
    pub fn name(&self) -> &str {
        match self {
            Chart::Bars(c) => &c.name,
            Chart::Vram(c) => &c.name,
            Chart::Layout(c) => &c.name,
            Chart::Percentiles(c) => &c.name,
            Chart::Scatter(c) => &c.name,
            Chart::Trend(c) => &c.name,
            Chart::Curves(c) => &c.name,
        }
    }

    pub fn title(&self) -> &str {
        match self {
            Chart::Bars(c) => &c.title,
            Chart::Vram(c) => &c.title,
            Chart::Layout(c) => &c.title,
            Chart::Percentiles(c) => &c.title,
            Chart::Scatter(c) => &c.title,
            Chart::Trend(c) => &c.title,
            Chart::Curves(c) => &c.title,
        }
    }

    fn size(&self) -> (u32, u32) {
        match self {
            Chart::Layout(_) => (960, 360),
            Chart::Percentiles(c) => (960, 60 + 330 * c.panels.len().max(1) as u32),
            _ => (960, 540),
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        match self {
            Chart::Bars(c) => c.draw(root),
            Chart::Vram(c) => c.draw(root),
            Chart::Layout(c) => c.draw(root),
            Chart::Percentiles(c) => c.draw(root),
            Chart::Scatter(c) => c.draw(root),
            Chart::Trend(c) => c.draw(root),
            Chart::Curves(c) => c.draw(root),
        }
    }

    /// Draws the chart as SVG and as PNG.
    pub fn render(&self) -> Result<Plot> {
        register_font()?;
        let fail = |format: &str, e: Box<dyn StdError>| {
            Error::Harness(format!("cannot draw {} as {format}: {e}", self.name()))
        };
        let (width, height) = self.size();
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
            self.draw(&root).map_err(|e| fail("SVG", e))?;
            root.present().map_err(|e| fail("SVG", e.into()))?;
        }
        let mut pixels = vec![0u8; width as usize * height as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
            self.draw(&root).map_err(|e| fail("PNG", e))?;
            root.present().map_err(|e| fail("PNG", e.into()))?;
        }
        Ok(Plot {
            name: self.name().to_string(),
            title: self.title().to_string(),
            section: String::new(),
            svg,
            png: encode_png(&pixels, width, height).map_err(|e| fail("PNG", e))?,
        })
    }
}

/// Renders the charts on every core (plots are independent), in the order given.
pub fn render_all(charts: &[Chart]) -> Result<Vec<Plot>> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = charts.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = charts
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(Chart::render).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a plot thread does not panic"))
            .collect()
    })
}

fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(Error::Harness(
            "the bundled font DejaVuSans.ttf cannot be read".into(),
        ))
    }
}

fn encode_png(
    rgb: &[u8],
    width: u32,
    height: u32,
) -> std::result::Result<Vec<u8>, Box<dyn StdError>> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(out)
}

/// `H100 3x/TI2V` → `h100-3x-ti2v`: a file-name-safe form of a label.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// A chart with numbers on both axes (categories on x are numbered 0, 1, 2, ...).
type Plane<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws the axes, their descriptions and the horizontal grid in the style every chart shares.
/// With `categories`, the x axis names them at 0, 1, 2, ... and has no vertical grid lines.
fn draw_axes<'a, DB: DrawingBackend + 'a>(
    chart: &mut Plane<'a, DB>,
    x_desc: &str,
    y_desc: &str,
    categories: Option<&[String]>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let label_of = |x: &f64| categories.map_or_else(String::new, |c| category_label(c, *x));
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(x_desc)
        .y_desc(y_desc)
        .label_style(text(15.0))
        .axis_desc_style(text(15.0))
        .light_line_style(WHITE.mix(0.0));
    if let Some(c) = categories {
        mesh.disable_x_mesh()
            .x_labels(c.len() + 1)
            .x_label_formatter(&label_of);
    }
    mesh.draw()?;
    Ok(())
}

/// Draws the labelled series' legend in the upper right corner of the plot.
fn draw_series_legend<'a, DB: DrawingBackend + 'a>(chart: &mut Plane<'a, DB>) -> DrawResult
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .label_font(text(15.0))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    Ok(())
}

/// The distinct modes of `modes`, in order of first appearance: the order of a legend.
fn distinct<'a>(modes: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for m in modes {
        if !out.contains(&m) {
            out.push(m);
        }
    }
    out
}

/// The top of a value axis: `room` times the highest value, leaving space above it for
/// labels; 1 when there is nothing to show.
fn axis_top(highest: f64, room: f64) -> f64 {
    if highest > 0.0 {
        highest * room
    } else {
        1.0
    }
}

/// The label of the tick at `x` on an axis of categories: category i stands over
/// `[i - 0.5, i + 0.5]`, so its name goes on the whole number i and other ticks get none.
fn category_label(labels: &[String], x: f64) -> String {
    let i = x.round();
    if (x - i).abs() > 1e-6 || i < 0.0 {
        return String::new();
    }
    labels.get(i as usize).cloned().unwrap_or_default()
}

/// Text styles shared by the charts.
fn text(size: f64) -> TextStyle<'static> {
    (FONT, size).into_font().color(&BLACK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_file_name_safe() {
        assert_eq!(slug("h100-3x-ti2v"), "h100-3x-ti2v");
        assert_eq!(slug("MIG 2×3g / b"), "mig-2-3g-b");
    }
}
