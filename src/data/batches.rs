//! Seeded mini-batches over a split.

use super::Split;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Tensor};

/// An iterator of (images, labels) mini-batches.
pub struct Batches<'a> {
    split: &'a Split,
    order: Tensor,
    batch_size: usize,
    position: usize,
    end: usize,
    device: Device,
}

impl<'a> Batches<'a> {
    /// Shuffled batches for training; the incomplete last batch is dropped, as the reference does.
    pub fn shuffled(split: &'a Split, batch_size: usize, rng: &mut ChaCha8Rng, device: Device) -> Self {
        Self::drawn(split, split.len(), batch_size, rng, device)
    }

    /// Shuffled batches of the first `images` images (at most all of them) of a fresh order of the whole split,
    /// so that draws with different orders reach every image; the incomplete last batch is dropped.
    pub fn drawn(split: &'a Split, images: usize, batch_size: usize, rng: &mut ChaCha8Rng, device: Device) -> Self {
        let mut order: Vec<i64> = (0..split.len() as i64).collect();
        order.shuffle(rng);
        let end = images.min(split.len()) / batch_size.max(1) * batch_size.max(1);
        Self::new(split, Tensor::from_slice(&order), batch_size, end, device)
    }

    /// Batches in storage order, keeping the last partial batch, for evaluation.
    pub fn in_order(split: &'a Split, batch_size: usize, device: Device) -> Self {
        let order = Tensor::arange(split.len() as i64, (tch::Kind::Int64, Device::Cpu));
        Self::new(split, order, batch_size, split.len(), device)
    }

    fn new(split: &'a Split, order: Tensor, batch_size: usize, end: usize, device: Device) -> Self {
        Batches {
            split,
            order,
            batch_size: batch_size.max(1),
            position: 0,
            end,
            device,
        }
    }

    /// Number of batches this iterator yields in total.
    pub fn count_batches(&self) -> usize {
        self.end.div_ceil(self.batch_size)
    }
}

impl Iterator for Batches<'_> {
    type Item = (Tensor, Tensor);

    fn next(&mut self) -> Option<Self::Item> {
        if self.position >= self.end {
            return None;
        }
        let stop = (self.position + self.batch_size).min(self.end);
        let index = self
            .order
            .narrow(0, self.position as i64, (stop - self.position) as i64);
        self.position = stop;
        let images = self.split.images.index_select(0, &index).to_device(self.device);
        let labels = self.split.labels.index_select(0, &index).to_device(self.device);
        Some((images, labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::collections::BTreeSet;

    /// A split of `n` one-pixel images whose label is their index.
    fn indexed(n: usize) -> Split {
        Split {
            images: Tensor::zeros([n as i64, 1, 1, 1], (tch::Kind::Float, Device::Cpu)),
            labels: Tensor::arange(n as i64, (tch::Kind::Int64, Device::Cpu)),
        }
    }

    /// The indices an iterator's batches hold, in order.
    fn drawn_indices(batches: Batches) -> Vec<i64> {
        batches
            .flat_map(|(_, labels)| Vec::<i64>::try_from(&labels).expect("labels"))
            .collect()
    }

    #[test]
    fn a_draw_takes_whole_batches_of_distinct_images_and_fresh_orders_reach_them_all() {
        let split = indexed(100);
        let mut seen = BTreeSet::new();
        for epoch in 0..6 {
            let mut rng = ChaCha8Rng::seed_from_u64(epoch);
            let indices = drawn_indices(Batches::drawn(&split, 70, 16, &mut rng, Device::Cpu));
            // 70 images in batches of 16: 4 whole batches.
            assert_eq!(indices.len(), 64);
            assert_eq!(
                indices.iter().collect::<BTreeSet<_>>().len(),
                64,
                "an image twice in one draw"
            );
            seen.extend(indices);
        }
        // A fixed subset of 70 would never reach 30 of the images; six fresh draws of 64 miss each with odds 0.36⁶.
        assert!(
            seen.len() > 95,
            "six draws of 64 reached only {} of 100 images",
            seen.len()
        );
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let everything = drawn_indices(Batches::drawn(&split, 1000, 16, &mut rng, Device::Cpu));
        assert_eq!(
            everything.len(),
            96,
            "a draw larger than the split takes all of its whole batches"
        );
    }

    #[test]
    fn shuffled_batches_are_a_draw_of_the_whole_split() {
        let split = indexed(50);
        let (mut a, mut b) = (ChaCha8Rng::seed_from_u64(3), ChaCha8Rng::seed_from_u64(3));
        let shuffled = drawn_indices(Batches::shuffled(&split, 8, &mut a, Device::Cpu));
        let drawn = drawn_indices(Batches::drawn(&split, 50, 8, &mut b, Device::Cpu));
        assert_eq!(shuffled, drawn);
        assert_eq!(shuffled.len(), 48);
    }
}
