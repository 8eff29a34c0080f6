//! Seeded random inputs: the benchmark's timings must not depend on a data set being installed.

use crate::data::Split;
use crate::genotype::InputShape;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use tch::{Device, Kind, Tensor};

/// `n` standard-normal images of `shape` and uniform labels below `classes`, drawn from `seed`.
pub fn random_split(shape: InputShape, classes: usize, n: usize, seed: u64) -> Split {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let pixels = n * shape.channels * shape.height * shape.width;
    let values: Vec<f32> = (0..pixels).map(|_| StandardNormal.sample(&mut rng)).collect();
    let labels: Vec<i64> = (0..n).map(|_| rng.random_range(0..classes as i64)).collect();
    let dims = [n, shape.channels, shape.height, shape.width].map(|d| d as i64);
    Split {
        images: Tensor::from_slice(&values).view(dims),
        labels: Tensor::from_slice(&labels),
    }
}

/// The same, moved to `device`, as (images, labels).
pub fn random_batch(shape: InputShape, classes: usize, n: usize, seed: u64, device: Device) -> (Tensor, Tensor) {
    let split = random_split(shape, classes, n, seed);
    (
        split.images.to_kind(Kind::Float).to_device(device),
        split.labels.to_device(device),
    )
}
