//! Parameter count of a genotype's network, computed from the architecture alone.

use crate::genotype::Genotype;
use crate::ops::op_parameter_count;

/// Trainable scalars of the supernet of `genotype` at `width`: stem, rescalers, node batch norms,
/// live ops with one pruner each, and towers. Equals `Supernet::parameter_count` for the same network.
pub fn parameter_count(genotype: &Genotype, width: usize) -> usize {
    let channels_of = |k: usize| width << k;
    let batch_norm = |c: usize| 2 * c;
    let mut total = genotype.input.channels * width * 9 + batch_norm(width);
    for (k, cell) in genotype.cells.iter().enumerate() {
        let c = channels_of(k);
        let input_channels = std::iter::once(width).chain((0..k).map(channels_of));
        total += input_channels
            .filter(|&c_in| c_in != c)
            .map(|c_in| c_in * c + batch_norm(c))
            .sum::<usize>();
        total += cell.n_nodes * batch_norm(c);
        total += cell
            .edges
            .iter()
            .flat_map(|e| &e.ops)
            .map(|&op| op_parameter_count(op, c) + 1)
            .sum::<usize>();
        total += c * genotype.classes + genotype.classes;
    }
    total
}
