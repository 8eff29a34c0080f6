//! The images `predict` classifies: PNG and JPEG files, folders of them, and IDX image files, converted to the
//! network's input as `--data folder:` converts a folder's images.

use crate::data::{self, decode_image};
use crate::genotype::InputShape;
use anyhow::{Context, bail};
use image::{DynamicImage, GrayImage};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The images of one IDX file (unsigned bytes, N × H × W), held in memory.
pub struct IdxImages {
    path: PathBuf,
    height: usize,
    width: usize,
    pixels: Vec<u8>,
}

/// One image to classify.
pub enum Input {
    /// A PNG or JPEG file.
    File(PathBuf),
    /// One image of an IDX file.
    Idx {
        /// The file's images.
        file: Arc<IdxImages>,
        /// Which image.
        index: usize,
    },
    /// A path given that could not be read as images: it is reported, and the others are still classified.
    Unreadable {
        /// The path.
        path: PathBuf,
        /// Why.
        error: String,
    },
}

impl Input {
    /// How the output names this image: its path, with `[index]` for an image of an IDX file.
    pub fn label(&self) -> String {
        match self {
            Input::File(path) | Input::Unreadable { path, .. } => path.display().to_string(),
            Input::Idx { file, index } => format!("{}[{index}]", file.path.display()),
        }
    }

    /// The decoded image, or why it cannot be had (the error names the file).
    pub fn decode(&self) -> anyhow::Result<DynamicImage> {
        match self {
            Input::File(path) => {
                let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
                decode_image(&bytes).with_context(|| format!("{}: not a decodable PNG or JPEG image", path.display()))
            }
            Input::Idx { file, index } => {
                let plane = file.height * file.width;
                let pixels = file.pixels[index * plane..(index + 1) * plane].to_vec();
                let image = GrayImage::from_raw(file.width as u32, file.height as u32, pixels)
                    .expect("the slice holds exactly one image");
                Ok(DynamicImage::ImageLuma8(image))
            }
            Input::Unreadable { error, .. } => bail!("{error}"),
        }
    }
}

/// What happens to an image whose size is not the network's.
#[derive(Clone, Copy, Debug)]
pub struct SizeRule {
    /// The network's input.
    pub shape: InputShape,
    /// Resize it (as `--image-size` does), instead of refusing it.
    pub resize: bool,
}

impl SizeRule {
    /// `image` as the network takes it: resized when the rule allows, refused (naming `label`) otherwise. The
    /// channel count is converted later, by `data::to_tensor`, as for a folder's images.
    pub fn fit(&self, image: DynamicImage, label: &str) -> anyhow::Result<DynamicImage> {
        let (height, width) = (self.shape.height, self.shape.width);
        let found = (image.height() as usize, image.width() as usize);
        if found == (height, width) {
            Ok(image)
        } else if self.resize {
            Ok(data::resized(&image, (height, width)))
        } else {
            bail!(
                "{label} is {}x{} pixels, but the network takes {height}x{width} (height x width); pass --resize to \
                 resize it",
                found.0,
                found.1
            )
        }
    }
}

/// Every image named on the command line, in order: files as given, folders walked in name order.
pub struct ImageInputs {
    /// The images, and the paths that could not be read.
    pub inputs: Vec<Input>,
}

fn is_image_name(path: &Path) -> bool {
    let extension = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
    matches!(extension.as_deref(), Some("png" | "jpg" | "jpeg"))
}

fn is_hidden(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// The IDX magic of an image file: unsigned bytes, three dimensions.
const IDX_IMAGES: [u8; 4] = [0, 0, 0x08, 3];

impl ImageInputs {
    /// Collects the images of `paths`. A path that cannot be read becomes an `Unreadable` input, so that one bad
    /// path does not stop the rest.
    pub fn collect(paths: &[PathBuf]) -> ImageInputs {
        let mut inputs = Vec::new();
        for path in paths {
            if let Err(error) = Self::add(path, &mut inputs) {
                inputs.push(Input::Unreadable {
                    path: path.clone(),
                    error: format!("{error:#}"),
                });
            }
        }
        ImageInputs { inputs }
    }

    fn add(path: &Path, inputs: &mut Vec<Input>) -> anyhow::Result<()> {
        if path.is_dir() {
            let before = inputs.len();
            Self::add_folder(path, inputs)?;
            if inputs.len() == before {
                bail!("{}: the folder holds no PNG or JPEG image", path.display());
            }
            return Ok(());
        }
        if !path.exists() {
            bail!("{}: no such file or folder", path.display());
        }
        if is_image_name(path) {
            inputs.push(Input::File(path.to_path_buf()));
            return Ok(());
        }
        let bytes = data::read_maybe_gzipped(path)?;
        if bytes.starts_with(&IDX_IMAGES) {
            let file = Arc::new(Self::read_idx(&bytes, path)?);
            let count = file.pixels.len() / (file.height * file.width).max(1);
            inputs.extend((0..count).map(|index| Input::Idx {
                file: file.clone(),
                index,
            }));
        } else {
            // Neither IDX nor named as an image: the decoder may still recognise its format.
            inputs.push(Input::File(path.to_path_buf()));
        }
        Ok(())
    }

    fn read_idx(bytes: &[u8], path: &Path) -> anyhow::Result<IdxImages> {
        let (dims, pixels) = data::parse_idx(bytes, 3, path)?;
        if dims[1] == 0 || dims[2] == 0 {
            bail!(
                "{}: images of {}x{} pixels hold nothing",
                path.display(),
                dims[1],
                dims[2]
            );
        }
        Ok(IdxImages {
            path: path.to_path_buf(),
            height: dims[1],
            width: dims[2],
            pixels,
        })
    }

    /// The PNG and JPEG files under `dir`, subfolders included, in name order; hidden entries are skipped.
    fn add_folder(dir: &Path, inputs: &mut Vec<Input>) -> anyhow::Result<()> {
        for entry in data::sorted_entries(dir)?.into_iter().filter(|p| !is_hidden(p)) {
            if entry.is_dir() {
                Self::add_folder(&entry, inputs)?;
            } else if is_image_name(&entry) {
                inputs.push(Input::File(entry));
            }
        }
        Ok(())
    }
}
