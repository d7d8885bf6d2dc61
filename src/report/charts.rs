//! The chart kinds of the report, drawn with plotters' SVG backend: bars
//! (vertical and horizontal), lines, a scatter plot and grouped bars on a
//! log scale. Each returns one `<svg>` element as text.
//!
//! So that a chart's marks can be counted (the browser test does), every
//! bar is one `<rect>`, every point one `<circle>`, every line one
//! `<polyline>` with `stroke-width="2"` (axes and ticks are polylines of
//! width 1), and nothing else in a chart is drawn with those: legends are
//! HTML next to the SVG, and the background is the page's.

use super::format;
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub const WIDTH: u32 = 760;
pub const HEIGHT: u32 = 300;
const FONT: &str = "sans-serif";
/// How a data line is written (see the module comment).
pub const SERIES_STROKE: &str = "stroke-width=\"2\"";
/// plotters' SVG backend writes a font of size `s` as `s / 1.24` pixels:
/// sizes below are chosen for 12-13 px text.
const SMALL: u32 = 14;
const NORMAL: u32 = 15;
const LARGE: u32 = 16;

/// Okabe–Ito colours: distinguishable with the common colour-vision
/// deficiencies, and in grey print.
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(120, 120, 120),
];

pub fn hex(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

fn label_style(size: u32) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font()).color(&RGBColor(40, 40, 40))
}

/// A bar chart: one bar per category.
pub struct Bars<'a> {
    pub labels: &'a [String],
    pub values: &'a [f64],
    /// The category axis' description.
    pub category_desc: &'a str,
    /// The value axis' description, with its unit.
    pub value_desc: &'a str,
    /// Text at the end of each bar (none when empty).
    pub annotations: Vec<String>,
    /// Show every n-th category label (vertical bars).
    pub label_every: usize,
    pub color: RGBColor,
}

impl<'a> Bars<'a> {
    pub fn new(
        labels: &'a [String],
        values: &'a [f64],
        category_desc: &'a str,
        value_desc: &'a str,
    ) -> Self {
        Bars {
            labels,
            values,
            category_desc,
            value_desc,
            annotations: Vec::new(),
            label_every: 1,
            color: PALETTE[0],
        }
    }
    pub fn notes(mut self, annotations: Vec<String>) -> Self {
        self.annotations = annotations;
        self
    }
    pub fn every(mut self, n: usize) -> Self {
        self.label_every = n;
        self
    }
    /// The bars' colour, an index into [`PALETTE`].
    pub fn color(mut self, index: usize) -> Self {
        self.color = PALETTE[index % PALETTE.len()];
        self
    }
}

fn max_of(values: &[f64]) -> f64 {
    values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
}

fn draw(
    body: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<()>,
    height: u32,
) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        body(&root)?;
        root.present()?;
    }
    Ok(svg)
}

/// Vertical bars, for ordered categories (hours, dates, sizes, bins).
/// Category i spans x in [i, i + 1]; its label is drawn under the axis
/// (numeric coordinates behave the same for one bar as for a hundred).
pub fn vertical_bars(b: &Bars) -> Result<String> {
    let n = b.values.len();
    let head = if b.annotations.is_empty() { 1.0 } else { 1.15 };
    let top = format::nice_ceiling(max_of(b.values) * head);
    draw(
        |root| {
            let mut chart = ChartBuilder::on(root)
                .margin_top(14)
                .margin_right(16)
                .margin_left(6)
                .x_label_area_size(46)
                .y_label_area_size(76)
                .build_cartesian_2d(0f64..n as f64, 0f64..top)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .light_line_style(TRANSPARENT)
                .bold_line_style(RGBColor(225, 225, 225))
                .x_labels(0)
                .y_labels(6)
                .y_label_formatter(&|v| format::axis(*v, top / 5.0))
                .x_desc(b.category_desc)
                .y_desc(b.value_desc)
                .label_style(label_style(NORMAL))
                .axis_desc_style(label_style(LARGE))
                .draw()?;
            let gap = if n > 40 { 0.0 } else { 0.08 };
            chart.draw_series(b.values.iter().enumerate().map(|(i, v)| {
                Rectangle::new(
                    [(i as f64 + gap, 0.0), (i as f64 + 1.0 - gap, *v)],
                    b.color.filled(),
                )
            }))?;
            if !b.annotations.is_empty() {
                let style = label_style(SMALL).pos(Pos::new(HPos::Center, VPos::Bottom));
                chart.draw_series(b.values.iter().enumerate().map(|(i, v)| {
                    Text::new(
                        b.annotations[i].clone(),
                        (i as f64 + 0.5, *v),
                        style.clone(),
                    )
                }))?;
            }
            let style = label_style(NORMAL).pos(Pos::new(HPos::Center, VPos::Top));
            let every = b.label_every.max(1);
            for (i, label) in b.labels.iter().enumerate().step_by(every) {
                let (x, y) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
                root.draw(&Text::new(label.clone(), (x, y + 5), style.clone()))?;
            }
            Ok(())
        },
        HEIGHT,
    )
}

