//! `score --dump`: every scoring network exactly as it was measured (genotype, width, tensors) and the inputs it
//! was measured on, so that anyone can recompute each κ and region count (docs/METRICS.md, *Dump format*).
//!
//! The folder is assembled under a temporary name beside its final one and renamed into place when complete, so
//! a failure leaves no half-written dump behind.

use super::score::{CandidateReport, Metric, MetricsConfig, NetworkObserver, Role, Scorer};
use crate::artifacts::write_tensors;
use crate::genotype::{Genotype, InputShape};
use crate::supernet::Supernet;
use anyhow::{Context, bail};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// Version of the dump's layout, in `scoring.json`.
pub const DUMP_FORMAT: u32 = 1;

/// The manifest's file name.
pub const MANIFEST_FILE: &str = "scoring.json";

/// One scoring network in the manifest.
#[derive(Clone, Debug, Serialize)]
pub struct DumpedNetwork {
    /// Its folder under `networks/`.
    pub name: String,
    /// The metric it measures.
    pub metric: Metric,
    /// The candidate whose "on" network it is; None for the current network (every "off").
    pub candidate: Option<SplitRef>,
    /// Channels of its first cell.
    pub width: usize,
    /// The inputs it takes: the data's images (NTK) or single-channel crops (LRC).
    pub input: InputShape,
    /// Its genotype, relative to the dump folder. The genotype records the data's input shape, which its
    /// reductions must fit; the network itself takes `input`.
    pub genotype: String,
    /// Its tensors per repeat, relative to the dump folder.
    pub tensors: Vec<String>,
    /// Its NTK gradient rows G per repeat (with `--dump-gradients`, NTK networks only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gradients: Vec<String>,
}

/// A candidate split: an edge of a cell.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct SplitRef {
    /// The cell.
    pub cell: usize,
    /// The edge id.
    pub edge: u32,
}

/// A candidate's report with the names of the four networks behind it.
#[derive(Serialize)]
struct DumpedCandidate<'a> {
    #[serde(flatten)]
    report: &'a CandidateReport,
    networks: BTreeMap<&'static str, String>,
}

/// `scoring.json`.
#[derive(Serialize)]
struct Manifest<'a> {
    format: u32,
    genotype: &'static str,
    seed: u64,
    data: &'a str,
    metrics: &'a MetricsConfig,
    inputs: Vec<String>,
    networks: Vec<&'a DumpedNetwork>,
    candidates: Vec<DumpedCandidate<'a>>,
}

/// A dump being written.
pub struct ScoringDump {
    target: PathBuf,
    data_input: InputShape,
    temp: PathBuf,
    gradients: bool,
    networks: BTreeMap<String, DumpedNetwork>,
    finished: bool,
}

fn network_name(role: Role, metric: Metric) -> String {
    let metric = match metric {
        Metric::Ntk => "ntk",
        Metric::Lrc => "lrc",
    };
    match role {
        Role::Off => format!("current-{metric}"),
        Role::On { cell, edge } => format!("cell{cell}-edge{edge}-{metric}"),
    }
}

