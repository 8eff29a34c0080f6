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
        let mut order: Vec<i64> = (0..split.len() as i64).collect();
        order.shuffle(rng);
        let end = split.len() / batch_size * batch_size;
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
