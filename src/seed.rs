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
    /// The metric-validation harness's continuations: their data subsets, fresh tensors and batch orders.
    Continuation,
    /// The images that recompute the batch norms' running statistics at the end of each training epoch.
    Recalibration,
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

/// Indices within [`Stream::DataSplit`]: each split of the data draws from its own sub-stream.
pub mod data_split {
    /// The train/test split of a data set that ships none (digits).
    pub const TRAIN_TEST: u64 = 0;
    /// The validation share held out of the training split, and the search's training subset.
    pub const SEARCH: u64 = 1;
    /// The final training's subset (`--final-samples`).
    pub const FINAL_SUBSET: u64 = 2;
    /// The test share of an image folder without `train/` and `test/`.
    pub const FOLDER_TEST: u64 = 3;
}

/// The [`Stream::Init`] and [`Stream::BatchOrder`] index of the final network (the search iterations use their own
/// numbers, so this one is far from all of them).
pub const FINAL_NETWORK: u64 = u64::MAX;

/// The [`Stream::Candidates`] index of cell `cell`'s candidate walk in mutation round `round`.
pub fn candidate_walk(round: u64, cell: usize) -> u64 {
    round << 16 | cell as u64
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
