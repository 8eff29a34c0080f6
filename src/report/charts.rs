//! The report's charts, drawn with plotters into SVG strings.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

const WIDTH: u32 = 560;
const HEIGHT: u32 = 320;

/// The main run's colour (Okabe–Ito blue) and the compared run's (vermillion).
pub const MAIN: RGBColor = RGBColor(0x00, 0x72, 0xB2);
/// Colour of a compared run.
pub const OTHER: RGBColor = RGBColor(0xD5, 0x5E, 0x00);
/// One colour per cell, for charts with a line per cell.
pub const CELLS: [RGBColor; 6] = [
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0x00, 0x00, 0x00),
];

/// One line of a line chart: a value per iteration.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend text; empty leaves the line out of the legend.
    pub label: String,
    /// (iteration, value) pairs.
    pub points: Vec<(f64, f64)>,
    /// Line colour.
    pub colour: RGBColor,
    /// Dashed (a compared run) or solid.
    pub dashed: bool,
}

/// A horizontal reference line, such as a memory budget.
#[derive(Clone, Debug)]
pub struct Guide {
    /// Legend text.
    pub label: String,
    /// Its height on the y axis.
    pub value: f64,
    /// Line colour.
    pub colour: RGBColor,
}

/// Stacked training and scoring time of one run's iterations.
#[derive(Clone, Debug)]
pub struct TimeBars {
    /// Legend prefix (the run's name).
    pub label: String,
    /// (iteration, training seconds, scoring seconds).
    pub iterations: Vec<(f64, f64, f64)>,
    /// Colour of the training part; the scoring part is a lighter shade.
    pub colour: RGBColor,
}

/// A scored candidate: its two ratios, and whether it was the split chosen for its cell.
#[derive(Clone, Copy, Debug)]
pub struct ScoredPoint {
    /// (κ_on − κ_off)/κ_off.
    pub r_ntk: f64,
    /// (LRC_on − LRC_off)/LRC_off.
    pub r_lrc: f64,
    /// Chosen for its cell.
    pub chosen: bool,
    /// Accepted (r_ntk ≤ 0 < r_lrc).
    pub accepted: bool,
}

/// A legend label, a marker style, and which points it marks.
type PointGroup = (&'static str, ShapeStyle, fn(&ScoredPoint) -> bool);

fn failed<E: std::fmt::Display>(error: E) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {error}")
}

/// A range around `values` with some headroom, never empty.
fn padded_range(values: impl Iterator<Item = f64>, include_zero: bool) -> (f64, f64) {
    let (mut low, mut high) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    if !low.is_finite() {
        return (0.0, 1.0);
    }
    if include_zero {
        low = low.min(0.0);
        high = high.max(0.0);
    }
    let span = if high > low { high - low } else { high.abs().max(1.0) };
    (
        if include_zero && low >= 0.0 {
            0.0
        } else {
            low - 0.08 * span
        },
        high + 0.08 * span,
    )
}

/// Decimals that tell apart the labels of an axis spanning `span`.
fn decimals(span: f64) -> usize {
    if span > 0.0 && span.is_finite() {
        (2.0 - span.log10().floor()).clamp(0.0, 6.0) as usize
    } else {
        2
    }
}

/// A ratio label with `places` decimals, without the "-0.00" that rounding produces near zero.
fn signed(value: f64, places: usize) -> String {
    let text = format!("{value:.places$}");
    if text.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
        text.trim_start_matches('-').to_string()
    } else {
        text
    }
}

fn iteration_label(x: &f64) -> String {
    if (x - x.round()).abs() < 1e-6 {
        format!("{:.0}", x)
    } else {
        String::new()
    }
}

/// The corner where the legend hides the fewest points of `lines` (sampled along each segment), in a plot
/// spanning `x` and `y`.
fn quiet_corner(lines: &[Vec<(f64, f64)>], x: (f64, f64), y: (f64, f64), legend_rows: usize) -> SeriesLabelPosition {
    let box_height = (0.1 + 0.07 * legend_rows as f64).min(0.6);
    let mut samples = Vec::new();
    for line in lines {
        samples.extend(line.iter().copied());
        for pair in line.windows(2) {
            for step in 1..10 {
                let t = step as f64 / 10.0;
                samples.push((
                    pair[0].0 + t * (pair[1].0 - pair[0].0),
                    pair[0].1 + t * (pair[1].1 - pair[0].1),
                ));
            }
        }
    }
    let normalised: Vec<(f64, f64)> = samples
        .iter()
        .map(|&(px, py)| ((px - x.0) / (x.1 - x.0), (py - y.0) / (y.1 - y.0)))
        .collect();
    let hidden = |left: bool, top: bool| {
        normalised
            .iter()
            .filter(|&&(u, v)| {
                (if left { u < 0.5 } else { u > 0.5 }) && (if top { v > 1.0 - box_height } else { v < box_height })
            })
            .count()
    };
    [
        (SeriesLabelPosition::UpperLeft, hidden(true, true)),
        (SeriesLabelPosition::UpperRight, hidden(false, true)),
        (SeriesLabelPosition::LowerRight, hidden(false, false)),
        (SeriesLabelPosition::LowerLeft, hidden(true, false)),
    ]
    .into_iter()
    .min_by_key(|(_, count)| *count)
    .map(|(corner, _)| corner)
    .unwrap_or(SeriesLabelPosition::UpperLeft)
}

