//! Linear-region count: distinct ReLU sign patterns over a set of inputs, counted exactly.

use crate::data::Split;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;
use tch::{Kind, Tensor};

/// Distinct activation patterns among some samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RegionCount {
    /// Distinct sign patterns.
    pub regions: usize,
    /// Samples seen.
    pub samples: usize,
    /// Binary features per sample (ReLU units).
    pub features: usize,
}

impl RegionCount {
    /// Every sample has its own pattern, so the count says nothing more than the sample count.
    pub fn saturated(&self) -> bool {
        self.regions == self.samples
    }
}

/// Packs each row of a boolean (N × F) matrix into 64-bit words.
fn packed_rows(active: &Tensor) -> Vec<Vec<u64>> {
    let size = active.size();
    let (rows, features) = (size[0] as usize, size.get(1).copied().unwrap_or(0) as usize);
    let bytes =
        Vec::<u8>::try_from(active.to_kind(Kind::Uint8).to_device(tch::Device::Cpu).flatten(0, -1)).unwrap_or_default();
    (0..rows)
        .map(|r| {
            let row = &bytes[r * features..(r + 1) * features];
            row.chunks(64)
                .map(|chunk| {
                    chunk
                        .iter()
                        .enumerate()
                        .fold(0u64, |word, (i, &b)| word | (u64::from(b != 0) << i))
                })
                .collect()
        })
        .collect()
}

/// The (N × F) matrix of which units are active (> 0) in a list of (N, …) activations of `samples` samples,
/// concatenated per sample. A network without ReLUs gives every sample the same empty pattern: one region.
pub fn sign_pattern(activations: &[Tensor], samples: usize) -> Tensor {
    if activations.is_empty() {
        return Tensor::zeros([samples as i64, 0], (tch::Kind::Bool, tch::Device::Cpu));
    }
    let flat: Vec<Tensor> = activations.iter().map(|a| a.flatten(1, -1).gt(0.0)).collect();
    Tensor::cat(&flat, 1)
}

/// Counts distinct patterns over several batches: `patterns` holds one (N_b × F) boolean matrix per batch.
pub fn count_regions(patterns: &[Tensor]) -> RegionCount {
    let mut seen = HashSet::new();
    let mut samples = 0;
    let mut features = 0;
    for pattern in patterns {
        features = pattern.size().get(1).copied().unwrap_or(0) as usize;
        for row in packed_rows(pattern) {
            seen.insert(row);
            samples += 1;
        }
    }
    RegionCount {
        regions: seen.len(),
        samples,
        features,
    }
}

/// `count` random `side`×`side` crops of one random channel of random training images: (count, 1, side, side).
pub fn random_crops(split: &Split, count: usize, side: usize, rng: &mut ChaCha8Rng) -> Tensor {
    let size = split.images.size();
    let (n, channels, height, width) = (size[0], size[1], size[2], size[3]);
    let side = side as i64;
    let crops: Vec<Tensor> = (0..count)
        .map(|_| {
            let image = rng.random_range(0..n);
            let channel = rng.random_range(0..channels);
            let top = rng.random_range(0..=(height - side).max(0));
            let left = rng.random_range(0..=(width - side).max(0));
            split
                .images
                .get(image)
                .narrow(0, channel, 1)
                .narrow(1, top, side.min(height))
                .narrow(2, left, side.min(width))
        })
        .collect();
    Tensor::stack(&crops, 0)
}
