//! SVG drawings of cells: nodes as circles, one arrow per live op coloured by op type, and a legend.

use super::layout::cell_layout;
use super::text::node_name;
use crate::genotype::{Cell, Genotype, Op};
use std::fmt::Write;

const COLUMN: f64 = 120.0;
const LAYER: f64 = 110.0;
const RADIUS: f64 = 17.0;
const MARGIN: f64 = 40.0;
const TITLE: f64 = 48.0;
/// A cell's drawing is at least this wide, so that its two title lines fit.
const MIN_CELL_WIDTH: f64 = 260.0;
/// Sideways gap between the arrows of the ops of one edge.
const OP_GAP: f64 = 5.0;

/// A colour per op (Okabe–Ito palette, distinguishable with the common colour-vision deficiencies), and a dash
/// pattern that separates parameter-free ops from convolutions in greyscale too.
pub fn op_colour(op: Op) -> (&'static str, &'static str) {
    match op {
        Op::Identity => ("#000000", "2 3"),
        Op::MaxPool3x3 => ("#E69F00", "7 3"),
        Op::AvgPool3x3 => ("#56B4E9", "7 3"),
        Op::SepConv3x3 => ("#009E73", ""),
        Op::SepConv5x5 => ("#0072B2", ""),
        Op::DilConv3x3 => ("#D55E00", ""),
        Op::DilConv5x5 => ("#CC79A7", ""),
    }
}

fn marker_id(op: Op) -> String {
    format!("arrow-{}", op.name())
}

fn defs() -> String {
    let mut text = String::from("<defs>\n");
    for op in Op::ALL {
        let _ = writeln!(
            text,
            r#"<marker id="{}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{}"/></marker>"#,
            marker_id(op),
            op_colour(op).0
        );
    }
    text.push_str("</defs>\n");
    text
}

/// Size of a cell's drawing in pixels.
fn cell_size(cell: &Cell) -> (f64, f64) {
    let positions = cell_layout(cell);
    let columns = positions.iter().map(|p| p.x).fold(0.0, f64::max) + 1.0;
    let layers = positions.iter().map(|p| p.layer).fold(0.0, f64::max) + 1.0;
    (
        (2.0 * MARGIN + (columns - 1.0) * COLUMN).max(MIN_CELL_WIDTH),
        TITLE + 2.0 * MARGIN + (layers - 1.0) * LAYER,
    )
}

/// The drawing of one cell as an SVG group, its top-left corner at (`left`, `top`).
fn cell_group(genotype: &Genotype, k: usize, left: f64, top: f64) -> String {
    let cell = &genotype.cells[k];
    let positions = cell_layout(cell);
    let at = |node: usize| {
        let p = positions[node];
        (left + MARGIN + p.x * COLUMN, top + TITLE + MARGIN + p.layer * LAYER)
    };
    let mut text = String::new();
    let _ = writeln!(
        text,
        r#"<text x="{x:.1}" y="{:.1}" class="title">cell {k}: {}, {} channels</text><text x="{x:.1}" y="{:.1}" class="subtitle">{} edges, {} live ops</text>"#,
        top + 20.0,
        if k == 0 { "normal" } else { "reduction" },
        genotype.cell_channels(k),
        top + 38.0,
        cell.edges.len(),
        cell.live_op_count(),
        x = left + 8.0,
    );
    for edge in &cell.edges {
        let ((x1, y1), (x2, y2)) = (at(edge.from), at(edge.to));
        let n = edge.ops.len() as f64;
        for (i, &op) in edge.ops.iter().enumerate() {
            let shift = (i as f64 - (n - 1.0) / 2.0) * OP_GAP;
            // Leave the source downwards and reach the target from above, spread sideways per op; the curve keeps
            // arrows that skip layers off the nodes in between more often than a straight line would.
            let (sx, sy) = (x1 + shift * 0.6, y1 + RADIUS);
            let (tx, ty) = (x2 + shift * 0.6, y2 - RADIUS - 1.0);
            let bend = (ty - sy) * 0.45;
            let (colour, dash) = op_colour(op);
            let _ = writeln!(
                text,
                r#"<path d="M{sx:.1},{sy:.1} C{:.1},{:.1} {:.1},{:.1} {tx:.1},{ty:.1}" stroke="{colour}" stroke-dasharray="{dash}" marker-end="url(#{})"><title>edge {}: {} → {}, {}</title></path>"#,
                sx + shift * 2.0,
                sy + bend,
                tx + shift * 2.0,
                ty - bend,
                marker_id(op),
                edge.id,
                node_name(cell, edge.from),
                node_name(cell, edge.to),
                op.name()
            );
        }
    }
    for node in 0..cell.n_nodes {
        let (x, y) = at(node);
        let class = if cell.is_input(node) {
            "input"
        } else if node == cell.output() {
            "output"
        } else {
            "node"
        };
        let _ = writeln!(
            text,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="{RADIUS}" class="{class}"/><text x="{x:.1}" y="{:.1}" class="label">{}</text>"#,
            y + 4.0,
            node_name(cell, node)
        );
    }
    text
}