/// Horizontal bars, for named categories (event types, brands): the first
/// category at the top, its name left of the axis.
pub fn horizontal_bars(b: &Bars) -> Result<String> {
    let n = b.values.len();
    let head = if b.annotations.is_empty() { 1.0 } else { 1.25 };
    let top = format::nice_ceiling(max_of(b.values) * head);
    // Negative values (a mean score can be) extend the axis to the left.
    let low = b
        .values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::min);
    let low = if low < 0.0 {
        -format::nice_ceiling(-low * head)
    } else {
        0.0
    };
    let longest = b
        .labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(4) as u32;
    let height = (70 + 26 * n as u32).clamp(130, 520);
    draw(
        |root| {
            let mut chart = ChartBuilder::on(root)
                .margin_top(10)
                .margin_right(24)
                .margin_left(6)
                .x_label_area_size(44)
                .y_label_area_size((34 + 7 * longest).clamp(70, 240))
                .build_cartesian_2d(low..top, 0f64..n as f64)?;
            chart
                .configure_mesh()
                .disable_y_mesh()
                .light_line_style(TRANSPARENT)
                .bold_line_style(RGBColor(225, 225, 225))
                .y_labels(0)
                .x_labels(6)
                .x_label_formatter(&|v| format::axis(*v, (top - low) / 5.0))
                .x_desc(b.value_desc)
                .y_desc(b.category_desc)
                .label_style(label_style(NORMAL))
                .axis_desc_style(label_style(LARGE))
                .draw()?;
            // Row i (from the top) spans y in [n - 1 - i, n - i].
            let row = |i: usize| (n - 1 - i) as f64;
            chart.draw_series(b.values.iter().enumerate().map(|(i, v)| {
                Rectangle::new(
                    [(0.0, row(i) + 0.15), (*v, row(i) + 0.85)],
                    b.color.filled(),
                )
            }))?;
            if !b.annotations.is_empty() {
                let style = label_style(SMALL).pos(Pos::new(HPos::Left, VPos::Center));
                chart.draw_series(b.values.iter().enumerate().map(|(i, v)| {
                    EmptyElement::at((v.max(0.0), row(i) + 0.5))
                        + Text::new(b.annotations[i].clone(), (5, 0), style.clone())
                }))?;
            }
            let style = label_style(NORMAL).pos(Pos::new(HPos::Right, VPos::Center));
            for (i, label) in b.labels.iter().enumerate() {
                let (x, y) = chart.backend_coord(&(low, row(i) + 0.5));
                root.draw(&Text::new(label.clone(), (x - 6, y), style.clone()))?;
            }
            Ok(())
        },
        height,
    )
}

/// One line per series over a numeric x axis (e.g. a histogram's bins).
pub struct Lines<'a> {
    pub series: &'a [(String, Vec<(f64, f64)>)],
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    pub x_range: (f64, f64),
}

pub fn lines(l: &Lines) -> Result<String> {
    let top = format::nice_ceiling(
        l.series
            .iter()
            .flat_map(|(_, p)| p.iter().map(|q| q.1))
            .fold(0.0, f64::max),
    );
    let (x0, x1) = l.x_range;
    draw(
        |root| {
            let mut chart = ChartBuilder::on(root)
                .margin_top(14)
                .margin_right(24)
                .margin_left(6)
                .x_label_area_size(46)
                .y_label_area_size(76)
                .build_cartesian_2d(x0..x1, 0f64..top)?;
            chart
                .configure_mesh()
                .light_line_style(TRANSPARENT)
                .bold_line_style(RGBColor(225, 225, 225))
                .x_labels(8)
                .x_label_formatter(&|v| format::axis(*v, (x1 - x0) / 8.0))
                .y_labels(6)
                .y_label_formatter(&|v| format::axis(*v, top / 5.0))
                .x_desc(l.x_desc)
                .y_desc(l.y_desc)
                .label_style(label_style(NORMAL))
                .axis_desc_style(label_style(LARGE))
                .draw()?;
            for (i, (_, points)) in l.series.iter().enumerate() {
                let color = PALETTE[i % PALETTE.len()];
                chart.draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))?;
            }
            Ok(())
        },
        HEIGHT,
    )
}

