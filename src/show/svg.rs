//! SVG drawings of cells: nodes as circles, one arrow per live op coloured by op type, and a legend.

use super::layout::{NodePosition, cell_layout, edge_route};
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
        Op::Conv1x1 => ("#999999", ""),
        Op::Conv3x3 => ("#332288", ""),
    }
}

/// Half the height of the band around a layer that arrows cross straight down, clear of the layer's nodes.
const BAND: f64 = RADIUS + 4.0;

/// An op's arrow as cubic segments, in pixels: from just below the source, straight down through each waypoint's
/// band, to just above the target. `shift` spreads the ops of one edge sideways, a little at the nodes, more in
/// between; each curve leaves and arrives vertically, so the arrow is smooth and never drifts sideways near a layer.
fn arrow_segments(
    source: (f64, f64),
    waypoints: &[(f64, f64)],
    target: (f64, f64),
    shift: f64,
) -> Vec<[(f64, f64); 4]> {
    // Control points fan out sideways next to nodes only; next to a waypoint they stay in line, so that an arrow
    // runs straight through the layers it skips.
    let curve = |(x1, y1): (f64, f64), (x2, y2): (f64, f64), fan: (f64, f64)| {
        let bend = (y2 - y1) * 0.45;
        [(x1, y1), (x1 + fan.0, y1 + bend), (x2 + fan.1, y2 - bend), (x2, y2)]
    };
    let line = |(x1, y1): (f64, f64), (x2, y2): (f64, f64)| [(x1, y1), (x1, y1), (x2, y2), (x2, y2)];
    let mut segments = Vec::new();
    let mut at = (source.0 + shift * 0.6, source.1 + RADIUS);
    let mut fan_out = shift;
    for &(x, y) in waypoints {
        let (enter, leave) = ((x + shift, y - BAND), (x + shift, y + BAND));
        segments.push(curve(at, enter, (fan_out, 0.0)));
        segments.push(line(enter, leave));
        at = leave;
        fan_out = 0.0;
    }
    segments.push(curve(
        at,
        (target.0 + shift * 0.6, target.1 - RADIUS - 1.0),
        (fan_out, shift),
    ));
    segments
}

fn path_data(segments: &[[(f64, f64); 4]]) -> String {
    let mut data = format!("M{:.1},{:.1}", segments[0][0].0, segments[0][0].1);
    for [_, c1, c2, end] in segments {
        let _ = write!(
            data,
            " C{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}",
            c1.0, c1.1, c2.0, c2.1, end.0, end.1
        );
    }
    data
}

fn marker_id(op: Op) -> String {
    format!("arrow-{}", op.name())
}

/// The ops a drawing of `genotype` names: those its cells' new edges hold, and any other live op, in canonical
/// order.
fn drawn_ops(genotype: &Genotype) -> Vec<Op> {
    let mut ops: Vec<Op> = genotype
        .cells
        .iter()
        .flat_map(|cell| {
            cell.op_set
                .ops()
                .iter()
                .copied()
                .chain(cell.edges.iter().flat_map(|e| e.ops.clone()))
        })
        .collect();
    ops.sort();
    ops.dedup();
    ops
}

