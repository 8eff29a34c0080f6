//! A folder of images with one subfolder per class (PNG or JPEG), like torchvision's `ImageFolder`.
//!
//! Either `DIR/train/<class>/…` and `DIR/test/<class>/…`, or `DIR/<class>/…`, in which case a seeded fifth of each
//! class becomes the test split.

use super::load::files_fingerprint;
use super::{DataSource, RawData};
use crate::seed::{self, Stream};
use anyhow::{Context, bail};
use image::{DynamicImage, imageops::FilterType};
use rand::seq::SliceRandom;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// Fraction of each class held out for testing when the folder has no `train`/`test` split.
const TEST_FRACTION: f64 = 0.2;

/// A folder of class subfolders.
#[derive(Clone, Debug)]
pub struct ImageFolder {
    /// The folder given on the command line.
    pub dir: PathBuf,
    /// Resize every image to (height, width); without it every image must have the first image's size.
    pub image_size: Option<(usize, usize)>,
}

/// One image file and its class.
struct Entry {
    path: PathBuf,
    class: usize,
}

fn is_image(path: &Path) -> bool {
    let hidden = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
    let extension = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
    !hidden && path.is_file() && matches!(extension.as_deref(), Some("png" | "jpg" | "jpeg"))
}

/// The entries of `dir`, sorted by path; the error names the folder.
pub fn sorted_entries(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the folder {}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot list {}", dir.display()))?;
    paths.sort();
    Ok(paths)
}

/// The class subfolders of `dir`, sorted by name.
fn class_folders(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let folders: Vec<PathBuf> = sorted_entries(dir)?
        .into_iter()
        .filter(|p| p.is_dir() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    if folders.len() < 2 {
        bail!(
            "{}: found {} class folder(s); a classification data set needs at least 2 (one subfolder per class)",
            dir.display(),
            folders.len()
        );
    }
    Ok(folders)
}

/// The image files of one class folder; an empty one is an error.
fn class_images(folder: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let images: Vec<PathBuf> = sorted_entries(folder)?.into_iter().filter(|p| is_image(p)).collect();
    if images.is_empty() {
        bail!("{}: the class folder holds no PNG or JPEG image", folder.display());
    }
    Ok(images)
}

fn folder_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl ImageFolder {
    /// The images under `dir`, resized to `image_size` when given.
    pub fn new(dir: PathBuf, image_size: Option<(usize, usize)>) -> Self {
        ImageFolder { dir, image_size }
    }

    /// Class names and (train, test) entries.
    fn entries(&self, seed: u64) -> anyhow::Result<(Vec<String>, Vec<Entry>, Vec<Entry>)> {
        if !self.dir.is_dir() {
            bail!("{}: no such folder", self.dir.display());
        }
        let (train_dir, test_dir) = (self.dir.join("train"), self.dir.join("test"));
        if train_dir.is_dir() && test_dir.is_dir() {
            let folders = class_folders(&train_dir)?;
            let names: Vec<String> = folders.iter().map(|f| folder_name(f)).collect();
            let mut train = Vec::new();
            for (class, folder) in folders.iter().enumerate() {
                train.extend(class_images(folder)?.into_iter().map(|path| Entry { path, class }));
            }
            let mut test = Vec::new();
            for folder in class_folders(&test_dir)? {
                let name = folder_name(&folder);
                let Some(class) = names.iter().position(|n| *n == name) else {
                    bail!(
                        "{}: class '{name}' has no folder under {}",
                        folder.display(),
                        train_dir.display()
                    );
                };
                test.extend(class_images(&folder)?.into_iter().map(|path| Entry { path, class }));
            }
            return Ok((names, train, test));
        }
        let folders = class_folders(&self.dir)?;
        let names = folders.iter().map(|f| folder_name(f)).collect();
        let mut rng = seed::rng(seed, Stream::DataSplit, seed::data_split::FOLDER_TEST);
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for (class, folder) in folders.iter().enumerate() {
            let mut images = class_images(folder)?;
            images.shuffle(&mut rng);
            let held = ((images.len() as f64 * TEST_FRACTION).round() as usize).min(images.len() - 1);
            for (i, path) in images.into_iter().enumerate() {
                let entry = Entry { path, class };
                if i < held { test.push(entry) } else { train.push(entry) }
            }
        }
        Ok((names, train, test))
    }
}

fn decode(path: &Path) -> anyhow::Result<DynamicImage> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    decode_image(&bytes).with_context(|| format!("{}: not a decodable PNG or JPEG image", path.display()))
}