/// A scatter plot: one small circle per point.
pub struct Scatter<'a> {
    pub points: &'a [(f64, f64)],
    pub x_desc: &'a str,
    pub y_desc: &'a str,
}

pub fn scatter(s: &Scatter) -> Result<String> {
    let x1 = format::nice_ceiling(s.points.iter().map(|p| p.0).fold(0.0, f64::max));
    let (lo, hi) = s
        .points
        .iter()
        .map(|p| p.1)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
            (a.min(y), b.max(y))
        });
    let (y0, y1) = if lo.is_finite() && hi > lo {
        let pad = (hi - lo) * 0.05;
        (lo - pad, hi + pad)
    } else if lo.is_finite() {
        (lo - 0.5, lo + 0.5)
    } else {
        (0.0, 1.0)
    };
    draw(
        |root| {
            let mut chart = ChartBuilder::on(root)
                .margin_top(14)
                .margin_right(24)
                .margin_left(6)
                .x_label_area_size(46)
                .y_label_area_size(76)
                .build_cartesian_2d(0f64..x1, y0..y1)?;
            chart
                .configure_mesh()
                .light_line_style(TRANSPARENT)
                .bold_line_style(RGBColor(225, 225, 225))
                .x_labels(8)
                .x_label_formatter(&|v| format::axis(*v, x1 / 8.0))
                .y_labels(6)
                .y_label_formatter(&|v| format::axis(*v, (y1 - y0) / 6.0))
                .x_desc(s.x_desc)
                .y_desc(s.y_desc)
                .label_style(label_style(NORMAL))
                .axis_desc_style(label_style(LARGE))
                .draw()?;
            let color = PALETTE[0].mix(0.45).filled();
            chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 2, color)))?;
            Ok(())
        },
        HEIGHT,
    )
}

/// Grouped bars on a log scale around 1: for each group (a feature), one
/// bar per series (a segment) from 1 to its value, so a bar above the line
/// is above average and one below is below.
pub struct GroupedRatios<'a> {
    pub groups: &'a [String],
    /// `values[series][group]`.
    pub values: &'a [Vec<f64>],
    pub y_desc: &'a str,
}