impl ScoringDump {
    /// Starts a dump into `dir`, which must not exist or be empty, of networks for images of `data_input`; with
    /// `gradients`, the NTK's rows are kept too.
    pub fn create(dir: &Path, data_input: InputShape, gradients: bool) -> anyhow::Result<ScoringDump> {
        if dir.exists() {
            let mut entries = std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
            if entries.next().is_some() {
                bail!("{} is not empty: a dump goes into a new or empty folder", dir.display());
            }
        }
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let temp = parent.join(format!(".{name}.partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&temp);
        std::fs::create_dir_all(temp.join("inputs"))
            .with_context(|| format!("cannot create the dump folder {}", dir.display()))?;
        Ok(ScoringDump {
            target: dir.to_path_buf(),
            data_input,
            temp,
            gradients,
            networks: BTreeMap::new(),
            finished: false,
        })
    }

    /// Writes the scored genotype and every repeat's inputs: `inputs/repeat-<r>.safetensors` with the NTK batches
    /// `ntk.<b>` and the LRC crop batches `lrc.<b>`.
    fn write_inputs(&self, genotype: &Genotype, scorer: &Scorer) -> anyhow::Result<Vec<String>> {
        genotype.save(&self.temp.join("genotype.json"))?;
        (0..scorer.config().repeats)
            .map(|repeat| {
                let (ntk, lrc) = scorer.inputs(repeat);
                let named: Vec<(String, Tensor)> = (ntk.iter().enumerate().map(|(b, t)| (format!("ntk.{b}"), t)))
                    .chain(lrc.iter().enumerate().map(|(b, t)| (format!("lrc.{b}"), t)))
                    .map(|(name, t)| (name, t.to_device(tch::Device::Cpu)))
                    .collect();
                let file = format!("inputs/repeat-{repeat}.safetensors");
                write_tensors(&self.temp.join(&file), &named)?;
                Ok(file)
            })
            .collect()
    }

    /// Writes the manifest with the inputs and the candidates' reports, then moves the folder into place.
    pub fn finish(
        mut self,
        genotype: &Genotype,
        scorer: &Scorer,
        data: &str,
        seed: u64,
        reports: &[CandidateReport],
    ) -> anyhow::Result<PathBuf> {
        let inputs = self.write_inputs(genotype, scorer)?;
        let candidates = reports
            .iter()
            .map(|report| {
                let on = Role::On {
                    cell: report.cell,
                    edge: report.edge,
                };
                let networks = BTreeMap::from([
                    ("ntk_on", network_name(on, Metric::Ntk)),
                    ("ntk_off", network_name(Role::Off, Metric::Ntk)),
                    ("lrc_on", network_name(on, Metric::Lrc)),
                    ("lrc_off", network_name(Role::Off, Metric::Lrc)),
                ]);
                DumpedCandidate { report, networks }
            })
            .collect();
        let manifest = Manifest {
            format: DUMP_FORMAT,
            genotype: "genotype.json",
            seed,
            data,
            metrics: scorer.config(),
            inputs,
            networks: self.networks.values().collect(),
            candidates,
        };
        crate::system::atomic::write_json(&self.temp.join(MANIFEST_FILE), &manifest)?;
        if self.target.exists() {
            std::fs::remove_dir(&self.target).with_context(|| format!("cannot replace {}", self.target.display()))?;
        }
        std::fs::rename(&self.temp, &self.target)
            .with_context(|| format!("cannot move the dump into {}", self.target.display()))?;
        self.finished = true;
        Ok(self.target.clone())
    }
}

impl Drop for ScoringDump {
    fn drop(&mut self) {
        if !self.finished {
            let _ = std::fs::remove_dir_all(&self.temp);
        }
    }
}

impl NetworkObserver for ScoringDump {
    fn network(
        &mut self,
        role: Role,
        metric: Metric,
        repeat: usize,
        net: &Supernet,
        gradients: Option<&Tensor>,
    ) -> anyhow::Result<()> {
        let name = network_name(role, metric);
        let folder = format!("networks/{name}");
        if !self.networks.contains_key(&name) {
            std::fs::create_dir_all(self.temp.join(&folder))
                .with_context(|| format!("cannot create {}", self.temp.join(&folder).display()))?;
            let mut genotype = net.genotype().clone();
            genotype.input = self.data_input;
            genotype.save(&self.temp.join(&folder).join("genotype.json"))?;
            let entry = DumpedNetwork {
                name: name.clone(),
                metric,
                candidate: match role {
                    Role::Off => None,
                    Role::On { cell, edge } => Some(SplitRef { cell, edge }),
                },
                width: net.width(),
                input: net.genotype().input,
                genotype: format!("{folder}/genotype.json"),
                tensors: Vec::new(),
                gradients: Vec::new(),
            };
            self.networks.insert(name.clone(), entry);
        }
        let entry = self.networks.get_mut(&name).expect("inserted above");
        if entry.tensors.len() > repeat {
            // The current network is measured once; a second sight of it is the same draw.
            return Ok(());
        }
        let file = format!("{folder}/repeat-{repeat}.safetensors");
        let tensors: Vec<(String, Tensor)> = (net.named_tensors().into_iter())
            .map(|(n, t)| (n, t.detach().to_device(tch::Device::Cpu)))
            .collect();
        write_tensors(&self.temp.join(&file), &tensors)?;
        entry.tensors.push(file);
        if let (true, Some(rows)) = (self.gradients, gradients) {
            let file = format!("{folder}/gradients-repeat-{repeat}.safetensors");
            write_tensors(
                &self.temp.join(&file),
                &[("rows".to_string(), rows.to_device(tch::Device::Cpu))],
            )?;
            entry.gradients.push(file);
        }
        Ok(())
    }
}
