//! The pluggable train-free metrics (docs/METRICS.md, *Metrics and rules*): each against a recomputation in
//! PyTorch (spidernet_torch.proxies) or against the search's own scorer.

mod common;

use common::{python, scratch, turn};
use spidernet::data::{self, DataOptions, Dataset};
use spidernet::genotype::{Genotype, InputShape};
use spidernet::metrics::MetricsConfig;
use spidernet::metrics::score::Scorer;
use spidernet::metrics::zero_cost::{self, MetricName, NetworkMetric, Probe};
use spidernet::train::TrainConfig;
use std::process::Command;
use tch::Tensor;

/// The minimal R=1 C=4 genotype for the digits with cell 0 split twice, so that it has sep-convs on a path of
/// several edges.
fn grown_genotype() -> Genotype {
    let mut genotype = Genotype::minimal(1, 4, InputShape::new(1, 8, 8), 10).unwrap();
    let first = genotype.cells[0].edges[0].id;
    let split = genotype.cells[0].split(first).unwrap();
    genotype.cells[0].split(split.edge_b).unwrap();
    genotype
}

fn digits() -> Dataset {
    data::load("digits", &DataOptions::default(), 3, None).unwrap().dataset
}

fn small_scorer(data: &Dataset) -> Scorer {
    let config = MetricsConfig {
        repeats: 2,
        ntk_batch_size: 24,
        lrc_batch_size: 200,
        ..MetricsConfig::default()
    };
    Scorer::new(&data.train, config, 3, tch::Device::Cpu)
}

fn value(metric: &dyn NetworkMetric, genotype: &Genotype, probe: &Probe, repeat: usize) -> f64 {
    metric.measure(genotype, probe, repeat).unwrap()[0]
}

#[test]
fn naswot_synflow_zico_and_parameters_agree_with_pytorch() {
    let _turn = turn();
    let data = digits();
    let scorer = small_scorer(&data);
    let recipe = TrainConfig::default();
    let genotype = grown_genotype();
    let dir = scratch("metrics-pytorch");
    for (width, repeat) in [(None, 0), (Some(6), 1)] {
        let probe = Probe {
            scorer: &scorer,
            width,
            recipe: &recipe,
        };
        let folder = dir.join(format!("repeat{repeat}"));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("genotype.json"), genotype.to_json()).unwrap();
        let probe_width = width.unwrap_or(genotype.channels);
        std::fs::write(folder.join("probe.json"), format!(r#"{{"width": {probe_width}}}"#)).unwrap();
        let net = probe.network(&genotype, repeat);
        Tensor::write_safetensors(&net.named_tensors(), folder.join("weights.safetensors")).unwrap();
        let (images, labels) = probe.batches(repeat);
        let mut inputs = Vec::new();
        for (b, (batch, batch_labels)) in images.iter().zip(labels).enumerate() {
            inputs.push((format!("images.{b}"), batch.shallow_clone()));
            inputs.push((format!("labels.{b}"), batch_labels.shallow_clone()));
        }
        Tensor::write_safetensors(&inputs, folder.join("inputs.safetensors")).unwrap();

        let output = Command::new(python())
            .args(["-m", "spidernet_torch.proxies"])
            .arg(&folder)
            .env("PYTHONPATH", concat!(env!("CARGO_MANIFEST_DIR"), "/python"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let theirs: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let ours = |metric: &dyn NetworkMetric| value(metric, &genotype, &probe, repeat);
        let close = |name: &str, ours: f64, relative: f64| {
            let theirs = theirs[name].as_f64().unwrap();
            assert!(
                (ours - theirs).abs() <= relative * theirs.abs().max(1.0),
                "{name}, width {probe_width}: ours {ours}, PyTorch {theirs}"
            );
        };
        assert_eq!(ours(&zero_cost::Parameters), theirs["parameters"].as_f64().unwrap());
        close("naswot", ours(&zero_cost::Naswot), 1e-9);
        close("synflow", ours(&zero_cost::Synflow), 1e-9);
        // ZiCo divides by standard deviations of f32 gradients: rounding differences of the two libraries' kernels
        // move it in the sixth digit.
        close("zico", ours(&zero_cost::Zico), 1e-4);
        assert!(ours(&zero_cost::Naswot).is_finite() && ours(&zero_cost::Synflow) > 0.0);
    }
}

#[test]
fn the_ntk_and_region_metrics_are_what_the_scorer_measures_for_a_candidate() {
    let _turn = turn();
    let data = digits();
    let scorer = small_scorer(&data);
    let recipe = TrainConfig::default();
    let probe = Probe {
        scorer: &scorer,
        width: None,
        recipe: &recipe,
    };
    let genotype = grown_genotype();
    let edge = genotype.cells[0].edges[1].id;
    let report = scorer.score_candidate(&genotype, 0, edge).unwrap();
    let on = spidernet::metrics::candidate::Candidate::split(&genotype, 0, edge)
        .unwrap()
        .on;
    let metrics = zero_cost::metrics_for(&[MetricName::NtkSound, MetricName::Regions]);
    let on_values = zero_cost::measure(&metrics, &on, &probe).unwrap();
    let off_values = zero_cost::measure(&metrics, &genotype, &probe).unwrap();
    for (repeat, measured) in report.repeats.iter().enumerate() {
        assert_eq!(on_values[&MetricName::NtkSound][repeat], measured.ntk_on.sound);
        assert_eq!(on_values[&MetricName::NtkFaithful][repeat], measured.ntk_on.faithful);
        assert_eq!(off_values[&MetricName::NtkSound][repeat], measured.ntk_off.sound);
        assert_eq!(on_values[&MetricName::Regions][repeat], measured.lrc_on.regions as f64);
        assert_eq!(
            off_values[&MetricName::Regions][repeat],
            measured.lrc_off.regions as f64
        );
    }
    let signals = zero_cost::signals(&on_values, &off_values);
    assert!((signals[&MetricName::NtkSound] - report.r_ntk).abs() < 1e-12);
    assert!((signals[&MetricName::Regions] - report.r_lrc).abs() < 1e-12);
}

#[test]
fn time_per_image_grows_with_the_width() {
    let _turn = turn();
    let data = digits();
    let scorer = small_scorer(&data);
    let recipe = TrainConfig::default();
    let genotype = grown_genotype();
    let at = |width| {
        let probe = Probe {
            scorer: &scorer,
            width: Some(width),
            recipe: &recipe,
        };
        value(&zero_cost::TimePerImage, &genotype, &probe, 0)
    };
    let (narrow, wide) = (at(2), at(96));
    // 48× the channels: several times the work per image, far beyond the noise of a median of three steps.
    assert!(
        narrow > 0.0 && wide > 3.0 * narrow,
        "width 2: {narrow} s, width 96: {wide} s"
    );
}
