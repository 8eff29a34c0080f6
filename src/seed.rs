//! One master seed, split into independent streams for every random choice.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The random streams a run draws from; each is derived from the master seed and a fixed purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Train/test split of a data set.
    DataSplit,
    /// Order of training batches.
    BatchOrder,
    /// Weight initialisation.
    Init,
    /// Drop-path masks.
    DropPath,
    /// Data augmentation.
    Augment,
    /// Order in which mutation candidates are tried.
    Candidates,
    /// Inputs of the train-free metrics.
    Metrics,
}

/// Mixes the master seed with a stream and an index (for example an iteration number) into a sub-seed.
pub fn derive(master: u64, stream: Stream, index: u64) -> u64 {
    let mut z = master
        .wrapping_add((stream as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(index.wrapping_mul(0xD1B5_4A32_D192_ED03));
    // splitmix64 finaliser: nearby inputs give unrelated outputs.
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A reproducible generator for one stream.
pub fn rng(master: u64, stream: Stream, index: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(derive(master, stream, index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_and_indices_give_different_seeds() {
        let a = derive(0, Stream::DataSplit, 0);
        assert_ne!(a, derive(0, Stream::BatchOrder, 0));
        assert_ne!(a, derive(0, Stream::DataSplit, 1));
        assert_ne!(a, derive(1, Stream::DataSplit, 0));
        assert_eq!(a, derive(0, Stream::DataSplit, 0));
    }
}
