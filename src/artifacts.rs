//! The files of a trained network, in a run folder or a `train --out` folder: `genotype.json` (the architecture),
//! `weights.safetensors` (its tensors, named as docs/EXPORT.md lists), `normalization.json` (the input
//! statistics it expects) and `classes.json` (the class names). This module alone names, writes and reads them;
//! every write is atomic and synced.

use crate::data::{Dataset, Normalization, numbered_classes};
use crate::genotype::Genotype;
use crate::supernet::Supernet;
use crate::system::atomic::{read_if_present, write_json};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use tch::Tensor;

/// The architecture's file name.
pub const GENOTYPE_FILE: &str = "genotype.json";
/// The trained tensors' file name.
pub const WEIGHTS_FILE: &str = "weights.safetensors";
/// The input statistics' file name.
pub const NORMALIZATION_FILE: &str = "normalization.json";
/// The class names' file name.
pub const CLASSES_FILE: &str = "classes.json";

/// A folder holding (or about to hold) a trained network's files.
#[derive(Clone, Debug)]
pub struct Artifacts {
    dir: PathBuf,
}

impl Artifacts {
    /// The trained-network files in `dir`.
    pub fn new(dir: &Path) -> Self {
        Artifacts { dir: dir.to_path_buf() }
    }

    /// `genotype.json`.
    pub fn genotype_path(&self) -> PathBuf {
        self.dir.join(GENOTYPE_FILE)
    }

    /// `weights.safetensors`.
    pub fn weights_path(&self) -> PathBuf {
        self.dir.join(WEIGHTS_FILE)
    }

    /// `normalization.json`.
    pub fn normalization_path(&self) -> PathBuf {
        self.dir.join(NORMALIZATION_FILE)
    }

    /// `classes.json`.
    pub fn classes_path(&self) -> PathBuf {
        self.dir.join(CLASSES_FILE)
    }

    /// Writes all four files (creating the folder): the network's genotype, its live tensors, and the statistics
    /// and class names of the data it was trained on.
    pub fn save(&self, net: &Supernet, data: &Dataset) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir).with_context(|| format!("cannot create {}", self.dir.display()))?;
        net.genotype().save(&self.genotype_path())?;
        self.save_weights(net)?;
        write_json(&self.normalization_path(), &data.normalization)?;
        write_json(&self.classes_path(), &data.class_names)
    }

    /// Writes the network's live tensors (dead ops left out) as safetensors.
    pub fn save_weights(&self, net: &Supernet) -> anyhow::Result<()> {
        write_tensors(&self.weights_path(), &net.named_tensors())
    }

    /// The input statistics; None when the folder has no `normalization.json` (older runs), an error when it has
    /// one that cannot be read or parsed.
    pub fn load_normalization(&self) -> anyhow::Result<Option<Normalization>> {
        let path = self.normalization_path();
        let Some(text) = read_if_present(&path)? else {
            return Ok(None);
        };
        let normalization = Normalization::parse(&text).with_context(|| format!("{} is corrupt", path.display()))?;
        Ok(Some(normalization))
    }

    /// The class names, one per class; numbers ("0", "1", …) when the folder predates `classes.json`. An error
    /// when the file cannot be read or parsed, or does not name `classes` classes.
    pub fn load_class_names(&self, classes: usize) -> anyhow::Result<Vec<String>> {
        let path = self.classes_path();
        let Some(text) = read_if_present(&path)? else {
            return Ok(numbered_classes(classes));
        };
        let names: Vec<String> =
            serde_json::from_str(&text).with_context(|| format!("{} is corrupt", path.display()))?;
        if names.len() != classes {
            bail!(
                "{} names {} classes, but the network has {classes}",
                path.display(),
                names.len()
            );
        }
        Ok(names)
    }

    /// The genotype and the tensors, checked to be exactly those of the genotype's network.
    pub fn load_trained(&self) -> anyhow::Result<(Genotype, Vec<(String, Tensor)>)> {
        let net = self.load_network(tch::Device::Cpu)?;
        Ok((net.genotype().clone(), net.named_tensors()))
    }

    /// The trained network on `device`: the genotype's network holding exactly the tensors of the weights file.
    pub fn load_network(&self, device: tch::Device) -> anyhow::Result<Supernet> {
        let (genotype_path, weights_path) = (self.genotype_path(), self.weights_path());
        if !self.dir.is_dir() {
            bail!("{} is not a run folder", self.dir.display());
        }
        if !genotype_path.exists() {
            bail!(
                "{} has no {GENOTYPE_FILE}: not a run folder (`search` and `train --out` write one)",
                self.dir.display()
            );
        }
        let genotype = Genotype::load(&genotype_path)?;
        if !weights_path.exists() {
            bail!(
                "{} has no {WEIGHTS_FILE}: the run has no trained network (it ran with --no-final, or has not finished)",
                self.dir.display()
            );
        }
        let tensors = Tensor::read_safetensors(&weights_path)
            .with_context(|| format!("cannot read {}", weights_path.display()))?;
        let mut net = Supernet::builder(&genotype).device(device).build();
        net.load_named_tensors(tensors)
            .with_context(|| format!("{} does not match {}", weights_path.display(), genotype_path.display()))?;
        Ok(net)
    }
}

/// Writes named tensors to `path` as safetensors, atomically and synced.
pub fn write_tensors(path: &Path, tensors: &[(String, Tensor)]) -> anyhow::Result<()> {
    crate::system::atomic::write_atomic_with(path, |temp| {
        Tensor::write_safetensors(tensors, temp).map_err(|error| std::io::Error::other(error.to_string()))
    })
    .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("artifacts-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn normalization_missing_is_none_unreadable_is_an_error() {
        let dir = scratch("normalization");
        let files = Artifacts::new(&dir);
        assert!(files.load_normalization().unwrap().is_none());
        // A folder where the file should be cannot be read as one.
        std::fs::create_dir(files.normalization_path()).unwrap();
        let error = format!("{:#}", files.load_normalization().unwrap_err());
        assert!(
            error.starts_with(&format!("cannot read {}", files.normalization_path().display())),
            "{error}"
        );
        std::fs::remove_dir(files.normalization_path()).unwrap();
        std::fs::write(files.normalization_path(), "{\"mean\": [").unwrap();
        let error = format!("{:#}", files.load_normalization().unwrap_err());
        assert!(error.contains("is corrupt"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
