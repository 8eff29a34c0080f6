//! Image-classification data: the `Dataset` type, its sources, normalisation and batching.

mod augment;
mod batches;
mod cifar;
mod digits;
mod folder;
mod idx;
mod load;
mod summary;

pub use augment::Augment;
pub use batches::Batches;
pub use cifar::{CifarFolder, CifarKind, parse_cifar};
pub use digits::Digits;
pub use folder::{ImageFolder, decode_image, resized, sorted_entries, to_tensor};
pub use idx::{FASHION_MNIST_DIR, IdxFolder, parse_idx, read_maybe_gzipped};
pub use load::{Loaded, cache_dir, load};
pub use summary::summary;

use crate::genotype::{Genotype, InputShape, OpSet};
use anyhow::Context;
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

impl Normalization {
    /// Reads statistics saved as JSON (`normalization.json`, the statistics cache), refusing any that could not
    /// have been computed: no channels, unequal lengths, a non-finite value or a negative deviation.
    pub fn parse(text: &str) -> anyhow::Result<Normalization> {
        let stats: Normalization = serde_json::from_str(text)?;
        if stats.mean.is_empty() || stats.mean.len() != stats.std.len() {
            anyhow::bail!(
                "{} means and {} standard deviations: needs one of each per channel",
                stats.mean.len(),
                stats.std.len()
            );
        }
        if let Some(value) = stats.mean.iter().chain(&stats.std).find(|v| !v.is_finite()) {
            anyhow::bail!("holds {value}, which is not a finite number");
        }
        if let Some(value) = stats.std.iter().find(|&&v| v < 0.0) {
            anyhow::bail!("holds the standard deviation {value}, which is negative");
        }
        Ok(stats)
    }
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
    /// A readable name per class (the class index when the source has none).
    pub class_names: Vec<String>,
    /// Training split.
    pub train: Split,
    /// Test split.
    pub test: Split,
    /// Statistics used to normalise both splits.
    pub normalization: Normalization,
    /// Whether a horizontal flip keeps an image in its class (false for digits and characters).
    pub horizontal_flip: bool,
}

/// How a `--data` source is read: options that apply across sources.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DataOptions {
    /// Resize every image of a `folder:` source to (height, width); without it all images must share one size.
    #[serde(default)]
    pub image_size: Option<(usize, usize)>,
    /// Force horizontal flips on or off in augmentation; `None` keeps the source's own choice.
    #[serde(default)]
    pub flip: Option<bool>,
}

/// The data source named by a `--data` value.
pub fn source(spec: &str, options: &DataOptions) -> anyhow::Result<Box<dyn DataSource>> {
    let (kind, path) = match spec.split_once(':') {
        Some((kind, path)) => (kind, Some(std::path::PathBuf::from(path))),
        None => (spec, None),
    };
    if options.image_size.is_some() && kind != "folder" {
        anyhow::bail!("--image-size applies to folder:DIR data only, not to '{spec}'");
    }
    match (kind, path) {
        ("digits", None) => Ok(Box::new(Digits::default())),
        ("fashion-mnist", dir) => Ok(Box::new(IdxFolder::fashion_mnist(dir))),
        ("idx", Some(dir)) => Ok(Box::new(IdxFolder::generic(dir))),
        ("cifar10", Some(dir)) => Ok(Box::new(CifarFolder::new(dir, CifarKind::Cifar10))),
        ("cifar100", Some(dir)) => Ok(Box::new(CifarFolder::new(dir, CifarKind::Cifar100Fine))),
        ("cifar100-coarse", Some(dir)) => Ok(Box::new(CifarFolder::new(dir, CifarKind::Cifar100Coarse))),
        ("folder", Some(dir)) => Ok(Box::new(ImageFolder::new(dir, options.image_size))),
        ("idx" | "cifar10" | "cifar100" | "cifar100-coarse" | "folder", None) => {
            anyhow::bail!("--data {kind} needs a folder: {kind}:DIR")
        }
        _ => anyhow::bail!(
            "--data '{spec}': unknown data set (use digits, fashion-mnist[:DIR], idx:DIR, cifar10:DIR, cifar100:DIR, \
             cifar100-coarse:DIR or folder:DIR)"
        ),
    }
}

