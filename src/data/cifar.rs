//! CIFAR-10 and CIFAR-100 in their binary formats (`cifar-10-batches-bin`, `cifar-100-binary`).

use super::load::files_fingerprint;
use super::{DataSource, RawData, numbered_classes};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use tch::Tensor;

const SIDE: usize = 32;
const PIXELS: usize = 3 * SIDE * SIDE;

const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Which CIFAR set, and for CIFAR-100 which labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CifarKind {
    /// 10 classes; records are 1 label byte + 3,072 pixel bytes.
    Cifar10,
    /// 100 fine classes; records are coarse and fine label bytes + 3,072 pixel bytes.
    Cifar100Fine,
    /// The 20 coarse superclasses of CIFAR-100.
    Cifar100Coarse,
}

impl CifarKind {
    /// Label bytes before the pixels of each record.
    fn label_bytes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 1,
            _ => 2,
        }
    }

    /// Which of the label bytes is the label.
    fn label_index(self) -> usize {
        match self {
            CifarKind::Cifar100Fine => 1,
            _ => 0,
        }
    }

    /// Number of classes.
    pub fn classes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 10,
            CifarKind::Cifar100Fine => 100,
            CifarKind::Cifar100Coarse => 20,
        }
    }
}

/// A folder holding a CIFAR binary distribution (or its extracted `cifar-10-batches-bin` / `cifar-100-binary`
/// subfolder).
#[derive(Clone, Debug)]
pub struct CifarFolder {
    /// The folder given on the command line.
    pub dir: PathBuf,
    /// Which set.
    pub kind: CifarKind,
}

/// Labels and pixels (CHW per image, 0..=255) parsed from one binary CIFAR file.
pub fn parse_cifar(bytes: &[u8], kind: CifarKind, origin: &Path) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let record = kind.label_bytes() + PIXELS;
    let where_ = origin.display();
    if bytes.is_empty() {
        bail!("{where_}: the file is empty");
    }
    if !bytes.len().is_multiple_of(record) {
        bail!(
            "{where_}: {} bytes is not a whole number of {record}-byte records (truncated after record {}?)",
            bytes.len(),
            bytes.len() / record
        );
    }
    let count = bytes.len() / record;
    let mut labels = Vec::with_capacity(count);
    let mut pixels = Vec::with_capacity(count * PIXELS);
    for (index, chunk) in bytes.chunks_exact(record).enumerate() {
        let label = chunk[kind.label_index()];
        if label as usize >= kind.classes() {
            bail!(
                "{where_}: record {index}: label {label} is out of range for {} classes (is this the right CIFAR \
                 variant?)",
                kind.classes()
            );
        }
        labels.push(label);
        pixels.extend_from_slice(&chunk[kind.label_bytes()..]);
    }
    Ok((labels, pixels))
}

impl CifarFolder {
    /// The CIFAR set `kind` in `dir`.
    pub fn new(dir: PathBuf, kind: CifarKind) -> Self {
        CifarFolder { dir, kind }
    }

    /// The folder that holds the files: `dir` itself or the subfolder the official archive extracts to.
    fn root(&self) -> PathBuf {
        let sub = match self.kind {
            CifarKind::Cifar10 => "cifar-10-batches-bin",
            _ => "cifar-100-binary",
        };
        let nested = self.dir.join(sub);
        if nested.is_dir() { nested } else { self.dir.clone() }
    }

    /// (training files, test file).
    fn files(&self) -> (Vec<PathBuf>, PathBuf) {
        let root = self.root();
        match self.kind {
            CifarKind::Cifar10 => (
                (1..=5).map(|i| root.join(format!("data_batch_{i}.bin"))).collect(),
                root.join("test_batch.bin"),
            ),
            _ => (vec![root.join("train.bin")], root.join("test.bin")),
        }
    }

    fn class_names(&self) -> Vec<String> {
        let names_file = match self.kind {
            CifarKind::Cifar10 => return CIFAR10_CLASSES.iter().map(|c| c.to_string()).collect(),
            CifarKind::Cifar100Fine => "fine_label_names.txt",
            CifarKind::Cifar100Coarse => "coarse_label_names.txt",
        };
        let names: Vec<String> = std::fs::read_to_string(self.root().join(names_file))
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        if names.len() == self.kind.classes() {
            names
        } else {
            numbered_classes(self.kind.classes())
        }
    }

    fn read_files(&self, files: &[PathBuf]) -> anyhow::Result<(Tensor, Tensor)> {
        let mut labels = Vec::new();
        let mut pixels = Vec::new();
        for file in files {
            let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            let (l, p) = parse_cifar(&bytes, self.kind, file)?;
            labels.extend(l);
            pixels.extend(p);
        }
        let n = labels.len() as i64;
        let images = Tensor::from_slice(&pixels)
            .view([n, 3, SIDE as i64, SIDE as i64])
            .to_kind(tch::Kind::Float)
            / 255.0;
        Ok((images, Tensor::from_slice(&labels).to_kind(tch::Kind::Int64)))
    }
}

impl DataSource for CifarFolder {
    fn fingerprint(&self, _seed: u64) -> Option<String> {
        let (mut files, test) = self.files();
        files.push(test);
        files_fingerprint(&format!("{:?}", self.kind), &files)
    }

    fn read(&self, _seed: u64) -> anyhow::Result<RawData> {
        let (train_files, test_file) = self.files();
        if let Some(missing) = train_files.iter().chain([&test_file]).find(|f| !f.is_file()) {
            bail!(
                "{}: missing {} (expected the binary version of the data set)",
                self.dir.display(),
                missing.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
            );
        }
        let (train_images, train_labels) = self.read_files(&train_files)?;
        let (test_images, test_labels) = self.read_files(std::slice::from_ref(&test_file))?;
        let raw = RawData {
            name: match self.kind {
                CifarKind::Cifar10 => "cifar10",
                CifarKind::Cifar100Fine => "cifar100",
                CifarKind::Cifar100Coarse => "cifar100-coarse",
            }
            .to_string(),
            class_names: self.class_names(),
            train_images,
            train_labels,
            test_images,
            test_labels,
            horizontal_flip: true,
        };
        raw.check(&self.dir.display().to_string())?;
        Ok(raw)
    }
}
