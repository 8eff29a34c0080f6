//! Seeded data augmentation for final training: random crop with padding, horizontal flip, cutout.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

/// Augmentation settings, scaled to the image size by `Augment::for_images`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Augment {
    /// Padding on every side before the random crop back to the original size.
    pub pad: usize,
    /// Whether to flip images horizontally with probability ½ (off for digits and text).
    pub horizontal_flip: bool,
    /// Side of the cutout square (0 turns cutout off).
    pub cutout: usize,
    /// Probability of applying cutout to an image.
    pub cutout_probability: f64,
    /// Value of a black pixel after normalisation, per channel: what padding is filled with.
    pub pad_value: Vec<f64>,
}

impl Augment {
    /// The reference's recipe (pad 4 and cutout 16 on 32×32) scaled to `side`, with flips as the data allows.
    pub fn for_images(side: usize, horizontal_flip: bool, pad_value: Vec<f64>) -> Self {
        Augment {
            pad: (side / 8).max(1),
            horizontal_flip,
            cutout: side / 2,
            cutout_probability: 0.5,
            pad_value,
        }
    }

    /// Augments a batch (N, C, H, W) of normalised images.
    pub fn apply(&self, images: &Tensor, rng: &mut ChaCha8Rng) -> Tensor {
        let size = images.size();
        let (n, c, h, w) = (size[0], size[1], size[2], size[3]);
        let p = self.pad as i64;
        let fill = Tensor::from_slice(&self.pad_value)
            .to_kind(images.kind())
            .to_device(images.device())
            .view([1, c, 1, 1]);
        let padded = fill.expand([n, c, h + 2 * p, w + 2 * p], false).contiguous();
        padded.narrow(2, p, h).narrow(3, p, w).copy_(images);
        let mut crops = Vec::with_capacity(n as usize);
        for i in 0..n {
            let (top, left) = (rng.random_range(0..=2 * p), rng.random_range(0..=2 * p));
            let mut crop = padded.get(i).narrow(1, top, h).narrow(2, left, w);
            if self.horizontal_flip && rng.random::<f64>() < 0.5 {
                crop = crop.flip([2]);
            }
            crops.push(crop);
        }
        let out = Tensor::stack(&crops, 0);
        if self.cutout == 0 {
            return out;
        }
        out * self
            .cutout_mask(n, h, w, rng)
            .to_kind(images.kind())
            .to_device(images.device())
    }

    /// Ones with, on some images, a zeroed square centred uniformly in the image and clipped at its border.
    fn cutout_mask(&self, n: i64, h: i64, w: i64, rng: &mut ChaCha8Rng) -> Tensor {
        let mut mask = vec![1.0f32; (n * h * w) as usize];
        let half = self.cutout as i64 / 2;
        for i in 0..n {
            if rng.random::<f64>() >= self.cutout_probability {
                continue;
            }
            let (cy, cx) = (rng.random_range(0..h), rng.random_range(0..w));
            for y in (cy - half).max(0)..(cy + half).min(h) {
                for x in (cx - half).max(0)..(cx + half).min(w) {
                    mask[(i * h * w + y * w + x) as usize] = 0.0;
                }
            }
        }
        Tensor::from_slice(&mask).view([n, 1, h, w]).to_kind(Kind::Float)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::{self, Stream};

    #[test]
    fn augmentation_keeps_shape_is_seeded_and_changes_images() {
        let images = Tensor::rand([16, 2, 8, 8], tch::kind::FLOAT_CPU) + 1.0;
        let augment = Augment::for_images(8, true, vec![-1.0, -2.0]);
        let a = augment.apply(&images, &mut seed::rng(0, Stream::Augment, 0));
        let b = augment.apply(&images, &mut seed::rng(0, Stream::Augment, 0));
        let c = augment.apply(&images, &mut seed::rng(1, Stream::Augment, 0));
        assert_eq!(a.size(), images.size());
        assert!(a.equal(&b));
        assert!(!a.equal(&c));
        assert!(!a.equal(&images));
        // Every value is an original pixel (>= 1), a padding value (-1 or -2 per channel) or cutout (0).
        let values = Vec::<f32>::try_from(a.flatten(0, -1)).unwrap();
        assert!(values.iter().all(|&v| v >= 1.0 || v == 0.0 || v == -1.0 || v == -2.0));
        assert!(values.contains(&0.0), "cutout should hit some of 16 images");
    }
}