fn defs(ops: &[Op]) -> String {
    let mut text = String::from("<defs>\n");
    for &op in ops {
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
    let at_layout = |p: NodePosition| (left + MARGIN + p.x * COLUMN, top + TITLE + MARGIN + p.layer * LAYER);
    let at = |node: usize| at_layout(positions[node]);
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
        let route = edge_route(&positions, edge.from, edge.to);
        let n = edge.ops.len() as f64;
        for (i, &op) in edge.ops.iter().enumerate() {
            let shift = (i as f64 - (n - 1.0) / 2.0) * OP_GAP;
            let segments = arrow_segments(
                at(edge.from),
                &route.iter().map(|p| at_layout(*p)).collect::<Vec<_>>(),
                at(edge.to),
                shift,
            );
            let (colour, dash) = op_colour(op);
            let _ = writeln!(
                text,
                r#"<path d="{}" stroke="{colour}" stroke-dasharray="{dash}" marker-end="url(#{})"><title>edge {}: {} → {}, {}</title></path>"#,
                path_data(&segments),
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

fn legend(ops: &[Op], left: f64, top: f64) -> String {
    let mut text = String::new();
    for (i, &op) in ops.iter().enumerate() {
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

fn document(ops: &[Op], width: f64, height: f64, body: &str) -> String {
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="cells" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif">
<style>
svg.cells path {{ fill: none; stroke-width: 1.6; }}
svg.cells circle {{ stroke: #333; stroke-width: 1.5; fill: #fff; }}
svg.cells circle.input {{ fill: #e8e8e8; }}
svg.cells circle.output {{ fill: #333; }}
svg.cells text.label {{ font-size: 12px; text-anchor: middle; fill: #000; }}
svg.cells circle.output + text.label {{ fill: #fff; }}
svg.cells text.title {{ font-size: 15px; font-weight: bold; }}
svg.cells text.subtitle {{ font-size: 13px; fill: #444; }}
svg.cells text.legend {{ font-size: 13px; }}
</style>
<rect width="100%" height="100%" fill="#fff"/>
{}{body}</svg>
"##,
        defs(ops)
    )
}

/// One cell of `genotype`, with the legend.
pub fn cell_svg(genotype: &Genotype, k: usize) -> String {
    let (width, height) = cell_size(&genotype.cells[k]);
    let width = width.max(LEGEND_WIDTH);
    let ops = drawn_ops(genotype);
    let body = cell_group(genotype, k, 0.0, 0.0) + &legend(&ops, MARGIN, height + 10.0);
    document(&ops, width, height + LEGEND_HEIGHT, &body)
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
    let ops = drawn_ops(genotype);
    body.push_str(&legend(&ops, MARGIN, height + 10.0));
    document(&ops, left.max(LEGEND_WIDTH), height + LEGEND_HEIGHT, &body)
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
        let arrows = svg.matches("marker-end=").count() - crate::genotype::OpSet::Published.ops().len();
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

    fn bezier(segment: &[(f64, f64); 4], t: f64) -> (f64, f64) {
        let u = 1.0 - t;
        let weights = [u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t];
        (0..4).fold((0.0, 0.0), |(x, y), k| {
            (x + weights[k] * segment[k].0, y + weights[k] * segment[k].1)
        })
    }

    #[test]
    fn no_arrow_crosses_a_node_other_than_its_ends() {
        for stride in [3, 5, 7, 11] {
            let mut cell = Cell::minimal(2);
            for k in 0..30 {
                let edge = cell.edges[(k * stride) % cell.edges.len()].id;
                cell.split(edge).unwrap();
            }
            assert_arrows_keep_off_nodes(&cell);
        }
    }

    fn assert_arrows_keep_off_nodes(cell: &Cell) {
        let positions = cell_layout(cell);
        let pixel = |p: NodePosition| (p.x * COLUMN, p.layer * LAYER);
        for edge in &cell.edges {
            let waypoints: Vec<_> = edge_route(&positions, edge.from, edge.to)
                .into_iter()
                .map(pixel)
                .collect();
            // The outermost ops of a full edge.
            for shift in [-3.0 * OP_GAP, 3.0 * OP_GAP] {
                let segments = arrow_segments(
                    pixel(positions[edge.from]),
                    &waypoints,
                    pixel(positions[edge.to]),
                    shift,
                );
                for segment in &segments {
                    for step in 0..=50 {
                        let (x, y) = bezier(segment, step as f64 / 50.0);
                        for (node, &p) in positions.iter().enumerate() {
                            if node == edge.from || node == edge.to {
                                continue;
                            }
                            let (nx, ny) = pixel(p);
                            let distance = ((x - nx).powi(2) + (y - ny).powi(2)).sqrt();
                            assert!(
                                distance > RADIUS + 2.0,
                                "edge {} ({} → {}) passes {distance:.1} px from node {node}",
                                edge.id,
                                edge.from,
                                edge.to
                            );
                        }
                    }
                }
            }
        }
    }
}