/// A chart drawn in SVG with f64 axes.
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The plotting area of every chart: title, margins and label room, over the given axis ranges.
fn chart_area<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    title: &str,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
) -> anyhow::Result<Chart<'a, 'b>> {
    ChartBuilder::on(root)
        .caption(title, ("sans-serif", 17))
        .margin(10)
        .x_label_area_size(38)
        .y_label_area_size(72)
        .build_cartesian_2d(x, y)
        .map_err(failed)
}

/// The legend, framed, in `corner`.
fn draw_legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, corner: SeriesLabelPosition) -> anyhow::Result<()> {
    chart
        .configure_series_labels()
        .position(corner)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()
        .map_err(failed)
}

fn draw_into(
    svg: &mut String,
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    draw_sized(svg, (WIDTH, HEIGHT), draw)
}

fn draw_sized(
    svg: &mut String,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let root = SVGBackend::with_string(svg, size).into_drawing_area();
    root.fill(&WHITE).map_err(failed)?;
    draw(&root)?;
    root.present().map_err(failed)
}

fn x_range(xs: impl Iterator<Item = f64>) -> (f64, f64) {
    let (low, high) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| (l.min(x), h.max(x)));
    if low.is_finite() {
        (low - 0.5, high + 0.5)
    } else {
        (-0.5, 1.5)
    }
}

/// A line chart over iterations, with optional horizontal guides; `y_format` writes the y labels.
pub fn line_chart(
    title: &str,
    y_label: &str,
    series: &[Series],
    guides: &[Guide],
    y_format: &dyn Fn(&f64) -> String,
) -> anyhow::Result<String> {
    let (x_low, x_high) = x_range(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    let values = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(guides.iter().map(|g| g.value));
    let (y_low, y_high) = padded_range(values, false);
    let mut lines: Vec<Vec<(f64, f64)>> = series.iter().map(|s| s.points.clone()).collect();
    lines.extend(guides.iter().map(|g| vec![(x_low, g.value), (x_high, g.value)]));
    let legend_rows = series.iter().filter(|s| !s.label.is_empty()).count() + guides.len();
    let corner = quiet_corner(&lines, (x_low, x_high), (y_low, y_high), legend_rows);
    let mut svg = String::new();
    draw_into(&mut svg, |root| {
        let mut chart = chart_area(root, title, x_low..x_high, y_low..y_high)?;
        chart
            .configure_mesh()
            .x_desc("iteration")
            .y_desc(y_label)
            .x_labels(((x_high - x_low) as usize + 1).min(16))
            .x_label_formatter(&iteration_label)
            .y_label_formatter(y_format)
            .light_line_style(WHITE)
            .draw()
            .map_err(failed)?;
        for guide in guides {
            let style = ShapeStyle::from(guide.colour).stroke_width(1);
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(x_low, guide.value), (x_high, guide.value)],
                    3,
                    4,
                    style,
                ))
                .map_err(failed)?
                .label(guide.label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        for line in series {
            let style = ShapeStyle::from(line.colour).stroke_width(2);
            let drawn = if line.dashed {
                chart.draw_series(DashedLineSeries::new(line.points.clone(), 7, 4, style))
            } else {
                chart.draw_series(LineSeries::new(line.points.clone(), style))
            };
            let drawn = drawn.map_err(failed)?;
            if !line.label.is_empty() {
                drawn
                    .label(line.label.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            }
            chart
                .draw_series(line.points.iter().map(|&p| Circle::new(p, 3, style.filled())))
                .map_err(failed)?;
        }
        draw_legend(&mut chart, corner)
    })?;
    Ok(svg)
}

/// Stacked bars of training and scoring seconds per iteration, one bar per run side by side.
pub fn time_chart(runs: &[TimeBars]) -> anyhow::Result<String> {
    let (x_low, x_high) = x_range(runs.iter().flat_map(|r| r.iterations.iter().map(|i| i.0)));
    let (_, y_high) = padded_range(runs.iter().flat_map(|r| r.iterations.iter().map(|i| i.1 + i.2)), true);
    let tops: Vec<Vec<(f64, f64)>> = runs
        .iter()
        .flat_map(|r| {
            r.iterations
                .iter()
                .map(|&(x, train, score)| vec![(x - 0.4, train + score), (x + 0.4, train + score), (x + 0.4, 0.0)])
        })
        .collect();
    let corner = quiet_corner(&tops, (x_low, x_high), (0.0, y_high), 2 * runs.len());
    let mut svg = String::new();
    draw_into(&mut svg, |root| {
        let mut chart = chart_area(
            root,
            "Time per iteration: training and scoring",
            x_low..x_high,
            0.0..y_high,
        )?;
        chart
            .configure_mesh()
            .x_desc("iteration")
            .y_desc("seconds")
            .x_labels(((x_high - x_low) as usize + 1).min(16))
            .x_label_formatter(&iteration_label)
            .light_line_style(WHITE)
            .draw()
            .map_err(failed)?;
        let width = 0.8 / runs.len().max(1) as f64;
        for (r, run) in runs.iter().enumerate() {
            let training = ShapeStyle::from(run.colour).filled();
            let scoring = ShapeStyle::from(run.colour.mix(0.4)).filled();
            for (part, style, name) in [(0, training, "training"), (1, scoring, "scoring")] {
                let bars = run.iterations.iter().map(move |&(x, train, score)| {
                    let left = x - 0.4 + r as f64 * width;
                    let (bottom, top) = if part == 0 {
                        (0.0, train)
                    } else {
                        (train, train + score)
                    };
                    Rectangle::new([(left, bottom), (left + width * 0.92, top)], style)
                });
                chart
                    .draw_series(bars)
                    .map_err(failed)?
                    .label(format!("{}: {name}", run.label))
                    .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], style));
            }
        }
        draw_legend(&mut chart, corner)
    })?;
    Ok(svg)
}

