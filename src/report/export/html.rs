//! `report.html`: one self-contained page — the tables, the warnings and every plot as inline
//! SVG, with its style inline. It references no other file and nothing on the network, so it
//! opens offline in any browser and can be mailed or attached as it is.

use super::{Exporter, Part};
use crate::error::Result;
use crate::report::plots::mode_hex;
use crate::report::table::{Kind, Role, Table};
use crate::report::{Report, SIMULATED_NOTE};

pub struct Html;

pub const STYLE: &str =
    "body{font-family:sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:0.5em 0 1em}
th,td{padding:0.25em 0.6em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
th{border-bottom:2px solid #555}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.swatch{display:inline-block;width:0.8em;height:0.8em;margin-right:0.4em;border-radius:2px}
.simulated{background:#fff4e0;border-left:4px solid #e69f00;padding:0.5em 1em}
.note{color:#555;font-size:0.9em}
figure{margin:1.5em 0}
figure svg{max-width:100%;height:auto}
figcaption{color:#555;font-size:0.9em}";

impl Exporter for Html {
    fn export(&self, report: &Report) -> Result<Vec<Part>> {
        let data = &report.data;
        let mut out = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>migbench report</title>\n<style>\n{STYLE}\n</style>\n</head>\n<body>\n<h1>migbench report</h1>\n<p>{} runs, generated {} by migbench {}.</p>\n",
            data.runs.len(),
            escape(&data.generated_at),
            escape(&data.migbench_version)
        );
        if data.variants.iter().any(|v| v.origin.simulated) {
            out.push_str(&format!(
                "<p class=\"simulated\">{}</p>\n",
                escape(SIMULATED_NOTE)
            ));
        }
        for t in &report.tables {
            out.push_str(&format!("<h2>{}</h2>\n{}", escape(&t.title), render(t)));
        }
        out.push_str(&warnings(&data.warnings));
        out.push_str("<h2>Plots</h2>\n");
        for p in &report.plots {
            out.push_str(&figure(p));
        }
        out.push_str("</body>\n</html>\n");
        Ok(vec![Part::new("report.html", out)])
    }
}

/// The warnings section; nothing without warnings.
pub fn warnings(warnings: &[String]) -> String {
    if warnings.is_empty() {
        return String::new();
    }
    let items: String = warnings
        .iter()
        .map(|w| format!("<li>{}</li>\n", escape(w)))
        .collect();
    format!("<h2>Warnings</h2>\n<ul>\n{items}</ul>\n")
}

/// A plot as a figure of the page, its title the caption.
pub fn figure(p: &crate::report::plots::Plot) -> String {
    format!(
        "<figure id=\"{}\">\n{}\n<figcaption>{}</figcaption>\n</figure>\n",
        escape(&p.name),
        inline_svg(&p.svg),
        escape(&p.title)
    )
}

/// An SVG document as an element of the page. HTML puts `<svg>` in the SVG namespace by
/// itself, so the namespace declaration (a URL, though never fetched) is dropped, as is
/// anything before the element.
pub fn inline_svg(svg: &str) -> String {
    let start = svg.find("<svg").unwrap_or(0);
    svg[start..].replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
}

pub fn render(table: &Table) -> String {
    let columns = table.columns_with(&[Role::Brief, Role::Detail]);
    let class = |c: usize| {
        if table.columns[c].numeric() {
            " class=\"num\""
        } else {
            ""
        }
    };
    let mut out = String::new();
    for (heading, rows) in table.groups() {
        if !heading.is_empty() {
            out.push_str(&format!("<h3>{}</h3>\n", escape(&heading)));
        }
        out.push_str("<table>\n<thead><tr>");
        for &c in &columns {
            out.push_str(&format!(
                "<th{}>{}</th>",
                class(c),
                escape(&table.columns[c].title())
            ));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for &r in &rows {
            out.push_str("<tr>");
            for &c in &columns {
                let text = escape(&table.display(c, &table.rows[r][c]));
                let cell = if table.columns[c].kind == Kind::Mode {
                    format!(
                        "<span class=\"swatch\" style=\"background:{}\"></span>{text}",
                        mode_hex(&text)
                    )
                } else {
                    text
                };
                out.push_str(&format!("<td{}>{cell}</td>", class(c)));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
    }
    for note in &table.notes {
        out.push_str(&format!("<p class=\"note\">{}</p>\n", escape(note)));
    }
    out
}

/// Text as HTML (and XML) content or attribute value.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}
