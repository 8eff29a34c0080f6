//! The text summary of `spidernet show`: totals, then per cell its nodes, edges with live ops, parameters and
//! estimated training memory.

use crate::genotype::Genotype;
use crate::memory::{cell_estimate, format_size, stem_estimate};
use std::fmt::Write;

/// A readable summary of `genotype`, with memory estimated for training batches of `batch` images.
pub fn summary(genotype: &Genotype, batch: usize) -> String {
    let width = genotype.channels;
    let input = genotype.input;
    let total_memory = crate::memory::estimate(genotype, width, batch).total();
    let mut text = String::new();
    let _ = writeln!(
        text,
        "R={} C={} input {}x{}x{} classes {}: {} cells, {} edges, {} live ops, {} parameters, training memory {} at batch {batch}",
        genotype.reductions,
        width,
        input.channels,
        input.height,
        input.width,
        genotype.classes,
        genotype.cells.len(),
        genotype.edge_count(),
        genotype.live_op_count(),
        genotype.at_width(width).parameter_count(),
        format_size(total_memory),
    );
    let _ = writeln!(
        text,
        "stem: {} parameters, {}",
        genotype.at_width(width).stem_parameter_count(),
        format_size(stem_estimate(genotype, width, batch).total())
    );
    for (k, cell) in genotype.cells.iter().enumerate() {
        let (height, w) = genotype.cell_output_resolution(k);
        let _ = writeln!(
            text,
            "\ncell {k} ({}, {} channels, {height}x{w}): {} inputs, {} nodes, {} edges, {} live ops, {} parameters, {}",
            if k == 0 { "normal" } else { "reduction" },
            genotype.cell_channels(k),
            cell.n_inputs,
            cell.n_nodes,
            cell.edges.len(),
            cell.live_op_count(),
            genotype.at_width(width).cell_parameter_count(k),
            format_size(cell_estimate(genotype, width, batch, k).total())
        );
        let mut edges: Vec<_> = cell.edges.iter().collect();
        edges.sort_by_key(|e| (e.from, e.to, e.id));
        for edge in edges {
            let ops: Vec<&str> = edge.ops.iter().map(|op| op.name()).collect();
            let _ = writeln!(
                text,
                "  edge {:>3}  {:>5} → {:<5} {}",
                edge.id,
                node_name(cell, edge.from),
                node_name(cell, edge.to),
                ops.join(", ")
            );
        }
    }
    text
}

/// `in0`, `in1`, … for inputs, `out` for the output, `n3` … for the others.
pub(super) fn node_name(cell: &crate::genotype::Cell, node: usize) -> String {
    if cell.is_input(node) {
        format!("in{node}")
    } else if node == cell.output() {
        "out".to_string()
    } else {
        format!("n{node}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genotype::InputShape;

    #[test]
    fn the_summary_lists_every_edge_and_per_cell_sizes_add_up() {
        let mut genotype = Genotype::minimal(2, 16, InputShape::new(1, 28, 28), 10).unwrap();
        genotype.cells[2].split(0).unwrap();
        let text = summary(&genotype, 64);
        assert!(
            text.starts_with("R=2 C=16 input 1x28x28 classes 10: 3 cells, 11 edges"),
            "{text}"
        );
        assert_eq!(text.lines().filter(|l| l.trim_start().starts_with("edge")).count(), 11);
        assert!(text.contains("cell 1 (reduction, 32 channels, 14x14)"), "{text}");
        assert!(text.contains("  in0 → n2    identity, max_pool_3x3"), "{text}");
        let shape = genotype.at_width(16);
        let per_part = shape.stem_parameter_count() + (0..3).map(|k| shape.cell_parameter_count(k)).sum::<usize>();
        assert_eq!(per_part, shape.parameter_count());
        let memory = (0..3).fold(stem_estimate(&genotype, 16, 64), |sum, k| {
            sum + cell_estimate(&genotype, 16, 64, k)
        });
        assert_eq!(memory, crate::memory::estimate(&genotype, 16, 64));
    }
}
