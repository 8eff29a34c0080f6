//! A trained network taken out of its run folder to classify images: `predict` on files, `eval` on a labelled
//! data set (docs/EXPORT.md, *Using the model*).

mod evaluation;
mod inputs;

pub use evaluation::{ClassResult, EVAL_FILE, EvalReport, Outputs, evaluate};
pub use inputs::{ImageInputs, Input, SizeRule};

use crate::artifacts::Artifacts;
use crate::data::{self, Normalization};
use crate::genotype::{Genotype, InputShape};
use crate::memory;
use crate::search::{RunDir, SearchConfig};
use crate::supernet::{Mode, Supernet};
use anyhow::bail;
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

/// The most images one inference batch holds.
const MAX_BATCH: usize = 256;

/// Memory the feature maps of one inference batch may take, by `memory::inference_bytes_per_image`.
const BATCH_MEMORY: u64 = 256 << 20;

/// A trained network with what it needs to classify raw images: its input statistics, class names and the data
/// options of the run that trained it.
pub struct TrainedModel {
    dir: PathBuf,
    net: Supernet,
    normalization: Normalization,
    class_names: Vec<String>,
    settings: Option<SearchConfig>,
}

impl TrainedModel {
    /// Loads the trained network of a run folder (from `search` or `train --out`) onto `device`. A folder without
    /// `normalization.json` is refused: without it, images cannot be given the input the network was trained on.
    pub fn load(dir: &Path, device: Device) -> anyhow::Result<TrainedModel> {
        let files = Artifacts::new(dir);
        let net = files.load_network(device)?;
        let Some(normalization) = files.load_normalization()? else {
            bail!(
                "{} is missing: the run does not record its input statistics (it predates them); retrain it with \
                 `spidernet train {} --out DIR`",
                files.normalization_path().display(),
                files.genotype_path().display()
            );
        };
        let channels = net.genotype().input.channels;
        if normalization.mean.len() != channels {
            bail!(
                "{} holds statistics for {} channels, but the network takes {channels}",
                files.normalization_path().display(),
                normalization.mean.len()
            );
        }
        let class_names = files.load_class_names(net.genotype().classes)?;
        Ok(TrainedModel {
            dir: dir.to_path_buf(),
            net,
            normalization,
            class_names,
            settings: RunDir::read_settings(dir)?,
        })
    }

    /// The run folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The network's architecture.
    pub fn genotype(&self) -> &Genotype {
        self.net.genotype()
    }

    /// The images the network takes.
    pub fn input(&self) -> InputShape {
        self.genotype().input
    }

    /// One name per class.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// The input statistics.
    pub fn normalization(&self) -> &Normalization {
        &self.normalization
    }

    /// The settings of the search that trained the network; None for a `train --out` folder.
    pub fn settings(&self) -> Option<&SearchConfig> {
        self.settings.as_ref()
    }

    /// The size every image of the run's data was resized to (`--image-size`), if any.
    pub fn image_size(&self) -> Option<(usize, usize)> {
        self.settings.as_ref().and_then(|s| s.data_options.image_size)
    }

    /// Images per inference batch: the largest power of two up to 256 whose feature maps fit in 256 MiB by the
    /// inference estimate, so that memory stays bounded whatever the image count and size. Batches of 64 to 256 ran fastest on the CPU
    /// (docs/PERFORMANCE.md, *predict and eval*).
    pub fn batch_size(&self) -> usize {
        let genotype = self.genotype();
        let per_image = memory::inference_bytes_per_image(genotype, genotype.channels).max(1);
        let fit = ((BATCH_MEMORY / per_image) as usize).clamp(1, MAX_BATCH);
        1 << fit.ilog2()
    }

    /// The final classifier's logits (N, classes), on the CPU, for images (N, C, H, W) already normalised.
    pub fn logits(&self, normalized: &Tensor) -> Tensor {
        tch::no_grad(|| {
            let input = normalized.to_device(self.net.device());
            let mut heads = self.net.forward(&input, Mode::eval());
            heads
                .pop()
                .expect("a network has at least one head")
                .to_device(Device::Cpu)
        })
    }

    /// The logits of raw images (N, C, H, W) scaled to [0, 1].
    pub fn logits_of_raw(&self, images: &Tensor) -> Tensor {
        self.logits(&data::normalize(images, &self.normalization))
    }
}
