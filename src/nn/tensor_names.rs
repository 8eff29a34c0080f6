//! The names of a network's tensors (docs/EXPORT.md). The variable store creates every tensor under these names,
//! weights.safetensors stores them under the same names, and the exporter reads them back by them: one naming
//! scheme, declared here. Names are dot-separated paths, e.g. `cells.1.edges.4.sep_conv_3x3.first.depthwise.weight`.

use crate::genotype::Op;

/// The stem: `stem.conv.weight`, `stem.bn.*`.
pub const STEM: &str = "stem";
/// A 1×1 or stem convolution under its owner (`….conv.weight`).
pub const CONV: &str = "conv";
/// A batch norm under its owner (`….bn.{weight,bias,running_mean,running_var}`).
pub const BN: &str = "bn";
/// An op's gate weight, a scalar (`….<op>.gate`).
pub const GATE: &str = "gate";
/// The depthwise convolution of a depthwise–pointwise block.
pub const DEPTHWISE: &str = "depthwise";
/// The pointwise convolution of a depthwise–pointwise block.
pub const POINTWISE: &str = "pointwise";
/// A sep-conv's first depthwise–pointwise block (stride of the edge).
pub const FIRST: &str = "first";
/// A sep-conv's second depthwise–pointwise block, after the ReLU.
pub const SECOND: &str = "second";
/// The learned multiplier of a convolution, linear layer or batch norm (γ).
pub const WEIGHT: &str = "weight";
/// The learned offset of a linear layer or batch norm (β).
pub const BIAS: &str = "bias";
/// A batch norm's running mean.
pub const RUNNING_MEAN: &str = "running_mean";
/// A batch norm's running variance.
pub const RUNNING_VAR: &str = "running_var";

/// Cell `k`: `cells.<k>`.
pub fn cell(k: usize) -> String {
    format!("cells.{k}")
}

/// The rescaler of dense input `i` of cell `k`: `cells.<k>.inputs.<i>`.
pub fn input(k: usize, i: usize) -> String {
    format!("{}.inputs.{i}", cell(k))
}

/// Node `v` of cell `k`: `cells.<k>.nodes.<v>`; its batch norm lives under `….bn`.
pub fn node(k: usize, v: usize) -> String {
    format!("{}.nodes.{v}", cell(k))
}

/// Edge `id` of cell `k`: `cells.<k>.edges.<id>`.
pub fn edge(k: usize, id: u32) -> String {
    format!("{}.edges.{id}", cell(k))
}

/// Op `op` on edge `id` of cell `k`: `cells.<k>.edges.<id>.<op>`.
pub fn op(k: usize, id: u32, op: Op) -> String {
    format!("{}.{}", edge(k, id), op.name())
}

/// The linear classifier on cell `k`'s pooled output: `towers.<k>`.
pub fn tower(k: usize) -> String {
    format!("towers.{k}")
}

/// `owner.part`, the name of `part` under `owner`.
pub fn join(owner: &str, part: &str) -> String {
    format!("{owner}.{part}")
}

/// Whether `name` is `owner` itself or lies under it (`owner.…`); `cells.1` does not own `cells.10.…`.
pub fn is_under(name: &str, owner: &str) -> bool {
    name.strip_prefix(owner)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// For a name under `cells.<k>.nodes.`, the node index and the rest of the name after it.
pub fn split_node(name: &str, k: usize) -> Option<(usize, &str)> {
    let rest = name.strip_prefix(&format!("{}.nodes.", cell(k)))?;
    let (index, tail) = rest.split_once('.')?;
    Some((index.parse().ok()?, tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_documented_paths() {
        assert_eq!(op(1, 4, Op::SepConv3x3), "cells.1.edges.4.sep_conv_3x3");
        assert_eq!(
            join(&op(1, 4, Op::SepConv3x3), GATE),
            "cells.1.edges.4.sep_conv_3x3.gate"
        );
        assert_eq!(join(&input(2, 0), CONV), "cells.2.inputs.0.conv");
        assert_eq!(join(&node(0, 3), BN), "cells.0.nodes.3.bn");
        assert_eq!(join(&tower(2), BIAS), "towers.2.bias");
    }

    #[test]
    fn ownership_respects_whole_segments() {
        assert!(is_under("cells.1.edges.4.identity.gate", &edge(1, 4)));
        assert!(is_under(&edge(1, 4), &edge(1, 4)));
        assert!(!is_under("cells.1.edges.40.identity.gate", &edge(1, 4)));
        assert!(!is_under("cells.10.nodes.0.bn.weight", &cell(1)));
    }

    #[test]
    fn node_names_split_into_index_and_tail() {
        assert_eq!(split_node("cells.2.nodes.11.bn.weight", 2), Some((11, "bn.weight")));
        assert_eq!(split_node("cells.2.edges.1.identity.gate", 2), None);
        assert_eq!(split_node("cells.3.nodes.1.bn.weight", 2), None);
    }
}