/// Every scored candidate as a point (r_lrc across, r_ntk up); the chosen splits are filled, rejected ones grey,
/// and the quadrant of acceptable candidates (r_ntk ≤ 0 < r_lrc) is shaded.
pub fn candidates_chart(points: &[ScoredPoint]) -> anyhow::Result<String> {
    let (x_low, x_high) = padded_range(points.iter().map(|p| p.r_lrc), true);
    let (y_low, y_high) = padded_range(points.iter().map(|p| p.r_ntk), true);
    let mut svg = String::new();
    draw_into(&mut svg, |root| {
        let mut chart = chart_area(root, "Scored candidates", x_low..x_high, y_low..y_high)?;
        chart
            .configure_mesh()
            .x_desc("r_lrc: relative change of linear regions (higher is better)")
            .y_desc("r_ntk: relative change of κ (lower is better)")
            .x_label_formatter(&|v| signed(*v, decimals(x_high - x_low)))
            .y_label_formatter(&|v| signed(*v, decimals(y_high - y_low)))
            .light_line_style(WHITE)
            .draw()
            .map_err(failed)?;
        let accepted_area = ShapeStyle::from(RGBColor(0x00, 0x9E, 0x73).mix(0.12)).filled();
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(0.0, y_low), (x_high, 0.0)],
                accepted_area,
            )))
            .map_err(failed)?
            .label("acceptable: r_ntk ≤ 0 < r_lrc")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], accepted_area));
        let groups: [PointGroup; 3] = [
            ("rejected", ShapeStyle::from(BLACK.mix(0.35)).stroke_width(1), |p| {
                !p.accepted
            }),
            ("accepted", ShapeStyle::from(MAIN).stroke_width(1), |p| {
                p.accepted && !p.chosen
            }),
            ("chosen", ShapeStyle::from(MAIN).filled(), |p| p.chosen),
        ];
        for (label, style, wanted) in groups {
            chart
                .draw_series(
                    points
                        .iter()
                        .filter(|p| wanted(p))
                        .map(|p| Circle::new((p.r_lrc, p.r_ntk), 4, style)),
                )
                .map_err(failed)?
                .label(label)
                .legend(move |(x, y)| Circle::new((x + 8, y), 4, style));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
    })?;
    Ok(svg)
}

/// One panel of a grid of scatter plots.
#[derive(Clone, Debug)]
pub struct ScatterPanel {
    /// The panel's title.
    pub title: String,
    /// The x axis's description.
    pub x_label: String,
    /// The y axis's description.
    pub y_label: String,
    /// (x, y) points; non-finite ones are left out.
    pub points: Vec<(f64, f64)>,
}

