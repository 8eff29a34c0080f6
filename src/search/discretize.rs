//! `--final-ops K` (docs/ALGORITHM.md §5): before the final training, each edge keeps only the K ops whose gates
//! were open longest in the last supernet training, as DARTS-style discretisation keeps the strongest ops.

use super::record::GateOpen;
use crate::genotype::{Genotype, Op};
use crate::supernet::OpRef;
use std::collections::HashMap;

/// What discretisation removed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Discretized {
    /// Ops removed.
    pub removed: Vec<OpRef>,
    /// Ops ranked out but kept, because removing them would have cut the cell's last path.
    pub kept: Vec<OpRef>,
}

/// `genotype` with every edge cut down to its `keep` ops of longest open gate in `open`. An edge created by the
/// last mutation pass has no record of its own; it takes the record of the edge it was split from (its lineage).
/// Ties, and ops with no record at all, go in the canonical op order.
pub fn keep_top_ops(genotype: &mut Genotype, open: &[GateOpen], keep: usize) -> Discretized {
    let counts: HashMap<(usize, u32, Op), u64> =
        open.iter().map(|g| ((g.op.cell, g.op.edge, g.op.op), g.open)).collect();
    let mut outcome = Discretized::default();
    for k in 0..genotype.cells.len() {
        let edges = genotype.cells[k].edges.clone();
        for edge in edges {
            let recorded = |op: Op| {
                std::iter::once(edge.id)
                    .chain(edge.lineage.iter().rev().copied())
                    .find_map(|id| counts.get(&(k, id, op)).copied())
                    .unwrap_or(0)
            };
            let mut ranked = edge.ops.clone();
            // Stable: equal counts keep the canonical order of `edge.ops`.
            ranked.sort_by_key(|&op| std::cmp::Reverse(recorded(op)));
            for &op in ranked.iter().skip(keep.max(1)) {
                let reference = OpRef {
                    cell: k,
                    edge: edge.id,
                    op,
                };
                match genotype.cells[k].kill_op(edge.id, op) {
                    Ok(_) => outcome.removed.push(reference),
                    Err(_) => outcome.kept.push(reference),
                }
            }
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genotype::InputShape;

    fn open(cell: usize, edge: u32, op: Op, open: u64) -> GateOpen {
        GateOpen {
            op: OpRef { cell, edge, op },
            open,
        }
    }

    #[test]
    fn each_edge_keeps_its_longest_open_ops_and_a_split_edge_ranks_by_its_parent() {
        let input = InputShape {
            channels: 1,
            height: 8,
            width: 8,
        };
        let mut genotype = Genotype::minimal(1, 4, input, 10).unwrap();
        let parent = genotype.cells[0].edges[0].id;
        let records = vec![
            open(0, parent, Op::SepConv5x5, 90),
            open(0, parent, Op::MaxPool3x3, 50),
            open(0, parent, Op::Identity, 10),
        ];
        // The last pass split the recorded edge: its two new edges have no record of their own.
        let split = genotype.cells[0].split(parent).unwrap();
        let outcome = keep_top_ops(&mut genotype, &records, 2);
        let ops = |id: u32| genotype.cells[0].edge(id).unwrap().ops.clone();
        for id in [parent, split.edge_a, split.edge_b] {
            assert_eq!(ops(id), [Op::MaxPool3x3, Op::SepConv5x5], "edge {id}");
        }
        // Unrecorded edges keep the first two ops of the canonical order.
        let other = genotype.cells[1].edges[0].id;
        assert_eq!(ops_of(&genotype, 1, other), Op::ALL[..2]);
        assert!(genotype.cells.iter().flat_map(|c| &c.edges).all(|e| e.ops.len() == 2));
        assert_eq!(
            outcome.removed.len() + outcome.kept.len(),
            5 * genotype.cells.iter().map(|c| c.edges.len()).sum::<usize>()
        );
        assert!(outcome.kept.is_empty(), "two ops per edge never cut a path");
        genotype.check().unwrap();
    }

    fn ops_of(genotype: &Genotype, cell: usize, edge: u32) -> Vec<Op> {
        genotype.cells[cell].edge(edge).unwrap().ops.clone()
    }
}
