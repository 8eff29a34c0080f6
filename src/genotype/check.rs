//! Structural invariants of a cell.

use std::collections::HashSet;

use super::cell::Cell;
use super::error::GenotypeError;

impl Cell {
    /// Verifies every structural invariant, naming the first one that fails.
    pub fn check(&self) -> Result<(), GenotypeError> {
        self.check_node_counts()
            .and_then(|()| self.check_edges())
            .and_then(|()| self.check_paths())
            .map_err(|reason| GenotypeError::InvalidCell {
                cell: self.index,
                reason,
            })
    }

    fn check_node_counts(&self) -> Result<(), String> {
        let expected_inputs = self.index.checked_add(1);
        if expected_inputs != Some(self.n_inputs) {
            return Err(format!(
                "n_inputs is {} but cell {} must have {} input nodes",
                self.n_inputs,
                self.index,
                self.index.saturating_add(1)
            ));
        }
        if self.n_nodes <= self.n_inputs {
            return Err(format!(
                "n_nodes is {} but a cell with {} inputs needs at least {} nodes",
                self.n_nodes,
                self.n_inputs,
                self.n_inputs.saturating_add(1)
            ));
        }
        // Each intermediate node needs an edge of its own into it; this bound also keeps a
        // hostile n_nodes from driving the allocations below.
        let max_nodes = self.n_inputs.saturating_add(1).saturating_add(self.edges.len());
        if self.n_nodes > max_nodes {
            return Err(format!(
                "n_nodes is {} but {} edges can connect at most {} nodes",
                self.n_nodes,
                self.edges.len(),
                max_nodes
            ));
        }
        Ok(())
    }

    fn check_edges(&self) -> Result<(), String> {
        let mut seen_ids = HashSet::new();
        for edge in &self.edges {
            let id = edge.id;
            if edge.from >= edge.to {
                return Err(format!(
                    "edge {id} goes from node {} to node {}, but edges must go from a lower to a higher node",
                    edge.from, edge.to
                ));
            }
            if edge.to >= self.n_nodes {
                return Err(format!(
                    "edge {id} ends at node {} but the cell has only {} nodes",
                    edge.to, self.n_nodes
                ));
            }
            if self.is_input(edge.to) {
                return Err(format!("edge {id} ends at input node {}", edge.to));
            }
            if edge.ops.is_empty() {
                return Err(format!("edge {id} has no live ops"));
            }
            if let Some(pair) = edge.ops.windows(2).find(|pair| pair[0] >= pair[1]) {
                let problem = if pair[0] == pair[1] {
                    format!("op {} is listed twice", pair[0])
                } else {
                    format!("op {} is listed after {}", pair[1], pair[0])
                };
                return Err(format!(
                    "edge {id}: {problem}; ops must be distinct and in canonical order"
                ));
            }
            if id >= self.next_edge_id {
                return Err(format!("edge id {id} is not below next_edge_id {}", self.next_edge_id));
            }
            if !seen_ids.insert(id) {
                return Err(format!("edge id {id} is used twice"));
            }
        }
        Ok(())
    }

    fn check_paths(&self) -> Result<(), String> {
        let reach = self.reach(None);
        let output = self.output();
        if !reach.from_input[output] {
            return Err(format!("no path from an input node to the output node {output}"));
        }
        if let Some(stray) = (self.n_inputs..output).find(|&node| !reach.on_path(node)) {
            let side = if reach.from_input[stray] {
                "cannot reach the output"
            } else {
                "is not reachable from any input"
            };
            return Err(format!(
                "node {stray} {side}; every intermediate node must lie on an input-to-output path"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genotype::op::Op;

    fn reason(cell: &Cell) -> String {
        cell.check().expect_err("cell is invalid").to_string()
    }

    #[test]
    fn minimal_cells_pass() {
        for k in 0..5 {
            Cell::minimal(k).check().expect("minimal cell is valid");
        }
    }

    #[test]
    fn detects_each_broken_invariant() {
        let base = Cell::minimal(1);

        let mut cell = base.clone();
        cell.n_inputs = 3;
        assert!(reason(&cell).contains("n_inputs is 3"), "{}", reason(&cell));

        let mut cell = base.clone();
        cell.edges[1].from = 2;
        assert!(reason(&cell).contains("edge 1 goes from node 2 to node 2"));

        let mut cell = base.clone();
        cell.edges[2].to = 7;
        assert!(reason(&cell).contains("edge 2 ends at node 7"));

        let mut cell = base.clone();
        cell.edges[0].from = 0;
        cell.edges[0].to = 1;
        assert!(reason(&cell).contains("edge 0 ends at input node 1"));

        let mut cell = base.clone();
        cell.edges[0].ops.clear();
        assert!(reason(&cell).contains("edge 0 has no live ops"));

        let mut cell = base.clone();
        cell.edges[0].ops.swap(0, 1);
        assert!(reason(&cell).contains("op identity is listed after max_pool_3x3"));

        let mut cell = base.clone();
        cell.edges[0].ops = vec![Op::Identity, Op::Identity];
        assert!(reason(&cell).contains("op identity is listed twice"));

        let mut cell = base.clone();
        cell.edges[1].id = 0;
        assert!(reason(&cell).contains("edge id 0 is used twice"));

        let mut cell = base.clone();
        cell.next_edge_id = 2;
        assert!(reason(&cell).contains("edge id 2 is not below next_edge_id 2"));

        let mut cell = base.clone();
        cell.edges.pop();
        assert!(reason(&cell).contains("no path from an input node to the output node 3"));

        let mut cell = base.clone();
        cell.n_nodes = usize::MAX;
        assert!(reason(&cell).contains("3 edges can connect at most 6 nodes"));

        let mut cell = base.clone();
        cell.n_nodes = 5;
        cell.edges[2].to = 4;
        assert_eq!(
            reason(&cell),
            "cell 1: node 3 is not reachable from any input; every intermediate node must lie on an input-to-output path"
        );
    }
}