/// Decodes one image file's bytes, its format guessed from them, within the image crate's default memory limits.
pub fn decode_image(bytes: &[u8]) -> anyhow::Result<DynamicImage> {
    Ok(image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()?
        .decode()?)
}

/// Decodes every entry; the images all get `size` (resized) or must share the first image's size.
fn decode_all(entries: &[&Entry], size: Option<(usize, usize)>) -> anyhow::Result<(Vec<DynamicImage>, (usize, usize))> {
    let mut images = Vec::with_capacity(entries.len());
    let mut first: Option<(&Path, (usize, usize))> = None;
    for entry in entries {
        let mut image = decode(&entry.path)?;
        let found = (image.height() as usize, image.width() as usize);
        match (size, first) {
            (Some(size), _) if found != size => image = resized(&image, size),
            (None, Some((first_path, first_size))) if found != first_size => bail!(
                "mixed image sizes: {} is {}x{} but {} is {}x{} (height x width); pass --image-size to resize them all",
                entry.path.display(),
                found.0,
                found.1,
                first_path.display(),
                first_size.0,
                first_size.1
            ),
            _ => {}
        }
        if first.is_none() {
            first = Some((&entry.path, size.unwrap_or(found)));
        }
        images.push(image);
    }
    Ok((images, first.map_or((0, 0), |(_, s)| s)))
}

/// `image` resized to (height, width), as `--image-size` resizes a folder's images.
pub fn resized(image: &DynamicImage, (height, width): (usize, usize)) -> DynamicImage {
    image.resize_exact(width as u32, height as u32, FilterType::Triangle)
}

/// Stacks images into (N, C, H, W) f32 in [0, 1], converting each to `channels` (1: luma, 3: RGB), as a folder's
/// images are converted; every image must be (height, width) already.
pub fn to_tensor(images: &[DynamicImage], channels: usize, (height, width): (usize, usize)) -> Tensor {
    let plane = height * width;
    let mut pixels = vec![0u8; images.len() * channels * plane];
    for (image, out) in images.iter().zip(pixels.chunks_exact_mut(channels * plane)) {
        if channels == 1 {
            out.copy_from_slice(image.to_luma8().as_raw());
        } else {
            for (i, rgb) in image.to_rgb8().as_raw().chunks_exact(3).enumerate() {
                for c in 0..3 {
                    out[c * plane + i] = rgb[c];
                }
            }
        }
    }
    Tensor::from_slice(&pixels)
        .view([images.len() as i64, channels as i64, height as i64, width as i64])
        .to_kind(tch::Kind::Float)
        / 255.0
}

impl DataSource for ImageFolder {
    fn fingerprint(&self, seed: u64) -> Option<String> {
        let (_, train, test) = self.entries(seed).ok()?;
        let files: Vec<PathBuf> = train.iter().chain(&test).map(|e| e.path.clone()).collect();
        files_fingerprint(&format!("folder size {:?} seed {seed}", self.image_size), &files)
    }

    fn read(&self, seed: u64) -> anyhow::Result<RawData> {
        let (class_names, train, test) = self.entries(seed)?;
        let all: Vec<&Entry> = train.iter().chain(&test).collect();
        let (images, size) = decode_all(&all, self.image_size)?;
        let grayscale = images.iter().all(|i| !i.color().has_color());
        let channels = if grayscale { 1 } else { 3 };
        let labels: Vec<i64> = all.iter().map(|e| e.class as i64).collect();
        let (train_part, test_part) = images.split_at(train.len());
        let raw = RawData {
            name: format!("folder:{}", self.dir.display()),
            class_names,
            train_images: to_tensor(train_part, channels, size),
            train_labels: Tensor::from_slice(&labels[..train.len()]),
            test_images: to_tensor(test_part, channels, size),
            test_labels: Tensor::from_slice(&labels[train.len()..]),
            horizontal_flip: true,
        };
        raw.check(&self.dir.display().to_string())?;
        if raw.test_labels.size()[0] == 0 {
            bail!(
                "{}: no image is left for testing; give each class at least 3 images, or train/ and test/ folders",
                self.dir.display()
            );
        }
        Ok(raw)
    }
}
