//! The confusion matrix of an evaluation as an SVG heat map: rows are true classes, columns predicted ones, each
//! cell shaded by its share of the row.

use super::html::escape;
use crate::inference::EvalReport;
use std::fmt::Write;

/// Room for the class names left of the rows and above the columns.
const MARGIN: f64 = 120.0;

/// Shade of a share of the row: white at 0, the report's blue (0072B2) at 1.
fn shade(share: f64) -> String {
    let mix = |full: f64| (255.0 + (full - 255.0) * share.clamp(0.0, 1.0)).round() as u8;
    format!("#{:02x}{:02x}{:02x}", mix(0.0), mix(114.0), mix(178.0))
}

/// The matrix of `report`. Counts are written in the cells up to 20 classes, names up to 40; larger matrices
/// keep only the shading and every tenth class index.
pub fn confusion_svg(report: &EvalReport) -> String {
    let classes = report.confusion.len();
    let cell = if classes <= 20 {
        32.0
    } else {
        (640.0 / classes as f64).max(4.0)
    };
    let size = MARGIN + cell * classes as f64 + 10.0;
    let mut body = String::new();
    for (t, row) in report.confusion.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f64;
        for (p, &count) in row.iter().enumerate() {
            let (x, y, share) = (MARGIN + p as f64 * cell, MARGIN + t as f64 * cell, count as f64 / total);
            let _ = write!(
                body,
                r##"<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{}" stroke="#e4e4e4"><title>true {}, predicted {}: {count}</title></rect>"##,
                shade(share),
                escape(&report.per_class[t].name),
                escape(&report.per_class[p].name)
            );
            if classes <= 20 && count > 0 {
                let colour = if share > 0.5 { "white" } else { "black" };
                let _ = write!(
                    body,
                    r#"<text x="{}" y="{}" text-anchor="middle" dominant-baseline="central" font-size="11" fill="{colour}">{count}</text>"#,
                    x + cell / 2.0,
                    y + cell / 2.0
                );
            }
        }
    }
    for (k, class) in report.per_class.iter().enumerate() {
        let label = if classes <= 40 {
            escape(&class.name)
        } else if k % 10 == 0 {
            k.to_string()
        } else {
            continue;
        };
        let middle = MARGIN + (k as f64 + 0.5) * cell;
        let _ = write!(
            body,
            r#"<text x="{}" y="{middle}" text-anchor="end" dominant-baseline="central" font-size="11">{label}</text><text x="{middle}" y="{}" text-anchor="start" dominant-baseline="central" font-size="11" transform="rotate(-60 {middle} {})">{label}</text>"#,
            MARGIN - 6.0,
            MARGIN - 6.0,
            MARGIN - 6.0
        );
    }
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 {size} {size}" font-family="sans-serif"><text x="4" y="14" font-size="12">rows: true class; columns: predicted</text><text x="4" y="30" font-size="12">{} {}: {:.2}% of {}</text>{body}</svg>
"#,
        escape(&report.data),
        escape(&report.split),
        100.0 * report.accuracy,
        report.images
    )
}
