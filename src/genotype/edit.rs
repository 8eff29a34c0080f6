//! Topology edits on a cell: splitting edges, killing ops and deadheading.

use serde::{Deserialize, Serialize};

use super::cell::Cell;
use super::edge::Edge;
use super::error::GenotypeError;
use super::op::Op;

/// What a split created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    /// Index of the inserted node.
    pub new_node: usize,
    /// Id of the new edge into the inserted node.
    pub edge_a: u32,
    /// Id of the new edge out of the inserted node.
    pub edge_b: u32,
    /// Id of the original edge, which now bypasses the inserted node.
    pub shortcut: u32,
}

/// What a successful `kill_op` deleted besides the op itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removal {
    /// Ids of deleted edges: the emptied edge first, then orphaned ones in edge order.
    pub removed_edges: Vec<u32>,
    /// Deleted node indices in the numbering before the kill, ascending.
    pub removed_nodes: Vec<usize>,
}

/// An op the pruner wants dead, with how long its gate was open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Doomed {
    /// Edge carrying the op.
    pub edge_id: u32,
    /// The op to kill.
    pub op: Op,
    /// Gate-open time; ops with less are killed first.
    pub open_count: u64,
}

/// The result of `deadhead`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadheadOutcome {
    /// Ops killed, in kill order.
    pub killed: Vec<(u32, Op)>,
    /// Ops kept alive because killing them would have disconnected the cell.
    pub spared: Vec<(u32, Op)>,
    /// Ids of every edge deleted during the call.
    pub removed_edges: Vec<u32>,
    /// Deleted node indices in the numbering before the call, ascending.
    pub removed_nodes: Vec<usize>,
}

impl Cell {
    /// Inserts a node in the middle of edge `edge_id`; the original edge becomes a shortcut over it.
    pub fn split(&mut self, edge_id: u32) -> Result<Split, GenotypeError> {
        let position = self.position(edge_id).ok_or(GenotypeError::UnknownEdge {
            cell: self.index,
            edge: edge_id,
        })?;
        let edge_a = self.next_edge_id;
        let next_edge_id = edge_a.checked_add(2).ok_or(GenotypeError::EdgeIdsExhausted {
            cell: self.index,
            next_edge_id: edge_a,
        })?;
        let edge_b = edge_a + 1;
        let (from, new_node) = (self.edges[position].from, self.edges[position].to);

        let mut shortcut = self.edges.remove(position);
        for edge in &mut self.edges {
            for node in [&mut edge.from, &mut edge.to] {
                if *node >= new_node {
                    *node += 1;
                }
            }
        }
        shortcut.to = new_node + 1;

        let mut lineage = shortcut.lineage.clone();
        lineage.push(shortcut.id);
        let fresh = |id, from, to| Edge {
            id,
            from,
            to,
            ops: self.op_set.ops().to_vec(),
            lineage: lineage.clone(),
        };
        let head = [
            fresh(edge_a, from, new_node),
            fresh(edge_b, new_node, new_node + 1),
            shortcut,
        ];
        self.edges.splice(0..0, head);
        self.n_nodes += 1;
        self.next_edge_id = next_edge_id;
        Ok(Split {
            new_node,
            edge_a,
            edge_b,
            shortcut: edge_id,
        })
    }

    /// Whether killing `op` on `edge_id` would leave no input-to-output path.
    /// False when the edge is unknown or the op is not live (those fail for other reasons).
    pub fn would_disconnect(&self, edge_id: u32, op: Op) -> bool {
        match self.position(edge_id) {
            Some(position) if self.edges[position].has_op(op) => self.disconnects_without(position),
            _ => false,
        }
    }