pub fn grouped_ratios(g: &GroupedRatios) -> Result<String> {
    let finite = || {
        g.values
            .iter()
            .flatten()
            .copied()
            .filter(|v| v.is_finite() && *v > 0.0)
    };
    let lo = finite().fold(1.0, f64::min).max(1e-3);
    let hi = finite().fold(1.0, f64::max).min(1e3);
    let y0 = 10f64.powf(lo.log10().floor().min(-1.0));
    let y1 = 10f64.powf(hi.log10().ceil().max(1.0));
    let groups = g.groups.len();
    let series = g.values.len().max(1);
    draw(
        |root| {
            let mut chart = ChartBuilder::on(root)
                .margin_top(14)
                .margin_right(16)
                .margin_left(6)
                .x_label_area_size(40)
                .y_label_area_size(76)
                .build_cartesian_2d(0f64..groups as f64, (y0..y1).log_scale())?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .light_line_style(TRANSPARENT)
                .bold_line_style(RGBColor(225, 225, 225))
                .x_labels(0)
                .y_label_formatter(&|v| format::axis(*v, *v / 2.0))
                .y_desc(g.y_desc)
                .label_style(label_style(NORMAL))
                .axis_desc_style(label_style(LARGE))
                .draw()?;
            let width = 0.8 / series as f64;
            for (s, values) in g.values.iter().enumerate() {
                let color = PALETTE[s % PALETTE.len()].filled();
                chart.draw_series(values.iter().enumerate().map(|(i, v)| {
                    let v = if v.is_finite() && *v > 0.0 {
                        v.clamp(y0, y1)
                    } else {
                        y0
                    };
                    let x = i as f64 + 0.1 + s as f64 * width;
                    Rectangle::new([(x, 1.0), (x + width * 0.9, v)], color)
                }))?;
            }
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(0.0, 1.0), (groups as f64, 1.0)],
                BLACK.stroke_width(1),
            )))?;
            // Group names under the axis, in two lines (words split at `_`).
            let style = label_style(SMALL).pos(Pos::new(HPos::Center, VPos::Top));
            for (i, name) in g.groups.iter().enumerate() {
                let (x, y) = chart.backend_coord(&(i as f64 + 0.5, y0));
                let words: Vec<&str> = name.splitn(2, '_').collect();
                for (line, word) in words.iter().enumerate() {
                    root.draw(&Text::new(
                        word.to_string(),
                        (x, y + 6 + 13 * line as i32),
                        style.clone(),
                    ))?;
                }
            }
            Ok(())
        },
        HEIGHT,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(svg: &str, tag: &str) -> usize {
        svg.matches(&format!("<{tag} ")).count()
    }
    fn series_lines(svg: &str) -> usize {
        svg.lines()
            .filter(|l| l.starts_with("<polyline ") && l.contains(SERIES_STROKE))
            .count()
    }

    #[test]
    fn every_bar_is_one_rect_and_nothing_else_is() {
        let labels: Vec<String> = ["view", "cart", "purchase"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let values = [1200.0, 30.0, 0.0];
        let b = Bars {
            labels: &labels,
            values: &values,
            category_desc: "event type",
            value_desc: "events",
            annotations: vec!["a".into(), "b".into(), "c".into()],
            label_every: 1,
            color: PALETTE[0],
        };
        for svg in [vertical_bars(&b).unwrap(), horizontal_bars(&b).unwrap()] {
            assert_eq!(count(&svg, "rect"), 3, "{svg}");
            assert_eq!(count(&svg, "circle"), 0);
            assert!(svg.contains("\npurchase\n</text>"), "{svg}");
        }
    }

    #[test]
    fn one_bar_and_negative_values_draw_valid_rectangles() {
        let labels = vec!["10-01".to_string()];
        for values in [[17434.0], [-0.25]] {
            let b = Bars {
                labels: &labels,
                values: &values,
                category_desc: "date",
                value_desc: "events",
                annotations: vec![],
                label_every: 1,
                color: PALETTE[0],
            };
            for svg in [vertical_bars(&b).unwrap(), horizontal_bars(&b).unwrap()] {
                assert_eq!(count(&svg, "rect"), 1);
                assert!(
                    !svg.contains("width=\"-") && !svg.contains("height=\"-"),
                    "{svg}"
                );
                assert!(svg.contains("\n10-01\n</text>"), "{svg}");
            }
        }
    }

    #[test]
    fn lines_scatter_and_groups_draw_one_mark_per_item() {
        let series = vec![
            ("view".to_string(), vec![(0.0, 1.0), (1.0, 2.0)]),
            ("cart".to_string(), vec![(0.0, 0.5)]),
        ];
        let svg = lines(&Lines {
            series: &series,
            x_desc: "x",
            y_desc: "y",
            x_range: (0.0, 2.0),
        })
        .unwrap();
        assert_eq!(series_lines(&svg), 2, "{svg}");
        let points = [(1.0, 0.2), (2.0, 0.4), (300.0, 0.9), (5.0, -0.1)];
        let svg = scatter(&Scatter {
            points: &points,
            x_desc: "price",
            y_desc: "score",
        })
        .unwrap();
        assert_eq!(count(&svg, "circle"), 4);
        assert_eq!(count(&svg, "rect"), 0);
        let groups: Vec<String> = ["recency", "unique_products"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let values = vec![vec![0.5, 2.0], vec![30.0, f64::NAN], vec![1.0, 0.0]];
        let svg = grouped_ratios(&GroupedRatios {
            groups: &groups,
            values: &values,
            y_desc: "ratio",
        })
        .unwrap();
        assert_eq!(count(&svg, "rect"), 6);
        assert!(
            svg.contains("\nunique\n</text>") && svg.contains("\nproducts\n</text>"),
            "{svg}"
        );
    }
}