fn legend(left: f64, top: f64) -> String {
    let mut text = String::new();
    for (i, op) in Op::ALL.into_iter().enumerate() {
        let x = left + (i % 4) as f64 * 150.0;
        let y = top + (i / 4) as f64 * 22.0;
        let (colour, dash) = op_colour(op);
        let _ = writeln!(
            text,
            r#"<path d="M{x:.1},{y:.1} h34" stroke="{colour}" stroke-dasharray="{dash}" marker-end="url(#{})"/><text x="{:.1}" y="{:.1}" class="legend">{}</text>"#,
            marker_id(op),
            x + 42.0,
            y + 4.0,
            op.name()
        );
    }
    text
}

const LEGEND_HEIGHT: f64 = 64.0;
const LEGEND_WIDTH: f64 = 620.0;

fn document(width: f64, height: f64, body: &str) -> String {
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif">
<style>
path {{ fill: none; stroke-width: 1.6; }}
circle {{ stroke: #333; stroke-width: 1.5; fill: #fff; }}
circle.input {{ fill: #e8e8e8; }}
circle.output {{ fill: #333; }}
text.label {{ font-size: 12px; text-anchor: middle; fill: #000; }}
circle.output + text.label {{ fill: #fff; }}
text.title {{ font-size: 15px; font-weight: bold; }}
text.subtitle {{ font-size: 13px; fill: #444; }}
text.legend {{ font-size: 13px; }}
</style>
<rect width="100%" height="100%" fill="#fff"/>
{}{body}</svg>
"##,
        defs()
    )
}

/// One cell of `genotype`, with the legend.
pub fn cell_svg(genotype: &Genotype, k: usize) -> String {
    let (width, height) = cell_size(&genotype.cells[k]);
    let width = width.max(LEGEND_WIDTH);
    let body = cell_group(genotype, k, 0.0, 0.0) + &legend(MARGIN, height + 10.0);
    document(width, height + LEGEND_HEIGHT, &body)
}

/// Every cell of `genotype` side by side, with one legend below.
pub fn cells_svg(genotype: &Genotype) -> String {
    let mut body = String::new();
    let (mut left, mut height) = (0.0, 0.0f64);
    for (k, cell) in genotype.cells.iter().enumerate() {
        let (w, h) = cell_size(cell);
        body.push_str(&cell_group(genotype, k, left, 0.0));
        left += w;
        height = height.max(h);
    }
    body.push_str(&legend(MARGIN, height + 10.0));
    document(left.max(LEGEND_WIDTH), height + LEGEND_HEIGHT, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genotype::InputShape;

    #[test]
    fn one_arrow_per_live_op_one_circle_per_node() {
        let mut genotype = Genotype::minimal(2, 16, InputShape::new(1, 28, 28), 10).unwrap();
        genotype.cells[1].split(1).unwrap();
        genotype.cells[1].kill_op(0, Op::SepConv5x5).unwrap();
        let svg = cells_svg(&genotype);
        let arrows = svg.matches("marker-end=").count() - Op::ALL.len();
        assert_eq!(arrows, genotype.live_op_count());
        let nodes: usize = genotype.cells.iter().map(|c| c.n_nodes).sum();
        assert_eq!(svg.matches("<circle").count(), nodes);
        assert!(
            !svg.contains("<title>edge 0: in0 → n2, sep_conv_5x5</title>"),
            "killed in cell 1"
        );
        assert_eq!(
            svg.matches("<title>edge 0: in0 → n3, sep_conv_5x5</title>").count(),
            1,
            "cell 2"
        );
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    }
}
