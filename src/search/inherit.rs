//! Weight inheritance (docs/ALGORITHM.md §9, `--inherit-weights`): a phase's network starts from the tensors the
//! previous phase trained instead of fresh ones. A split keeps the ids of every existing edge, so their tensors keep
//! their names; only the nodes from the split edge's target on move up by one, and the new node and edges start
//! fresh.

use super::record::Mutation;
use crate::nn::tensor_names as names;
use crate::supernet::Supernet;
use tch::Tensor;

/// `trained`'s tensors (named for the genotype it trained) renamed for the genotype `mutations` grew from it: in
/// each cell with an applied split, node v ≥ the split edge's target becomes v + 1.
pub fn renamed_for_splits(trained: Vec<(String, Tensor)>, mutations: &[Mutation]) -> Vec<(String, Tensor)> {
    trained
        .into_iter()
        .map(|(name, tensor)| {
            let moved = mutations.iter().filter(|m| m.applied).find_map(|m| {
                let (node, tail) = names::split_node(&name, m.cell)?;
                (node >= m.to).then(|| names::join(&names::node(m.cell, node + 1), tail))
            });
            (moved.unwrap_or(name), tensor)
        })
        .collect()
}

/// Copies every tensor of `inherited` into `net` where `net` has a tensor of that name and shape; the others keep
/// their fresh values. Returns how many were copied.
pub fn inherit(net: &mut Supernet, inherited: &[(String, Tensor)]) -> usize {
    let by_name: std::collections::HashMap<&str, &Tensor> =
        inherited.iter().map(|(name, tensor)| (name.as_str(), tensor)).collect();
    let mut copied = 0;
    tch::no_grad(|| {
        for (name, mut target) in net.named_tensors() {
            if let Some(source) = by_name.get(name.as_str()).filter(|s| s.size() == target.size()) {
                target.copy_(&source.to_device(target.device()));
                copied += 1;
            }
        }
    });
    copied
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genotype::{Genotype, InputShape, Op};

    #[test]
    fn a_grown_network_inherits_every_tensor_its_parent_had_under_the_moved_names() {
        let input = InputShape {
            channels: 1,
            height: 8,
            width: 8,
        };
        let parent_genotype = Genotype::minimal(1, 4, input, 10).unwrap();
        let parent = Supernet::builder(&parent_genotype).seed(1).build();
        // Mark every tensor of the parent so that copies can be told from fresh values.
        tch::no_grad(|| {
            for (_, mut tensor) in parent.named_tensors() {
                let _ = tensor.fill_(0.5);
            }
        });
        let mut grown_genotype = parent_genotype.clone();
        let edge = grown_genotype.cells[1].edges[0].clone();
        let split = grown_genotype.cells[1].split(edge.id).unwrap();
        let mutation = Mutation {
            cell: 1,
            edge: edge.id,
            from: edge.from,
            to: edge.to,
            estimated_bytes: 0,
            applied: true,
            time: None,
        };
        let mut child = Supernet::builder(&grown_genotype).seed(2).build();
        let renamed = renamed_for_splits(parent.named_tensors(), &[mutation]);
        let copied = inherit(&mut child, &renamed);
        assert_eq!(
            copied,
            parent.named_tensors().len(),
            "every parent tensor has a place in the child"
        );
        let value = |name: &str| {
            let tensors: std::collections::HashMap<String, Tensor> = child.named_tensors().into_iter().collect();
            tensors[name].flatten(0, -1).double_value(&[0])
        };
        let shortcut = names::join(&names::op(1, edge.id, Op::SepConv3x3), "first.depthwise.weight");
        assert_eq!(value(&shortcut), 0.5, "the shortcut keeps its trained ops");
        let moved = names::join(&names::node(1, split.new_node + 1), "bn.weight");
        assert_eq!(value(&moved), 0.5, "the split target's batch norm moved up one node");
        let fresh_node = names::join(&names::node(1, split.new_node), "bn.weight");
        assert_eq!(
            value(&fresh_node),
            1.0,
            "the new node's batch norm starts fresh (γ = 1)"
        );
        let fresh_edge = names::join(&names::op(1, split.edge_a, Op::SepConv3x3), "first.depthwise.weight");
        assert_ne!(value(&fresh_edge), 0.5, "the new edges start fresh");
    }

    #[test]
    fn only_the_nodes_from_the_split_target_on_move_and_only_in_their_cell() {
        let tensor = || Tensor::zeros([1], tch::kind::FLOAT_CPU);
        let trained = [
            "cells.1.nodes.2.bn.weight",
            "cells.1.nodes.3.bn.running_var",
            "cells.1.nodes.1.bn.weight",
            "cells.0.nodes.3.bn.weight",
            "cells.1.edges.3.sep_conv_3x3.first.depthwise.weight",
            "cells.10.nodes.4.bn.weight",
        ]
        .map(|name| (name.to_string(), tensor()));
        let split = |cell, applied| Mutation {
            cell,
            edge: 3,
            from: 1,
            to: 2,
            estimated_bytes: 0,
            applied,
            time: None,
        };
        let renamed: Vec<String> = renamed_for_splits(trained.into(), &[split(1, true), split(0, false)])
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(
            renamed,
            [
                "cells.1.nodes.3.bn.weight",
                "cells.1.nodes.4.bn.running_var",
                "cells.1.nodes.1.bn.weight",
                "cells.0.nodes.3.bn.weight",
                "cells.1.edges.3.sep_conv_3x3.first.depthwise.weight",
                "cells.10.nodes.4.bn.weight",
            ]
        );
    }
}
