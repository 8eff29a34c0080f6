//! Node positions of a cell drawing, from a layered (Sugiyama) layout: inputs on top, the output at the bottom.

use crate::genotype::Cell;
use rust_sugiyama::configure::Config;

/// Where a node is drawn, in layout units (one unit is the gap between neighbouring nodes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NodePosition {
    /// Horizontal position.
    pub x: f64,
    /// Layer: 0 for the top, growing downwards.
    pub layer: f64,
}

/// Positions of every node of `cell`, indexed by node number.
pub fn cell_layout(cell: &Cell) -> Vec<NodePosition> {
    let edges: Vec<(u32, u32)> = cell.edges.iter().map(|e| (e.from as u32, e.to as u32)).collect();
    let vertices: Vec<(u32, (f64, f64))> = (0..cell.n_nodes as u32).map(|n| (n, (1.0, 1.0))).collect();
    let config = Config {
        vertex_spacing: 1.0,
        ..Config::default()
    };
    let mut positions = vec![None; cell.n_nodes];
    // Each connected part is laid out on its own; parts are placed side by side.
    let mut offset = 0.0;
    for (part, width, _height) in rust_sugiyama::from_vertices_and_edges(&vertices, &edges, &config) {
        let min_x = part.iter().map(|(_, (x, _))| *x).fold(f64::INFINITY, f64::min);
        for (node, (x, y)) in &part {
            positions[*node] = Some((x - min_x + offset, *y));
        }
        offset += width.max(1.0) + 1.0;
    }
    let ys: Vec<f64> = positions.iter().flatten().map(|(_, y)| *y).collect();
    let mut levels = ys.clone();
    levels.sort_by(f64::total_cmp);
    levels.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
    let xs: Vec<f64> = positions.iter().flatten().map(|(x, _)| *x).collect();
    let mut columns = xs.clone();
    columns.sort_by(f64::total_cmp);
    columns.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
    // Coordinates become ranks, so the drawing has unit gaps whatever the layout's own units.
    let rank = |values: &[f64], v: f64| values.iter().position(|u| (u - v).abs() < 1e-9).unwrap_or(0) as f64;
    let mut placed: Vec<NodePosition> = positions
        .into_iter()
        .enumerate()
        .map(|(node, p)| match p {
            Some((x, y)) => NodePosition {
                x: rank(&columns, x),
                layer: rank(&levels, y),
            },
            // A node no edge touches (never in a checked genotype): park it at the bottom left.
            None => NodePosition {
                x: node as f64,
                layer: levels.len() as f64,
            },
        })
        .collect();
    // Inputs go on the top row, where a reader looks for them; the layout may have lowered one to shorten its
    // edges. Only inputs have no incoming edge, so the top row holds nothing else; shift any that now collide.
    for node in 0..cell.n_inputs.min(placed.len()) {
        placed[node].layer = 0.0;
        while (0..node).any(|other| placed[other] == placed[node]) {
            placed[node].x += 1.0;
        }
    }
    placed
}

/// Waypoints, in layout units, of an arrow from node `from` to node `to`: one per layer strictly between theirs,
/// each in a free slot of that layer (half-way between nodes, or a column without a node), so that arrows skipping
/// layers pass between nodes instead of over them. Empty for arrows between neighbouring layers.
pub fn edge_route(positions: &[NodePosition], from: usize, to: usize) -> Vec<NodePosition> {
    let (start, end) = (positions[from], positions[to]);
    let mut route = Vec::new();
    let mut previous = start;
    let mut layer = start.layer + 1.0;
    while layer < end.layer {
        let remaining = end.layer - previous.layer;
        let ideal = previous.x + (end.x - previous.x) / remaining;
        let occupied: Vec<f64> = positions.iter().filter(|p| p.layer == layer).map(|p| p.x).collect();
        let free = |slot: f64| occupied.iter().all(|x| (x - slot).abs() >= 0.5);
        // Slots are half columns; the nearest free one to the straight line wins, ties towards the previous point.
        let centre = (ideal * 2.0).round() / 2.0;
        let slot = (0..)
            .flat_map(|k| {
                let step = 0.5 * k as f64;
                let toward = if previous.x <= centre { -step } else { step };
                [centre + toward, centre - toward]
            })
            .find(|&slot| free(slot))
            .expect("a layer has finitely many nodes, so some slot is free");
        let point = NodePosition { x: slot, layer };
        route.push(point);
        previous = point;
        layer += 1.0;
    }
    route
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_on_top_every_edge_points_down_and_no_two_nodes_overlap() {
        let mut cell = Cell::minimal(2);
        for _ in 0..12 {
            let edge = cell.edges[cell.edges.len() / 2].id;
            cell.split(edge).unwrap();
        }
        let positions = cell_layout(&cell);
        assert_eq!(positions.len(), cell.n_nodes);
        assert!((0..cell.n_inputs).all(|input| positions[input].layer == 0.0));
        for edge in &cell.edges {
            assert!(
                positions[edge.from].layer < positions[edge.to].layer,
                "edge {} → {} does not point down",
                edge.from,
                edge.to
            );
        }
        for a in 0..cell.n_nodes {
            for b in a + 1..cell.n_nodes {
                assert_ne!(positions[a], positions[b], "nodes {a} and {b} overlap");
            }
        }
    }

    #[test]
    fn routes_of_arrows_that_skip_layers_keep_off_the_nodes_in_between() {
        let mut cell = Cell::minimal(2);
        for k in 0..20 {
            let edge = cell.edges[(k * 7) % cell.edges.len()].id;
            cell.split(edge).unwrap();
        }
        let positions = cell_layout(&cell);
        let mut skipping = 0;
        for edge in &cell.edges {
            let route = edge_route(&positions, edge.from, edge.to);
            let span = positions[edge.to].layer - positions[edge.from].layer;
            assert_eq!(route.len(), span as usize - 1, "one waypoint per layer in between");
            skipping += usize::from(!route.is_empty());
            for point in &route {
                for node in &positions {
                    if node.layer == point.layer {
                        assert!((node.x - point.x).abs() >= 0.5, "edge {} runs over a node", edge.id);
                    }
                }
            }
        }
        assert!(skipping > 0, "the test cell should have arrows that skip layers");
    }
}
