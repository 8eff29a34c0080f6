//! A directed edge of a cell with its live candidate operations.

use serde::{Deserialize, Serialize};

use super::op::Op;

/// An edge `from -> to` (from < to) carrying the ops still alive on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edge {
    /// Identifier, unique within its cell and never reused.
    pub id: u32,
    /// Source node index.
    pub from: usize,
    /// Target node index.
    pub to: usize,
    /// Live ops, sorted in `Op::ALL` order without duplicates.
    pub ops: Vec<Op>,
    /// Ids of the edges this one was split from, oldest first.
    pub lineage: Vec<u32>,
}

impl Edge {
    /// Whether `op` is still live on this edge.
    pub fn has_op(&self, op: Op) -> bool {
        self.ops.contains(&op)
    }
}