    /// Kills `op` on edge `edge_id`, deleting the edge if it runs out of ops and then any orphaned nodes.
    /// On error the cell is left unchanged.
    pub fn kill_op(&mut self, edge_id: u32, op: Op) -> Result<Removal, GenotypeError> {
        let cell = self.index;
        let position = self
            .position(edge_id)
            .ok_or(GenotypeError::UnknownEdge { cell, edge: edge_id })?;
        if !self.edges[position].has_op(op) {
            return Err(GenotypeError::OpNotLive {
                cell,
                edge: edge_id,
                op,
            });
        }
        if self.disconnects_without(position) {
            return Err(GenotypeError::WouldDisconnect {
                cell,
                edge: edge_id,
                op,
            });
        }

        let edge = &mut self.edges[position];
        edge.ops.retain(|&live| live != op);
        let mut removal = Removal::default();
        if edge.ops.is_empty() {
            self.edges.remove(position);
            removal.removed_edges.push(edge_id);
        }
        let (orphan_edges, orphan_nodes) = self.remove_orphans();
        removal.removed_edges.extend(orphan_edges);
        removal.removed_nodes = orphan_nodes;
        Ok(removal)
    }

    /// Kills the doomed ops least-open first, sparing any whose death would disconnect the cell.
    /// Entries whose edge is already gone or whose op is no longer live are skipped silently.
    pub fn deadhead(&mut self, doomed: &[Doomed]) -> DeadheadOutcome {
        let mut order: Vec<&Doomed> = doomed.iter().collect();
        order.sort_by_key(|entry| entry.open_count);

        // original_index[v] is the pre-call index of the node currently numbered v.
        let mut original_index: Vec<usize> = (0..self.n_nodes).collect();
        let mut outcome = DeadheadOutcome::default();
        for entry in order {
            let live = self.edge(entry.edge_id).is_some_and(|edge| edge.has_op(entry.op));
            if !live {
                continue;
            }
            match self.kill_op(entry.edge_id, entry.op) {
                Ok(removal) => {
                    outcome.killed.push((entry.edge_id, entry.op));
                    outcome.removed_edges.extend(removal.removed_edges);
                    for &node in removal.removed_nodes.iter().rev() {
                        if node < original_index.len() {
                            outcome.removed_nodes.push(original_index.remove(node));
                        }
                    }
                }
                Err(_) => outcome.spared.push((entry.edge_id, entry.op)),
            }
        }
        outcome.removed_nodes.sort_unstable();
        outcome
    }

    /// Whether dropping one op from the edge at `position` cuts the last path.
    fn disconnects_without(&self, position: usize) -> bool {
        let edge_vanishes = self.edges[position].ops.len() <= 1;
        let skip = edge_vanishes.then_some(position);
        let reach = self.reach(skip);
        !reach.from_input.get(self.output()).copied().unwrap_or(false)
    }

