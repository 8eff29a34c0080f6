//! The files `bench/twin.py` builds its side from: the genotypes, the settings with our parameter counts
//! (`bench.json`), and per genotype one network's tensors with an input and our logits, to check that the twin
//! computes the same function.

use super::genotypes::{SCORED_CELL, grown_genotype, initial_genotype, scored_candidate};
use super::{BenchConfig, inputs};
use crate::genotype::{Genotype, InputShape, Op};
use crate::metrics::candidate::Candidate;
use crate::nn::init::{Fan, InitScheme};
use crate::nn::pruner::PrunerConfig;
use crate::supernet::{Mode, Supernet};
use crate::train::TrainConfig;
use anyhow::Context;
use serde_json::json;
use std::path::Path;
use tch::{Device, Tensor};

/// Images in each check file.
const CHECK_IMAGES: usize = 4;

/// Writes into `dir`: initial.json, grown.json, candidate.json (the scored split applied), bench.json, and
/// initial.check.safetensors and grown.check.safetensors.
pub fn write_files(dir: &Path, config: &BenchConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut genotypes = serde_json::Map::new();
    for (name, genotype) in [("initial", initial_genotype()), ("grown", grown_genotype())] {
        let file = format!("{name}.json");
        genotype.save(&dir.join(&file))?;
        let check = format!("{name}.check.safetensors");
        let parameters = write_check(&genotype, &dir.join(&check))?;
        genotypes.insert(
            name.to_string(),
            json!({"file": file, "parameters": parameters, "edges": genotype.edge_count(), "check": check}),
        );
    }
    let (genotype, edge) = scored_candidate();
    let candidate = Candidate::split(&genotype, SCORED_CELL, edge)?;
    candidate.on.save(&dir.join("candidate.json"))?;
    let metrics = &config.metrics;
    let crop = InputShape {
        channels: 1,
        height: metrics.lrc_crop,
        width: metrics.lrc_crop,
    };
    let thin = |width, scheme, input| candidate.network(width, scheme, input, Device::Cpu).parameter_count();
    let manifest = json!({
        "config": config,
        "train": TrainConfig::default(),
        "pruner": PrunerConfig::default(),
        "genotypes": genotypes,
        "candidate": {
            "file": "candidate.json",
            "cell": SCORED_CELL,
            "edge": edge,
            "new_edges": candidate.new_edges,
            "ntk_parameters": thin(metrics.ntk_width, InitScheme::KaimingNormal(Fan::Out), None),
            "lrc_parameters": thin(metrics.lrc_width, InitScheme::KaimingNormal(Fan::In), Some(crop)),
        },
    });
    crate::system::atomic::write_json(&dir.join("bench.json"), &manifest)
}

/// Writes one network of `genotype` (a max-pool gate closed in every cell, batch-norm running statistics moved off
/// their initial values) as `net.<name>` tensors, with `input` and the logits of every tower in evaluation mode
/// (`logits_eval`) and in training mode without drop-path (`logits_train`). Returns its parameter count.
fn write_check(genotype: &Genotype, path: &Path) -> anyhow::Result<usize> {
    let net = Supernet::builder(genotype).seed(5).build();
    for (k, cell) in genotype.cells.iter().enumerate() {
        if let Some(gate) = net.gate_weight(k, cell.edges[0].id, Op::MaxPool3x3) {
            tch::no_grad(|| {
                let _ = gate.shallow_clone().fill_(-0.01);
            });
        }
    }
    let (input, _) = inputs::random_batch(genotype.input, genotype.classes, CHECK_IMAGES, 4, Device::Cpu);
    let stack = |logits: Vec<Tensor>| Tensor::stack(&logits, 0);
    let mut named: Vec<(String, Tensor)> = tch::no_grad(|| {
        for _ in 0..2 {
            let _ = net.forward(&input, Mode::train(0.0));
        }
        let tensors = net.named_tensors().into_iter();
        tensors
            .map(|(name, t)| (format!("net.{name}"), t.detach().copy()))
            .collect()
    });
    let (eval, train) = tch::no_grad(|| {
        let eval = stack(net.forward(&input, Mode::eval()));
        (eval, stack(net.forward(&input, Mode::train(0.0))))
    });
    named.extend([
        ("input".to_string(), input),
        ("logits_eval".to_string(), eval),
        ("logits_train".to_string(), train),
    ]);
    Tensor::write_safetensors(&named, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(net.parameter_count())
}