/// Something that can produce a `Dataset`.
pub trait DataSource {
    /// Reads the images (scaled to [0, 1]) and labels, splitting reproducibly from `seed` where the source has no
    /// fixed test split.
    fn read(&self, seed: u64) -> anyhow::Result<RawData>;

    /// A string that changes whenever what `read(seed)` returns may change (files, sizes, times, options, seed),
    /// used to cache the training statistics; `None` turns caching off.
    fn fingerprint(&self, seed: u64) -> Option<String>;

    /// Reads and normalises the data set, computing its statistics afresh.
    fn load(&self, seed: u64) -> anyhow::Result<Dataset> {
        let raw = self.read(seed)?;
        let stats = channel_statistics(&raw.train_images);
        Ok(raw.normalize(stats))
    }
}

/// A data set as read from its files: images in [0, 1], not yet normalised.
#[derive(Debug)]
pub struct RawData {
    /// Short name.
    pub name: String,
    /// A readable name per class; its length is the class count.
    pub class_names: Vec<String>,
    /// Training images (N, C, H, W) f32.
    pub train_images: Tensor,
    /// Training labels (N) i64.
    pub train_labels: Tensor,
    /// Test images (M, C, H, W) f32.
    pub test_images: Tensor,
    /// Test labels (M) i64.
    pub test_labels: Tensor,
    /// Whether a horizontal flip keeps an image in its class.
    pub horizontal_flip: bool,
}

/// Class names "0", "1", … for sources without names.
pub fn numbered_classes(classes: usize) -> Vec<String> {
    (0..classes).map(|c| c.to_string()).collect()
}

impl RawData {
    /// Checks what every source must satisfy: labels in range and no class without training images;
    /// `origin` names the files in the message.
    pub fn check(&self, origin: &str) -> anyhow::Result<()> {
        let classes = self.class_names.len() as i64;
        for (split, labels) in [("training", &self.train_labels), ("test", &self.test_labels)] {
            let labels = Vec::<i64>::try_from(labels)?;
            if let Some((index, label)) = labels.iter().enumerate().find(|(_, l)| !(0..classes).contains(*l)) {
                anyhow::bail!("{origin}: {split} label {label} (sample {index}) is out of range for {classes} classes");
            }
        }
        let counts = Vec::<i64>::try_from(self.train_labels.bincount(None::<Tensor>, classes))?;
        if let Some(empty) = counts.iter().position(|&c| c == 0) {
            anyhow::bail!(
                "{origin}: class {} ({}) has no training image",
                empty,
                self.class_names[empty]
            );
        }
        Ok(())
    }

    /// Normalises both splits with `stats` (computed from the training split).
    pub fn normalize(self, stats: Normalization) -> Dataset {
        let size = self.train_images.size();
        let shape = InputShape {
            channels: size[1] as usize,
            height: size[2] as usize,
            width: size[3] as usize,
        };
        Dataset {
            name: self.name,
            shape,
            classes: self.class_names.len(),
            class_names: self.class_names,
            train: Split {
                images: normalize(&self.train_images, &stats),
                labels: self.train_labels,
            },
            test: Split {
                images: normalize(&self.test_images, &stats),
                labels: self.test_labels,
            },
            normalization: stats,
            horizontal_flip: self.horizontal_flip,
        }
    }
}

impl Dataset {
    /// The minimal genotype of R reductions and C channels for these images, every edge holding the ops of
    /// `op_set`, or an error naming the data set when they are too small for R reductions.
    pub fn minimal_genotype(&self, reductions: usize, channels: usize, op_set: OpSet) -> anyhow::Result<Genotype> {
        Genotype::minimal_with(reductions, channels, self.shape, self.classes, op_set).with_context(|| {
            format!(
                "--data {} with --reductions {reductions} --channels {channels}",
                self.name
            )
        })
    }

    /// Refuses a genotype whose input shape or class count is not this data set's, naming both.
    pub fn check_fits(&self, genotype: &Genotype) -> anyhow::Result<()> {
        if genotype.input != self.shape || genotype.classes != self.classes {
            let (g, d) = (genotype.input, self.shape);
            anyhow::bail!(
                "the network takes {}x{}x{} images in {} classes, but {} has {}x{}x{} in {}",
                g.channels,
                g.height,
                g.width,
                genotype.classes,
                self.name,
                d.channels,
                d.height,
                d.width,
                self.classes
            );
        }
        Ok(())
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
