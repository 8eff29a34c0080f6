//! A cell: a small DAG of nodes joined by edges that carry candidate ops.

use serde::{Deserialize, Serialize};

use super::edge::Edge;
use super::op::OpSet;

/// Cell `index` of a network: input nodes `0..n_inputs`, then intermediate nodes, then the output node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cell {
    /// Position of the cell in the network (cell k has k+1 inputs).
    pub index: usize,
    /// Number of input nodes; they are numbered `0..n_inputs`.
    pub n_inputs: usize,
    /// Total node count; the output is node `n_nodes - 1`.
    pub n_nodes: usize,
    /// The edges, each with at least one live op.
    pub edges: Vec<Edge>,
    /// Id the next created edge will get.
    pub next_edge_id: u32,
    /// The ops every new edge of the cell holds; files leave the published set unwritten.
    #[serde(default, skip_serializing_if = "OpSet::is_published")]
    pub op_set: OpSet,
}

/// Which nodes can be reached from an input node and which can reach the output.
pub(super) struct Reach {
    pub from_input: Vec<bool>,
    pub to_output: Vec<bool>,
}

impl Reach {
    /// Whether `node` lies on some input-to-output path.
    pub fn on_path(&self, node: usize) -> bool {
        self.from_input.get(node).copied().unwrap_or(false) && self.to_output.get(node).copied().unwrap_or(false)
    }
}

impl Cell {
    /// The initial topology with the published ops: every input feeds one intermediate node, which feeds the
    /// output.
    pub fn minimal(index: usize) -> Cell {
        Cell::minimal_with(index, OpSet::Published)
    }

    /// The initial topology, every edge holding the ops of `op_set`.
    pub fn minimal_with(index: usize, op_set: OpSet) -> Cell {
        let hub = index + 1;
        let output = index + 2;
        let links = (0..=index).map(|input| (input, hub)).chain([(hub, output)]);
        let edges: Vec<Edge> = links
            .enumerate()
            .map(|(id, (from, to))| Edge {
                id: id as u32,
                from,
                to,
                ops: op_set.ops().to_vec(),
                lineage: Vec::new(),
            })
            .collect();
        Cell {
            index,
            n_inputs: index + 1,
            n_nodes: index + 3,
            next_edge_id: edges.len() as u32,
            edges,
            op_set,
        }
    }

    /// Index of the output node.
    pub fn output(&self) -> usize {
        self.n_nodes.saturating_sub(1)
    }

    /// Whether `node` is one of the input nodes.
    pub fn is_input(&self, node: usize) -> bool {
        node < self.n_inputs
    }

    /// Spatial stride of `edge`: 2 when it leaves an input of a reduction cell, else 1.
    pub fn stride(&self, edge: &Edge) -> usize {
        if self.index >= 1 && self.is_input(edge.from) {
            2
        } else {
            1
        }
    }

    /// The edge with id `id`, if present.
    pub fn edge(&self, id: u32) -> Option<&Edge> {
        self.edges.iter().find(|edge| edge.id == id)
    }

    /// Position in `self.edges` of the edge with id `id`, if present.
    pub fn position(&self, id: u32) -> Option<usize> {
        self.edges.iter().position(|edge| edge.id == id)
    }

    /// Total number of live ops over all edges.
    pub fn live_op_count(&self) -> usize {
        self.edges.iter().map(|edge| edge.ops.len()).sum()
    }

