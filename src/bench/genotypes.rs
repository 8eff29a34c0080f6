//! The benchmark's fixed genotypes: the minimal one, one grown to about 30 edges, and the scored candidate.

use crate::genotype::{Genotype, InputShape};
use crate::seed::{self, Stream};
use rand::RngExt;

/// Seeded splits that grow the minimal genotype (9 edges) to the benchmark's grown one: each adds 2 edges.
pub const GROWN_SPLITS: usize = 11;
/// Cell whose first edge is split in the scored candidate of workload (c).
pub const SCORED_CELL: usize = 1;

/// Fashion-MNIST's shape: 28×28 grayscale.
const INPUT: InputShape = InputShape {
    channels: 1,
    height: 28,
    width: 28,
};

/// The minimal genotype: R=2, C=16, 28×28×1 input, 10 classes (9 edges, every edge with all 7 ops).
pub fn initial_genotype() -> Genotype {
    randomly_grown(INPUT, 2, 16, 0, 0)
}

/// The minimal genotype grown by `GROWN_SPLITS` seeded random splits, cells taken in turn (31 edges); the same
/// grower as `spidernet bench-memory`.
pub fn grown_genotype() -> Genotype {
    randomly_grown(INPUT, 2, 16, GROWN_SPLITS, 0)
}

/// The candidate of workload (c): the minimal genotype and the id of the first edge of `SCORED_CELL`.
pub fn scored_candidate() -> (Genotype, u32) {
    let genotype = initial_genotype();
    let edge = genotype.cells[SCORED_CELL].edges[0].id;
    (genotype, edge)
}

/// The minimal genotype grown by `splits` seeded random edge splits (cells taken in turn).
pub fn randomly_grown(input: InputShape, reductions: usize, channels: usize, splits: usize, seed: u64) -> Genotype {
    let mut genotype = Genotype::minimal(reductions, channels, input, 10).expect("valid benchmark shape");
    let mut rng = seed::rng(seed, Stream::Candidates, 0);
    for step in 0..splits {
        let cell = step % genotype.cells.len();
        let edges = &genotype.cells[cell].edges;
        let edge = edges[rng.random_range(0..edges.len())].id;
        genotype.cells[cell].split(edge).expect("edge exists");
    }
    genotype
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grown_genotype_is_seeded_and_has_about_thirty_edges() {
        let grown = grown_genotype();
        assert_eq!(grown.edge_count(), 31);
        assert_eq!(grown, grown_genotype());
        assert!(grown.check().is_ok());
        assert!(grown.cells.iter().all(|cell| cell.edges.len() > 5), "every cell grew");
        assert_eq!(initial_genotype().edge_count(), 9);
        assert_eq!((grown.channels, grown.classes, grown.input), (16, 10, INPUT));
    }
}