/// Scatter plots side by side, `columns` to a row, each with a dashed line at y = 0.
pub fn scatter_grid(panels: &[ScatterPanel], columns: usize) -> anyhow::Result<String> {
    let columns = columns.clamp(1, panels.len().max(1));
    let rows = panels.len().div_ceil(columns).max(1);
    let (panel_width, panel_height) = (380u32, 300u32);
    let mut svg = String::new();
    let size = (panel_width * columns as u32, panel_height * rows as u32);
    draw_sized(&mut svg, size, |root| {
        for (panel, area) in panels.iter().zip(root.split_evenly((rows, columns)).iter()) {
            let points: Vec<(f64, f64)> = panel
                .points
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            let (x_low, x_high) = padded_range(points.iter().map(|p| p.0), false);
            let (y_low, y_high) = padded_range(points.iter().map(|p| p.1), true);
            let mut chart = chart_area(area, &panel.title, x_low..x_high, y_low..y_high)?;
            chart
                .configure_mesh()
                .x_desc(panel.x_label.as_str())
                .y_desc(panel.y_label.as_str())
                .x_labels(5)
                .x_label_formatter(&|v| signed(*v, decimals(x_high - x_low)))
                .y_label_formatter(&|v| signed(*v, decimals(y_high - y_low)))
                .light_line_style(WHITE)
                .draw()
                .map_err(failed)?;
            chart
                .draw_series(DashedLineSeries::new(
                    [(x_low, 0.0), (x_high, 0.0)],
                    4,
                    4,
                    ShapeStyle::from(BLACK.mix(0.4)).stroke_width(1),
                ))
                .map_err(failed)?;
            let style = ShapeStyle::from(MAIN.mix(0.7)).filled();
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, style)))
                .map_err(failed)?;
        }
        Ok(())
    })?;
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn polylines(svg: &str) -> Vec<&str> {
        svg.match_indices("<polyline").map(|(i, _)| &svg[i..]).collect()
    }

    #[test]
    fn a_line_chart_draws_each_point_and_labels_each_series() {
        let series = [
            Series {
                label: "alpha".into(),
                points: vec![(1.0, 0.5), (2.0, 0.7), (3.0, 0.6)],
                colour: MAIN,
                dashed: false,
            },
            Series {
                label: "beta".into(),
                points: vec![(1.0, 0.4), (2.0, 0.45)],
                colour: OTHER,
                dashed: true,
            },
        ];
        let guide = Guide {
            label: "budget".into(),
            value: 0.9,
            colour: BLACK,
        };
        let svg = line_chart("Accuracy", "accuracy", &series, &[guide], &|v| format!("{v:.2}")).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        // One marker per point, plus one circle per legend entry of the line series.
        assert_eq!(svg.matches("<circle").count(), 5);
        for label in ["alpha", "beta", "budget", "Accuracy", "iteration"] {
            assert!(svg.contains(label), "{label} missing");
        }
        assert!(!polylines(&svg).is_empty());
    }

    #[test]
    fn time_bars_stack_scoring_on_training() {
        let runs = [TimeBars {
            label: "run".into(),
            iterations: vec![(1.0, 10.0, 5.0), (2.0, 20.0, 0.0)],
            colour: MAIN,
        }];
        let svg = time_chart(&runs).unwrap();
        assert!(svg.contains("run: training") && svg.contains("run: scoring"));
    }

    #[test]
    fn the_legend_goes_where_it_hides_the_fewest_points() {
        let rising = vec![vec![(0.0, 0.0), (1.0, 1.0)]];
        let corner = quiet_corner(&rising, (0.0, 1.0), (0.0, 1.0), 2);
        assert!(
            matches!(corner, SeriesLabelPosition::UpperLeft | SeriesLabelPosition::LowerRight),
            "{corner:?}"
        );
        let high_left = vec![vec![(0.0, 0.95), (0.4, 0.9), (1.0, 0.95)]];
        let corner = quiet_corner(&high_left, (0.0, 1.0), (0.0, 1.0), 2);
        assert!(matches!(corner, SeriesLabelPosition::LowerRight), "{corner:?}");
    }

    #[test]
    fn axis_labels_keep_enough_decimals_to_differ() {
        let labels: Vec<String> = [0.0, 0.005, 0.01, 0.015]
            .iter()
            .map(|&v| signed(v, decimals(0.02)))
            .collect();
        let mut unique = labels.clone();
        unique.dedup();
        assert_eq!(unique, labels, "{labels:?}");
        assert_eq!(signed(-0.0001, 2), "0.00");
        assert_eq!(signed(-0.25, 2), "-0.25");
    }

    #[test]
    fn ranges_are_never_empty() {
        assert_eq!(padded_range(std::iter::empty(), false), (0.0, 1.0));
        let (low, high) = padded_range([3.0, 3.0].into_iter(), false);
        assert!(low < 3.0 && high > 3.0);
        let (low, _) = padded_range([2.0, 5.0].into_iter(), true);
        assert_eq!(low, 0.0);
    }
}