    /// The nodes a forward pass evaluates, in order, each with its outgoing edges. A node other than the output
    /// without outgoing edges feeds nothing, so it is left out; the network and its ONNX export both walk this.
    pub fn evaluation_order(&self) -> impl Iterator<Item = (usize, Vec<&Edge>)> + '_ {
        let output = self.output();
        (0..self.n_nodes).filter_map(move |node| {
            let outgoing: Vec<&Edge> = self.edges.iter().filter(|edge| edge.from == node).collect();
            (node == output || !outgoing.is_empty()).then_some((node, outgoing))
        })
    }

    /// Whether some input node reaches the output over the existing edges.
    pub fn has_input_output_path(&self) -> bool {
        self.n_nodes > 0 && self.reach(None).from_input[self.output()]
    }

    /// Reachability over the edges, leaving out the edge at position `skip`.
    /// Edges pointing outside `0..n_nodes` are ignored, so this is safe on unchecked cells.
    pub(super) fn reach(&self, skip: Option<usize>) -> Reach {
        let n = self.n_nodes;
        let links: Vec<(usize, usize)> = self
            .edges
            .iter()
            .enumerate()
            .filter(|(position, edge)| Some(*position) != skip && edge.from < n && edge.to < n)
            .map(|(_, edge)| (edge.from, edge.to))
            .collect();

        let mut from_input = vec![false; n];
        let mut stack: Vec<usize> = (0..self.n_inputs.min(n)).collect();
        while let Some(node) = stack.pop() {
            if !std::mem::replace(&mut from_input[node], true) {
                stack.extend(links.iter().filter(|link| link.0 == node).map(|link| link.1));
            }
        }

        let mut to_output = vec![false; n];
        let mut stack: Vec<usize> = if n > 0 { vec![n - 1] } else { Vec::new() };
        while let Some(node) = stack.pop() {
            if !std::mem::replace(&mut to_output[node], true) {
                stack.extend(links.iter().filter(|link| link.1 == node).map(|link| link.0));
            }
        }

        Reach { from_input, to_output }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(cell: &Cell) -> Vec<(u32, usize, usize)> {
        cell.edges.iter().map(|e| (e.id, e.from, e.to)).collect()
    }

    #[test]
    fn minimal_cell_0() {
        let cell = Cell::minimal(0);
        assert_eq!((cell.n_inputs, cell.n_nodes, cell.next_edge_id), (1, 3, 2));
        assert_eq!(links(&cell), vec![(0, 0, 1), (1, 1, 2)]);
    }

    #[test]
    fn minimal_cell_1() {
        let cell = Cell::minimal(1);
        assert_eq!((cell.n_inputs, cell.n_nodes, cell.next_edge_id), (2, 4, 3));
        assert_eq!(links(&cell), vec![(0, 0, 2), (1, 1, 2), (2, 2, 3)]);
    }

    #[test]
    fn minimal_cell_2() {
        let cell = Cell::minimal(2);
        assert_eq!((cell.n_inputs, cell.n_nodes, cell.next_edge_id), (3, 5, 4));
        assert_eq!(links(&cell), vec![(0, 0, 3), (1, 1, 3), (2, 2, 3), (3, 3, 4)]);
        for edge in &cell.edges {
            assert_eq!(edge.ops, OpSet::Published.ops());
            assert!(edge.lineage.is_empty());
        }
        assert_eq!(cell.live_op_count(), 4 * 7);
        assert_eq!(cell.output(), 4);
        assert!(cell.has_input_output_path());
    }

    #[test]
    fn stride_is_two_only_from_inputs_of_later_cells() {
        let first = Cell::minimal(0);
        assert!(first.edges.iter().all(|e| first.stride(e) == 1));
        let cell = Cell::minimal(2);
        let strides: Vec<usize> = cell.edges.iter().map(|e| cell.stride(e)).collect();
        assert_eq!(strides, vec![2, 2, 2, 1]);
    }

    #[test]
    fn lookup_by_id() {
        let cell = Cell::minimal(1);
        assert_eq!(cell.position(2), Some(2));
        assert_eq!(cell.edge(1).map(|e| (e.from, e.to)), Some((1, 2)));
        assert_eq!(cell.position(9), None);
        assert!(cell.edge(9).is_none());
    }

    #[test]
    fn path_detection_ignores_skipped_edge() {
        let cell = Cell::minimal(0);
        assert!(cell.reach(None).from_input[2]);
        assert!(!cell.reach(Some(1)).from_input[2]);
        assert!(!cell.reach(Some(0)).to_output[0]);
    }

    #[test]
    fn a_dense_cell_grows_dense_edges_and_says_so_in_its_json() {
        let mut cell = Cell::minimal_with(1, OpSet::Dense);
        assert!(cell.edges.iter().all(|e| e.ops == OpSet::Dense.ops()));
        let split = cell.split(cell.edges[0].id).unwrap();
        for id in [split.edge_a, split.edge_b] {
            assert_eq!(cell.edge(id).unwrap().ops, OpSet::Dense.ops());
        }
        let json = serde_json::to_string(&cell).unwrap();
        assert!(json.contains(r#""op_set":"dense""#), "{json}");
        assert_eq!(serde_json::from_str::<Cell>(&json).unwrap(), cell);
        let published = serde_json::to_string(&Cell::minimal(1)).unwrap();
        assert!(
            !published.contains("op_set"),
            "files of the published set stay as they were: {published}"
        );
    }
}