    /// Deletes intermediate nodes that are not on an input-to-output path, with their edges,
    /// and renumbers the remaining nodes densely. Returns removed edge ids and old node indices.
    fn remove_orphans(&mut self) -> (Vec<u32>, Vec<usize>) {
        let reach = self.reach(None);
        let output = self.output();
        let orphan: Vec<bool> = (0..self.n_nodes)
            .map(|node| !self.is_input(node) && node != output && !reach.on_path(node))
            .collect();
        let is_orphan = |node: usize| orphan.get(node).copied().unwrap_or(false);

        let mut removed_edges = Vec::new();
        self.edges.retain(|edge| {
            let keep = !is_orphan(edge.from) && !is_orphan(edge.to);
            if !keep {
                removed_edges.push(edge.id);
            }
            keep
        });

        let removed_nodes: Vec<usize> = (0..self.n_nodes).filter(|&n| is_orphan(n)).collect();
        if !removed_nodes.is_empty() {
            let renumber = |node: usize| node - removed_nodes.partition_point(|&gone| gone < node);
            for edge in &mut self.edges {
                edge.from = renumber(edge.from);
                edge.to = renumber(edge.to);
            }
            self.n_nodes -= removed_nodes.len();
        }
        (removed_edges, removed_nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genotype::OpSet;

    fn links(cell: &Cell) -> Vec<(u32, usize, usize)> {
        cell.edges.iter().map(|e| (e.id, e.from, e.to)).collect()
    }

    /// Kills every op of `edge_id` but the last, leaving it with a single live op.
    fn thin_to_one(cell: &mut Cell, edge_id: u32) -> Op {
        let ops = cell.edge(edge_id).expect("edge exists").ops.clone();
        for &op in &ops[1..] {
            cell.kill_op(edge_id, op).expect("kill keeps a path");
        }
        ops[0]
    }

    #[test]
    fn split_matches_documented_example() {
        let mut cell = Cell::minimal(1);
        let split = cell.split(0).expect("edge 0 exists");
        assert_eq!(
            split,
            Split {
                new_node: 2,
                edge_a: 3,
                edge_b: 4,
                shortcut: 0
            }
        );
        assert_eq!(
            links(&cell),
            vec![(3, 0, 2), (4, 2, 3), (0, 0, 3), (1, 1, 3), (2, 3, 4)]
        );
        assert_eq!(cell.n_nodes, 5);
        assert_eq!(cell.next_edge_id, 5);
        assert_eq!(cell.edges[0].lineage, vec![0]);
        assert_eq!(cell.edges[1].lineage, vec![0]);
        assert!(cell.edges[2].lineage.is_empty());
        assert_eq!(cell.edges[0].ops, OpSet::Published.ops().to_vec());
        cell.check().expect("split keeps the cell valid");
    }

    #[test]
    fn split_keeps_shortcut_ops_and_extends_lineage() {
        let mut cell = Cell::minimal(0);
        cell.kill_op(0, Op::Identity).expect("op is live");
        let first = cell.split(0).expect("edge 0 exists");
        let second = cell.split(first.edge_a).expect("edge a exists");
        let shortcut = cell.edge(0).expect("shortcut kept");
        assert_eq!(shortcut.ops, OpSet::Published.ops()[1..].to_vec());
        let grandchild = cell.edge(second.edge_a).expect("new edge exists");
        assert_eq!(grandchild.lineage, vec![0, first.edge_a]);
        assert_eq!(grandchild.ops, OpSet::Published.ops().to_vec());
    }

    #[test]
    fn split_of_intermediate_edge_renumbers_later_nodes() {
        // cell 1: 0->2, 1->2, 2->3. Splitting 2->3 inserts node 3 and moves the output to 4.
        let mut cell = Cell::minimal(1);
        let split = cell.split(2).expect("edge 2 exists");
        assert_eq!(split.new_node, 3);
        assert_eq!(
            links(&cell),
            vec![(3, 2, 3), (4, 3, 4), (2, 2, 4), (0, 0, 2), (1, 1, 2)]
        );
        // Now split 0->2: node 2 is new, old nodes 2,3,4 become 3,4,5.
        cell.split(0).expect("edge 0 exists");
        assert_eq!(
            links(&cell),
            vec![
                (5, 0, 2),
                (6, 2, 3),
                (0, 0, 3),
                (3, 3, 4),
                (4, 4, 5),
                (2, 3, 5),
                (1, 1, 3)
            ]
        );
        assert_eq!(cell.n_nodes, 6);
        cell.check().expect("still valid");
    }

    #[test]
    fn split_of_unknown_edge_fails() {
        let mut cell = Cell::minimal(1);
        let err = cell.split(42).expect_err("no such edge");
        assert_eq!(err.to_string(), "cell 1: no edge with id 42");
        assert_eq!(cell, Cell::minimal(1));
    }

    #[test]
    fn split_refuses_when_edge_ids_run_out() {
        let mut cell = Cell::minimal(0);
        cell.next_edge_id = u32::MAX - 1;
        let before = cell.clone();
        let err = cell.split(0).expect_err("ids exhausted");
        assert!(err.to_string().contains("edge ids are exhausted"), "{err}");
        assert_eq!(cell, before);
        cell.next_edge_id = u32::MAX - 2;
        let split = cell.split(0).expect("two ids left");
        assert_eq!((split.edge_a, split.edge_b), (u32::MAX - 2, u32::MAX - 1));
        assert_eq!(cell.next_edge_id, u32::MAX);
    }

    #[test]
    fn kill_removes_emptied_edge_and_orphaned_node() {
        // cell 0 after split of 0->1: [0->1 (2), 1->2 (3), 0->2 (0), 2->3 (1)].
        let mut cell = Cell::minimal(0);
        cell.split(0).expect("edge 0 exists");
        assert_eq!(links(&cell), vec![(2, 0, 1), (3, 1, 2), (0, 0, 2), (1, 2, 3)]);

        // Emptying 1->2 leaves node 1 without a way to the output.
        let last = thin_to_one(&mut cell, 3);
        let removal = cell.kill_op(3, last).expect("shortcut keeps a path");
        assert_eq!(removal.removed_edges, vec![3, 2]);
        assert_eq!(removal.removed_nodes, vec![1]);
        assert_eq!(links(&cell), vec![(0, 0, 1), (1, 1, 2)]);
        assert_eq!(cell.n_nodes, 3);
        assert_eq!(cell.next_edge_id, 4);
        cell.check().expect("still valid");
    }

    #[test]
    fn kill_of_one_op_keeps_edge() {
        let mut cell = Cell::minimal(1);
        let removal = cell.kill_op(1, Op::SepConv5x5).expect("op is live");
        assert_eq!(removal, Removal::default());
        assert!(!cell.edge(1).expect("edge kept").has_op(Op::SepConv5x5));
        assert_eq!(cell.live_op_count(), 3 * 7 - 1);
        let err = cell.kill_op(1, Op::SepConv5x5).expect_err("already dead");
        assert_eq!(
            err.to_string(),
            "cell 1, edge 1: op sep_conv_5x5 is not live on this edge"
        );
    }

    #[test]
    fn emptying_one_input_edge_keeps_input_nodes() {
        let mut cell = Cell::minimal(1);
        let last = thin_to_one(&mut cell, 0);
        let removal = cell.kill_op(0, last).expect("input 1 still connects");
        assert_eq!(removal.removed_edges, vec![0]);
        assert!(removal.removed_nodes.is_empty());
        assert_eq!(cell.n_nodes, 4);
        assert_eq!(links(&cell), vec![(1, 1, 2), (2, 2, 3)]);
        cell.check().expect("unused input node is allowed");
    }

    #[test]
    fn refuses_to_cut_the_last_path() {
        let mut cell = Cell::minimal(0);
        let last = thin_to_one(&mut cell, 1);
        assert!(cell.would_disconnect(1, last));
        let before = cell.clone();
        let err = cell.kill_op(1, last).expect_err("last path");
        assert!(matches!(err, GenotypeError::WouldDisconnect { cell: 0, edge: 1, op } if op == last));
        assert_eq!(
            err.to_string(),
            format!("cell 0, edge 1: killing op {last} would leave no path from an input node to the output")
        );
        assert_eq!(cell, before);
        assert!(!cell.would_disconnect(0, Op::Identity));
        assert!(!cell.would_disconnect(1, Op::DilConv5x5), "op not live");
        assert!(!cell.would_disconnect(9, last), "unknown edge");
    }

    #[test]
    fn deadhead_spares_the_most_open_op_on_the_last_path() {
        let mut cell = Cell::minimal(0);
        let doomed: Vec<Doomed> = OpSet::Published
            .ops()
            .iter()
            .zip([5, 3, 90, 1, 7, 2, 4])
            .map(|(&op, open_count)| Doomed {
                edge_id: 1,
                op,
                open_count,
            })
            .collect();
        let outcome = cell.deadhead(&doomed);
        assert_eq!(outcome.spared, vec![(1, Op::AvgPool3x3)]);
        assert_eq!(
            outcome.killed,
            vec![
                (1, Op::SepConv3x3),
                (1, Op::DilConv3x3),
                (1, Op::MaxPool3x3),
                (1, Op::DilConv5x5),
                (1, Op::Identity),
                (1, Op::SepConv5x5),
            ]
        );
        assert_eq!(cell.edge(1).expect("edge kept").ops, vec![Op::AvgPool3x3]);
        assert!(outcome.removed_edges.is_empty());
        cell.check().expect("still valid");
    }

    #[test]
    fn deadhead_ties_keep_given_order() {
        let mut cell = Cell::minimal(0);
        let doomed = [Op::SepConv3x3, Op::Identity]
            .into_iter()
            .chain(
                OpSet::Published
                    .ops()
                    .iter()
                    .copied()
                    .filter(|op| !matches!(op, Op::SepConv3x3 | Op::Identity)),
            )
            .map(|op| Doomed {
                edge_id: 0,
                op,
                open_count: 0,
            })
            .collect::<Vec<_>>();
        let outcome = cell.deadhead(&doomed);
        // All tie; the last entry given is the one spared.
        assert_eq!(outcome.spared, vec![(0, Op::DilConv5x5)]);
        assert_eq!(outcome.killed[0], (0, Op::SepConv3x3));
        assert_eq!(outcome.killed[1], (0, Op::Identity));
    }

    #[test]
    fn deadhead_reports_nodes_in_original_numbering() {
        // Two stacked splits of cell 0, then kill the chain through the inner nodes.
        let mut cell = Cell::minimal(0);
        let outer = cell.split(0).expect("edge 0 exists"); // nodes: 0, 1 (new), 2, 3(out)
        let inner = cell.split(outer.edge_b).expect("edge b exists"); // 1->2 split: node 2 new
        assert_eq!(cell.n_nodes, 5);
        assert_eq!(
            links(&cell),
            vec![(4, 1, 2), (5, 2, 3), (3, 1, 3), (2, 0, 1), (0, 0, 3), (1, 3, 4)]
        );
        // Emptying 0->1 (id 2) orphans nodes 1 and 2 together, and with them edges 4, 5 and 3.
        let doomed: Vec<Doomed> = OpSet::Published
            .ops()
            .iter()
            .map(|&op| Doomed {
                edge_id: outer.edge_a,
                op,
                open_count: 1,
            })
            .chain([Doomed {
                edge_id: inner.edge_b,
                op: Op::Identity,
                open_count: 2,
            }])
            .collect();
        let outcome = cell.deadhead(&doomed);
        assert_eq!(outcome.killed.len(), 7);
        assert!(outcome.spared.is_empty(), "entry on a removed edge is skipped");
        assert_eq!(outcome.removed_edges, vec![2, 4, 5, 3]);
        assert_eq!(outcome.removed_nodes, vec![1, 2]);
        assert_eq!(links(&cell), vec![(0, 0, 1), (1, 1, 2)]);
    }

    #[test]
    fn deadhead_maps_successive_renumberings_back() {
        // Cell 1 with two independent side chains; each is removed by a separate kill.
        let mut cell = Cell::minimal(1); // 0->2, 1->2, 2->3
        let left = cell.split(0).expect("edge 0"); // new node 2 on 0->...
        let right = cell.split(1).expect("edge 1"); // new node on 1->...
        cell.check().expect("valid");
        let n_before = cell.n_nodes;
        assert_eq!(n_before, 6);
        let node_of = |cell: &Cell, id: u32| cell.edge(id).expect("edge").to;
        let left_node = node_of(&cell, left.edge_a);
        let right_node = node_of(&cell, right.edge_a);
        assert_ne!(left_node, right_node);

        let doomed: Vec<Doomed> = [left.edge_a, right.edge_b]
            .into_iter()
            .flat_map(|edge_id| {
                OpSet::Published.ops().iter().copied().map(move |op| Doomed {
                    edge_id,
                    op,
                    open_count: 0,
                })
            })
            .collect();
        let outcome = cell.deadhead(&doomed);
        assert!(outcome.spared.is_empty());
        let mut expected = vec![left_node, right_node];
        expected.sort_unstable();
        assert_eq!(outcome.removed_nodes, expected);
        assert_eq!(cell.n_nodes, 4);
        cell.check().expect("valid");
    }
}
