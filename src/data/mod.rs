//! Image-classification data: the `Dataset` type, its sources, normalisation and batching.

mod augment;
mod batches;
mod digits;
mod idx;

pub use augment::Augment;
pub use batches::Batches;
pub use digits::Digits;
pub use idx::{FASHION_MNIST_DIR, IdxFolder, parse_idx};

use crate::genotype::InputShape;
use tch::{Kind, Tensor};

/// Images and labels of one split: images are (N, C, H, W) f32, labels (N) i64.
#[derive(Debug)]
pub struct Split {
    /// Normalised images.
    pub images: Tensor,
    /// Class indices.
    pub labels: Tensor,
}

impl Split {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.size()[0] as usize
    }

    /// Whether the split holds no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The samples at `indices`, in that order.
    pub fn select(&self, indices: &[i64]) -> Split {
        let index = Tensor::from_slice(indices);
        Split {
            images: self.images.index_select(0, &index),
            labels: self.labels.index_select(0, &index),
        }
    }

    /// A seeded split into (rest, held out), holding out `fraction` of the samples (at least one of each).
    pub fn hold_out(&self, fraction: f64, rng: &mut rand_chacha::ChaCha8Rng) -> (Split, Split) {
        use rand::seq::SliceRandom;
        let mut order: Vec<i64> = (0..self.len() as i64).collect();
        order.shuffle(rng);
        let held = ((self.len() as f64 * fraction).round() as usize).clamp(1, self.len().saturating_sub(1));
        (self.select(&order[held..]), self.select(&order[..held]))
    }
}

/// Per-channel mean and standard deviation of the training images, before normalisation.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Normalization {
    /// Mean per channel.
    pub mean: Vec<f64>,
    /// Standard deviation per channel.
    pub std: Vec<f64>,
}

/// A classification data set, split into training and test parts and normalised with training statistics.
#[derive(Debug)]
pub struct Dataset {
    /// Short name, as given on the command line.
    pub name: String,
    /// Shape of one image.
    pub shape: InputShape,
    /// Number of classes.
    pub classes: usize,
    /// Training split.
    pub train: Split,
    /// Test split.
    pub test: Split,
    /// Statistics used to normalise both splits.
    pub normalization: Normalization,
    /// Whether a horizontal flip keeps an image in its class (false for digits and characters).
    pub horizontal_flip: bool,
}

/// The data source named by a `--data` value: `digits`, `fashion-mnist[:DIR]` or `idx:DIR`.
pub fn source(spec: &str) -> anyhow::Result<Box<dyn DataSource>> {
    let (kind, path) = match spec.split_once(':') {
        Some((kind, path)) => (kind, Some(std::path::PathBuf::from(path))),
        None => (spec, None),
    };
    match (kind, path) {
        ("digits", None) => Ok(Box::new(Digits::default())),
        ("fashion-mnist", dir) => Ok(Box::new(IdxFolder::fashion_mnist(dir))),
        ("idx", Some(dir)) => Ok(Box::new(IdxFolder::generic(dir))),
        ("idx", None) => anyhow::bail!("--data idx needs a folder: idx:DIR"),
        _ => anyhow::bail!("--data '{spec}': unknown data set (use digits, fashion-mnist[:DIR] or idx:DIR)"),
    }
}

/// Something that can produce a `Dataset`.
pub trait DataSource {
    /// Loads the data, splitting and shuffling reproducibly from `seed`.
    fn load(&self, seed: u64) -> anyhow::Result<Dataset>;
}

impl Dataset {
    /// Builds a data set from raw (unnormalised) f32 splits, normalising both with the training split's statistics.
    pub fn from_raw(
        name: &str,
        classes: usize,
        train_images: Tensor,
        train_labels: Tensor,
        test_images: Tensor,
        test_labels: Tensor,
    ) -> Dataset {
        let size = train_images.size();
        let shape = InputShape {
            channels: size[1] as usize,
            height: size[2] as usize,
            width: size[3] as usize,
        };
        let normalization = channel_statistics(&train_images);
        let normalize = |images: &Tensor| normalize(images, &normalization);
        Dataset {
            name: name.to_string(),
            shape,
            classes,
            train: Split {
                images: normalize(&train_images),
                labels: train_labels,
            },
            test: Split {
                images: normalize(&test_images),
                labels: test_labels,
            },
            normalization,
            horizontal_flip: false,
        }
    }

    /// The augmentation recipe suited to this data set.
    pub fn augment(&self) -> Augment {
        let black: Vec<f64> = self
            .normalization
            .mean
            .iter()
            .zip(&self.normalization.std)
            .map(|(m, s)| -m / if *s > 1e-12 { *s } else { 1.0 })
            .collect();
        Augment::for_images(self.shape.height.min(self.shape.width), self.horizontal_flip, black)
    }
}

/// Per-channel mean and (biased) standard deviation over (N, H, W).
pub fn channel_statistics(images: &Tensor) -> Normalization {
    let images = images.to_kind(Kind::Double);
    let mean = images.mean_dim([0i64, 2, 3].as_slice(), false, Kind::Double);
    let std = images.std_dim([0i64, 2, 3].as_slice(), false, false);
    let to_vec = |t: Tensor| Vec::<f64>::try_from(t).unwrap_or_default();
    Normalization {
        mean: to_vec(mean),
        std: to_vec(std),
    }
}

/// Normalises (N, C, H, W) images per channel; a constant channel is only centred.
pub fn normalize(images: &Tensor, stats: &Normalization) -> Tensor {
    let channels = stats.mean.len() as i64;
    let std: Vec<f64> = stats.std.iter().map(|&s| if s > 1e-12 { s } else { 1.0 }).collect();
    let mean = Tensor::from_slice(&stats.mean)
        .view([1, channels, 1, 1])
        .to_kind(Kind::Float);
    let std = Tensor::from_slice(&std).view([1, channels, 1, 1]).to_kind(Kind::Float);
    (images.to_kind(Kind::Float) - mean) / std
}
