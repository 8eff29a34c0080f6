//! The report page: summary, charts, mutation and iteration tables, and the final cells, in one HTML file.

use super::RunRecord;
use super::charts::{self, Guide, ScoredPoint, Series, TimeBars};
use super::confusion::confusion_svg;
use super::decisions::decisions_section;
use crate::memory::format_size;
use crate::search::IterationRecord;
use crate::search::time_cost::SplitCost;
use crate::show::cells_svg;
use std::fmt::Write;

const STYLE: &str = "
body { font-family: sans-serif; margin: 24px auto; max-width: 1200px; color: #222; padding: 0 16px; }
h1 { font-size: 24px; margin-bottom: 4px; }
h2 { font-size: 19px; margin-top: 32px; border-bottom: 1px solid #ccc; padding-bottom: 4px; }
p.lead { color: #555; margin-top: 0; }
table { border-collapse: collapse; font-size: 14px; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 4px 9px; text-align: right; }
th { background: #f3f3f3; }
td.text, th.text { text-align: left; }
tr.refused td { color: #a33; }
tr.chosen td { background: #e8f1f8; font-weight: bold; }
details { margin: 6px 0; }
summary { cursor: pointer; }
.headline { font-size: 30px; font-weight: bold; color: #0072B2; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.charts svg { border: 1px solid #e4e4e4; }
.scroll { overflow-x: auto; border: 1px solid #e4e4e4; }
";

/// Escapes text for HTML.
pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub(super) fn table(headers: &[&str], rows: &[Vec<String>], row_classes: &[&str]) -> String {
    let mut text = String::from("<table>\n<tr>");
    for (i, header) in headers.iter().enumerate() {
        let class = if i == 0 { " class=\"text\"" } else { "" };
        let _ = write!(text, "<th{class}>{}</th>", escape(header));
    }
    text.push_str("</tr>\n");
    for (r, row) in rows.iter().enumerate() {
        match row_classes.get(r) {
            Some(class) if !class.is_empty() => {
                let _ = write!(text, "<tr class=\"{class}\">");
            }
            _ => text.push_str("<tr>"),
        }
        for (i, cell) in row.iter().enumerate() {
            let class = if i == 0 { " class=\"text\"" } else { "" };
            let _ = write!(text, "<td{class}>{}</td>", escape(cell));
        }
        text.push_str("</tr>\n");
    }
    text.push_str("</table>\n");
    text
}

fn percent(value: Option<f64>) -> String {
    value.map_or("—".to_string(), |v| format!("{:.2} %", 100.0 * v))
}

fn seconds(value: f64) -> String {
    format!("{value:.1} s")
}

fn mib(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

fn summary_rows(run: &RunRecord) -> Vec<String> {
    let c = &run.config;
    let s = run.summary.as_ref();
    let trained = s.and_then(|s| s.test_accuracy).is_some();
    vec![
        c.data.clone(),
        format!("R={} C={}", c.reductions, c.channels),
        s.map_or("still running".to_string(), |s| s.stopped.clone()),
        run.history.iter().filter(|r| r.iteration > 0).count().to_string(),
        percent(s.and_then(|s| s.test_accuracy)),
        s.and_then(|s| s.test_loss).map_or("—".into(), |l| format!("{l:.4}")),
        s.map_or("—".into(), |s| s.parameters.to_string()),
        run.genotype.live_op_count().to_string(),
        format!(
            "{:?}",
            run.genotype.cells.iter().map(|c| c.edges.len()).collect::<Vec<_>>()
        ),
        s.map_or("—".into(), |s| format_size(s.estimated_memory_bytes)),
        format_size(c.memory_budget),
        seconds(run.history.iter().map(|r| r.training_seconds).sum()),
        seconds(run.history.iter().map(|r| r.scoring_seconds).sum()),
        if trained {
            let images = match s.map_or(0, |s| s.final_training_samples) {
                0 => String::new(),
                n => format!("{n} images per epoch, "),
            };
            format!(
                "{} ({images}{} epochs)",
                seconds(s.map_or(0.0, |s| s.final_training_seconds)),
                c.final_train.epochs
            )
        } else {
            "—".into()
        },
    ]
}

fn summary_table(run: &RunRecord, other: Option<&RunRecord>) -> String {
    let labels = [
        "data",
        "shape",
        "stopped because",
        "search iterations",
        "test accuracy",
        "test loss",
        "parameters",
        "live ops",
        "edges per cell",
        "estimated training memory",
        "memory budget",
        "search: training",
        "search: scoring",
        "final training",
    ];
    let main = summary_rows(run);
    let second = other.map(summary_rows);
    let rows: Vec<Vec<String>> = labels
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let mut row = vec![label.to_string(), main[i].clone()];
            if let Some(second) = &second {
                row.push(second[i].clone());
            }
            row
        })
        .collect();
    let mut headers = vec!["".to_string(), run.name()];
    if let Some(other) = other {
        headers.push(other.name());
    }
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    table(&headers, &rows, &[])
}

/// The runs shown, with their colour and dash: the main run solid, a compared one dashed.
fn runs<'a>(run: &'a RunRecord, other: Option<&'a RunRecord>) -> Vec<(&'a RunRecord, plotters::style::RGBColor, bool)> {
    let mut shown = vec![(run, charts::MAIN, false)];
    if let Some(other) = other {
        shown.push((other, charts::OTHER, true));
    }
    shown
}

fn series_of(
    run: &RunRecord,
    other: Option<&RunRecord>,
    value: impl Fn(&IterationRecord) -> Option<f64>,
) -> Vec<Series> {
    runs(run, other)
        .into_iter()
        .map(|(r, colour, dashed)| Series {
            label: r.name(),
            points: r
                .history
                .iter()
                .filter_map(|record| value(record).map(|v| (record.iteration as f64, v)))
                .collect(),
            colour,
            dashed,
        })
        .collect()
}

fn edges_series(run: &RunRecord, other: Option<&RunRecord>) -> Vec<Series> {
    let mut lines = Vec::new();
    for (r, _, dashed) in runs(run, other) {
        let cells = r.history.iter().map(|h| h.edges_per_cell.len()).max().unwrap_or(0);
        for cell in 0..cells {
            lines.push(Series {
                // The compared run shares the cell colours; the title says it is dashed.
                label: if dashed { String::new() } else { format!("cell {cell}") },
                points: r
                    .history
                    .iter()
                    .filter_map(|h| h.edges_per_cell.get(cell).map(|&e| (h.iteration as f64, e as f64)))
                    .collect(),
                colour: charts::CELLS[cell % charts::CELLS.len()],
                dashed,
            });
        }
    }
    lines
}

/// The report's charts as (file stem, SVG), in page order.
pub fn charts(run: &RunRecord, other: Option<&RunRecord>) -> anyhow::Result<Vec<(&'static str, String)>> {
    let whole = |v: &f64| format!("{v:.0}");
    let mut svgs = vec![
        (
            "validation-accuracy",
            charts::line_chart(
                "Validation accuracy of the supernet",
                "accuracy (%)",
                &series_of(run, other, |r| r.validation_accuracy.map(|a| 100.0 * a)),
                &[],
                &|v| format!("{v:.1}"),
            )?,
        ),
        (
            "parameters",
            charts::line_chart(
                "Parameters",
                "parameters",
                &series_of(run, other, |r| Some(r.parameters as f64)),
                &[],
                &whole,
            )?,
        ),
    ];
    let (budgets, memory_title) = memory_guides(run, other);
    svgs.push((
        "memory",
        charts::line_chart(
            &memory_title,
            "MiB",
            &series_of(run, other, |r| Some(mib(r.memory.total() as f64))),
            &budgets,
            &whole,
        )?,
    ));
    svgs.push((
        "live-ops",
        charts::line_chart(
            "Live ops",
            "ops",
            &series_of(run, other, |r| Some(r.live_ops as f64)),
            &[],
            &whole,
        )?,
    ));
    let edges_title = match other {
        Some(o) => format!("Edges per cell ({} dashed)", o.name()),
        None => "Edges per cell".to_string(),
    };
    svgs.push((
        "edges-per-cell",
        charts::line_chart(&edges_title, "edges", &edges_series(run, other), &[], &whole)?,
    ));
    svgs.push(("time", charts::time_chart(&time_bars(run, other))?));
    let points = scored_points(run);
    if !points.is_empty() {
        svgs.push(("candidates", charts::candidates_chart(&points)?));
    }
    Ok(svgs)
}

/// The budget lines of the memory chart (one per distinct budget) and its title. A budget far above the estimates
/// would flatten them into the axis, so then it is named in the title instead of drawn.
fn memory_guides(run: &RunRecord, other: Option<&RunRecord>) -> (Vec<Guide>, String) {
    let budgets: Vec<Guide> = runs(run, other)
        .into_iter()
        .map(|(r, colour, _)| Guide {
            label: format!("budget of {}", r.name()),
            value: mib(r.config.memory_budget as f64),
            colour,
        })
        .fold(Vec::new(), |mut kept, guide| {
            if !kept.iter().any(|g: &Guide| g.value == guide.value) {
                kept.push(guide);
            }
            kept
        });
    let peak = runs(run, other)
        .iter()
        .flat_map(|(r, _, _)| r.history.iter().map(|h| mib(h.memory.total() as f64)))
        .fold(0.0, f64::max);
    if budgets.iter().all(|g| g.value > 4.0 * peak) {
        let sizes: Vec<String> = budgets
            .iter()
            .map(|g| format_size((g.value * 1048576.0) as u64))
            .collect();
        (
            Vec::new(),
            format!(
                "Estimated training memory (budget {}, off the scale)",
                sizes.join(" / ")
            ),
        )
    } else {
        (budgets, "Estimated training memory against the budget".to_string())
    }
}

/// Training and scoring seconds per iteration, one bar series per run.
fn time_bars(run: &RunRecord, other: Option<&RunRecord>) -> Vec<TimeBars> {
    runs(run, other)
        .into_iter()
        .map(|(r, colour, _)| TimeBars {
            label: r.name(),
            iterations: r
                .history
                .iter()
                .map(|h| (h.iteration as f64, h.training_seconds, h.scoring_seconds))
                .collect(),
            colour,
        })
        .collect()
}

fn charts_section(charts: &[(&str, String)]) -> String {
    let svgs: Vec<&str> = charts.iter().map(|(_, svg)| svg.as_str()).collect();
    format!("<div class=\"charts\">\n{}</div>\n", svgs.join("\n"))
}

fn scored_points(run: &RunRecord) -> Vec<ScoredPoint> {
    let mut points = Vec::new();
    for record in &run.history {
        for decision in &record.decisions {
            for candidate in &decision.tried {
                points.push(ScoredPoint {
                    r_ntk: candidate.r_ntk,
                    r_lrc: candidate.r_lrc,
                    chosen: decision.chosen == Some(candidate.edge),
                    accepted: candidate.accepted(),
                });
            }
        }
    }
    points
}

fn mutations_table(run: &RunRecord) -> String {
    let mut rows = Vec::new();
    let mut classes = Vec::new();
    for record in &run.history {
        for mutation in &record.mutations {
            let decision = record.decisions.iter().find(|d| d.cell == mutation.cell);
            let scored = decision.and_then(|d| d.tried.iter().find(|c| c.edge == mutation.edge));
            let number = |value: Option<f64>| value.map_or("—".to_string(), |v| format!("{v:+.4}"));
            rows.push(vec![
                record.iteration.to_string(),
                mutation.cell.to_string(),
                format!("{} ({} → {})", mutation.edge, mutation.from, mutation.to),
                decision.map_or("—".into(), |d| {
                    format!(
                        "{} of {}",
                        d.tried.iter().filter(|c| c.accepted()).count(),
                        d.tried.len()
                    )
                }),
                number(scored.map(|c| c.r_ntk)),
                number(scored.map(|c| c.r_lrc)),
                scored.and_then(|c| c.score).map_or("—".into(), |s| format!("{s:.4}")),
                format_size(mutation.estimated_bytes),
                mutation.time.as_ref().map_or("—".into(), SplitCost::describe),
                match mutation.refusal() {
                    None => "applied".into(),
                    Some(_) if mutation.time.is_some() => "refused: not worth its time".into(),
                    Some(_) => "refused: over the memory budget".into(),
                },
            ]);
            classes.push(if mutation.applied { "" } else { "refused" });
        }
    }
    if rows.is_empty() {
        return "<p>No split was chosen.</p>\n".into();
    }
    table(
        &[
            "iteration",
            "cell",
            "edge split (from → to)",
            "candidates accepted",
            "r_ntk",
            "r_lrc",
            "score",
            "memory after",
            "time cost",
            "outcome",
        ],
        &rows,
        &classes,
    )
}

fn iterations_table(run: &RunRecord) -> String {
    let rows: Vec<Vec<String>> = run
        .history
        .iter()
        .map(|r| {
            vec![
                r.iteration.to_string(),
                percent(r.validation_accuracy),
                r.parameters.to_string(),
                format!("{} of {}", format_size(r.memory.total()), format_size(r.memory_budget)),
                r.live_ops.to_string(),
                format!("{:?}", r.edges_per_cell),
                match r.pruned_share {
                    Some(share) => format!("{} ({:.0} %)", r.deadheaded.len(), 100.0 * share),
                    None => r.deadheaded.len().to_string(),
                },
                seconds(r.training_seconds),
                seconds(r.scoring_seconds),
            ]
        })
        .collect();
    table(
        &[
            "iteration",
            "validation accuracy",
            "parameters",
            "estimated memory",
            "live ops",
            "edges per cell",
            "ops deadheaded",
            "training",
            "scoring",
        ],
        &rows,
        &[],
    )
}

/// The confusion matrix and per-class accuracy of the run's last `spidernet eval` (eval.json), when it has one.
fn evaluation_section(run: &RunRecord) -> String {
    let Some(evaluation) = &run.evaluation else {
        return String::new();
    };
    let rows: Vec<Vec<String>> = (evaluation.per_class.iter())
        .map(|c| {
            vec![
                c.name.clone(),
                c.images.to_string(),
                c.correct.to_string(),
                percent(c.accuracy),
            ]
        })
        .collect();
    format!(
        "<h2>Evaluation</h2>\n<p>{} ({} split): {} of {} images correct, {}, loss {:.4}.</p>\n<div class=\"charts\">\n{}{}</div>\n",
        escape(&evaluation.data),
        escape(&evaluation.split),
        evaluation.correct,
        evaluation.images,
        escape(&percent(Some(evaluation.accuracy))),
        evaluation.loss,
        confusion_svg(evaluation),
        table(&["class", "images", "correct", "accuracy"], &rows, &[])
    )
}

/// The whole report page of `run`, with `other` overlaid on the charts and set beside it in the summary.
pub fn render(run: &RunRecord, other: Option<&RunRecord>) -> anyhow::Result<String> {
    Ok(page(run, other, &charts(run, other)?))
}

/// The page around already drawn `charts` (as `charts` returns them).
pub fn page(run: &RunRecord, other: Option<&RunRecord>, charts: &[(&str, String)]) -> String {
    let title = format!("spidernet: {} on {}", run.name(), run.config.data);
    let headline = match run.summary.as_ref().and_then(|s| s.test_accuracy) {
        Some(accuracy) => format!(
            "<p class=\"headline\">test accuracy {}</p>\n",
            escape(&percent(Some(accuracy)))
        ),
        None => "<p class=\"headline\">no final training yet</p>\n".to_string(),
    };
    let compared = other.map_or(String::new(), |o| {
        format!(
            " Compared with {} in <code>{}</code> (dashed).",
            escape(&o.name()),
            escape(&o.root.display().to_string())
        )
    });
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n<p class=\"lead\">Run folder <code>{}</code>.{compared}</p>\n{headline}",
        escape(&title),
        escape(&title),
        escape(&run.root.display().to_string()),
    );
    page.push_str("<h2>Summary</h2>\n");
    page.push_str(&summary_table(run, other));
    page.push_str("<h2>Search</h2>\n");
    page.push_str(&charts_section(charts));
    page.push_str("<h2>Chosen splits</h2>\n");
    page.push_str(&mutations_table(run));
    page.push_str("<h2>Why each split won</h2>\n");
    page.push_str(&decisions_section(run));
    page.push_str("<h2>Iterations</h2>\n");
    page.push_str(&iterations_table(run));
    page.push_str(&evaluation_section(run));
    page.push_str("<h2>Final cells</h2>\n<div class=\"scroll\">\n");
    page.push_str(&cells_svg(&run.genotype));
    page.push_str("</div>\n</body>\n</html>\n");
    page
}
