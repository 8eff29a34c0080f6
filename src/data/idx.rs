//! MNIST-style IDX files (MNIST, Fashion-MNIST, KMNIST), gzipped or not.

use super::load::files_fingerprint;
use super::{DataSource, RawData, numbered_classes};
use anyhow::{Context, bail};
use std::io::Read;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// Where Debian's `dataset-fashion-mnist` package puts the files.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The four standard files of a folder: training and test images and labels.
#[derive(Clone, Debug)]
pub struct IdxFolder {
    /// The folder holding `train-images-idx3-ubyte[.gz]` and its three siblings.
    pub dir: PathBuf,
    /// Name reported for the data set.
    pub name: String,
    /// Whether a horizontal flip keeps the class (true for clothing, false for digits and characters).
    pub horizontal_flip: bool,
    /// Class names, when the data set is known.
    pub class_names: Option<Vec<String>>,
}

const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

const FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

impl IdxFolder {
    /// Fashion-MNIST at `dir`, or at the Debian package's location.
    pub fn fashion_mnist(dir: Option<PathBuf>) -> Self {
        IdxFolder {
            dir: dir.unwrap_or_else(|| PathBuf::from(FASHION_MNIST_DIR)),
            name: "fashion-mnist".to_string(),
            horizontal_flip: true,
            class_names: Some(FASHION_MNIST_CLASSES.iter().map(|c| c.to_string()).collect()),
        }
    }

    /// Any folder of the four IDX files (MNIST, KMNIST, …); no flips, since digits and characters have a handedness.
    pub fn generic(dir: PathBuf) -> Self {
        IdxFolder {
            name: format!("idx:{}", dir.display()),
            dir,
            horizontal_flip: false,
            class_names: None,
        }
    }

    fn file(&self, stem: &str) -> anyhow::Result<PathBuf> {
        for name in [format!("{stem}.gz"), stem.to_string()] {
            let path = self.dir.join(&name);
            if path.exists() {
                return Ok(path);
            }
        }
        bail!("{}: missing {stem} (or {stem}.gz)", self.dir.display())
    }
}

/// The bytes of a file, decompressed when it is gzipped.
pub fn read_maybe_gzipped(path: &Path) -> anyhow::Result<Vec<u8>> {
    let raw = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut bytes)
            .with_context(|| format!("{}: corrupt or truncated gzip data", path.display()))?;
        Ok(bytes)
    } else {
        Ok(raw)
    }
}

/// Parses an IDX file of unsigned bytes with `rank` dimensions; returns its dimensions and data.
pub fn parse_idx(bytes: &[u8], rank: usize, origin: &Path) -> anyhow::Result<(Vec<usize>, Vec<u8>)> {
    let where_ = origin.display();
    if bytes.len() < 4 {
        bail!("{where_}: too short for an IDX header ({} bytes)", bytes.len());
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        bail!(
            "{where_}: not an IDX file (magic number {:02x}{:02x}{:02x}{:02x})",
            bytes[0],
            bytes[1],
            bytes[2],
            bytes[3]
        );
    }
    if bytes[2] != 0x08 {
        bail!("{where_}: element type 0x{:02x} is not unsigned bytes (0x08)", bytes[2]);
    }
    if bytes[3] as usize != rank {
        bail!("{where_}: expected {rank} dimensions, the header says {}", bytes[3]);
    }
    let header = 4 + 4 * rank;
    if bytes.len() < header {
        bail!("{where_}: truncated header");
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| u32::from_be_bytes([bytes[4 + 4 * i], bytes[5 + 4 * i], bytes[6 + 4 * i], bytes[7 + 4 * i]]) as usize)
        .collect();
    let expected = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let Some(expected) = expected else {
        bail!("{where_}: dimensions {dims:?} overflow");
    };
    let data = &bytes[header..];
    if data.len() != expected {
        bail!(
            "{where_}: dimensions {dims:?} need {expected} bytes of data, the file has {}{}",
            data.len(),
            if data.len() < expected { " (truncated)" } else { "" }
        );
    }
    Ok((dims, data.to_vec()))
}

/// Images (N, 1, H, W) scaled to [0, 1] and labels (N) from an image file and a label file.
fn load_pair(images: &Path, labels: &Path) -> anyhow::Result<(Tensor, Tensor, usize)> {
    let (dims, pixels) = parse_idx(&read_maybe_gzipped(images)?, 3, images)?;
    let (label_dims, label_bytes) = parse_idx(&read_maybe_gzipped(labels)?, 1, labels)?;
    if dims[0] != label_dims[0] {
        bail!(
            "{} holds {} images but {} holds {} labels",
            images.display(),
            dims[0],
            labels.display(),
            label_dims[0]
        );
    }
    if dims[0] == 0 {
        bail!("{} holds no images", images.display());
    }
    let classes = label_bytes.iter().copied().max().map_or(0, |m| m as usize + 1);
    let images = Tensor::from_slice(&pixels)
        .view([dims[0] as i64, 1, dims[1] as i64, dims[2] as i64])
        .to_kind(tch::Kind::Float)
        / 255.0;
    let labels = Tensor::from_slice(&label_bytes).to_kind(tch::Kind::Int64);
    Ok((images, labels, classes))
}

impl DataSource for IdxFolder {
    fn fingerprint(&self, _seed: u64) -> Option<String> {
        let files: Vec<PathBuf> = FILES.iter().map(|f| self.file(f)).collect::<anyhow::Result<_>>().ok()?;
        files_fingerprint("idx", &files)
    }

    fn read(&self, _seed: u64) -> anyhow::Result<RawData> {
        let [train_images, train_labels, test_images, test_labels] = FILES.map(|f| self.file(f));
        let (train_images, train_labels, train_classes) = load_pair(&train_images?, &train_labels?)?;
        let test_images_path = test_images?;
        let test_labels_path = test_labels?;
        let (test_images, test_labels, test_classes) = load_pair(&test_images_path, &test_labels_path)?;
        if train_images.size()[2..] != test_images.size()[2..] {
            bail!(
                "{}: test images are {:?}, training images {:?}",
                test_images_path.display(),
                &test_images.size()[2..],
                &train_images.size()[2..]
            );
        }
        let classes = match &self.class_names {
            Some(names) => names.clone(),
            None => numbered_classes(train_classes),
        };
        if test_classes > classes.len() {
            bail!(
                "{}: label {} is out of range: the training labels only go up to {}",
                test_labels_path.display(),
                test_classes - 1,
                classes.len() - 1
            );
        }
        let raw = RawData {
            name: self.name.clone(),
            class_names: classes,
            train_images,
            train_labels,
            test_images,
            test_labels,
            horizontal_flip: self.horizontal_flip,
        };
        raw.check(&self.dir.display().to_string())?;
        Ok(raw)
    }
}
