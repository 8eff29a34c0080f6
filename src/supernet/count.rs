//! Parameter count of a genotype's network, computed from the architecture alone.

use crate::genotype::Genotype;
use crate::ops::op_parameter_count;

/// Trainable scalars of the supernet of `genotype` at `width`: stem, rescalers, node batch norms,
/// live ops with one pruner each, and towers. Equals `Supernet::parameter_count` for the same network.
pub fn parameter_count(genotype: &Genotype, width: usize) -> usize {
    stem_parameter_count(genotype, width)
        + (0..genotype.cells.len())
            .map(|k| cell_parameter_count(genotype, width, k))
            .sum::<usize>()
}

/// Trainable scalars of the stem (3×3 conv and its batch norm).
pub fn stem_parameter_count(genotype: &Genotype, width: usize) -> usize {
    genotype.input.channels * width * 9 + 2 * width
}

/// Trainable scalars that belong to cell `k`: its input rescalers, node batch norms, live ops with their pruners,
/// and its tower.
pub fn cell_parameter_count(genotype: &Genotype, width: usize, k: usize) -> usize {
    let channels_of = |k: usize| width << k;
    let batch_norm = |c: usize| 2 * c;
    let cell = &genotype.cells[k];
    let c = channels_of(k);
    let rescalers = std::iter::once(width)
        .chain((0..k).map(channels_of))
        .filter(|&c_in| c_in != c)
        .map(|c_in| c_in * c + batch_norm(c))
        .sum::<usize>();
    let ops = cell
        .edges
        .iter()
        .flat_map(|e| &e.ops)
        .map(|&op| op_parameter_count(op, c) + 1)
        .sum::<usize>();
    rescalers + cell.n_nodes * batch_norm(c) + ops + c * genotype.classes + genotype.classes
}
