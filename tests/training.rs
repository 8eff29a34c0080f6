//! Training the supernet on the embedded digits: accuracy, reproducibility and deadheading.

mod common;

use common::turn;
use spidernet::data::{DataSource, Dataset, Digits};
use spidernet::genotype::{Genotype, Op};
use spidernet::nn::optim::Sgd;
use spidernet::nn::pruner::PrunerConfig;
use spidernet::supernet::{Mode, Supernet};
use spidernet::system::native::SgdSettings;
use spidernet::train::{self, EpochReport, Silent, TrainConfig, TrainObserver};
use std::collections::HashMap;
use tch::nn::OptimizerConfig;
use tch::{Device, Tensor};

fn supernet(data: &Dataset, reductions: usize, channels: usize, seed: u64, pruner: PrunerConfig) -> Supernet {
    let genotype = Genotype::minimal(reductions, channels, data.shape, data.classes).unwrap();
    Supernet::builder(&genotype)
        .width(channels)
        .seed(seed)
        .pruner(pruner)
        .build()
}

fn run(reductions: usize, channels: usize, epochs: usize, seed: u64) -> (Vec<EpochReport>, Supernet) {
    let data = Digits::default().load(seed).unwrap();
    let mut net = supernet(&data, reductions, channels, seed, PrunerConfig::default());
    let config = TrainConfig {
        epochs,
        ..TrainConfig::default()
    };
    let reports = train::train_on(&mut net, &data, &config, seed, &mut Silent).unwrap();
    (reports, net)
}

#[test]
fn minimal_supernet_reaches_95_percent_on_digits_within_20_epochs() {
    let _turn = turn();
    /// Ends the training at the first epoch with 95 % on the test split.
    struct UntilTarget(f64);
    impl TrainObserver for UntilTarget {
        fn epoch(&mut self, report: &EpochReport) {
            self.0 = report.eval.map_or(0.0, |e| e.accuracy);
        }
        fn should_stop(&mut self) -> bool {
            self.0 >= 0.95
        }
    }
    let data = Digits::default().load(0).unwrap();
    let mut net = supernet(&data, 2, 16, 0, PrunerConfig::default());
    let config = TrainConfig {
        epochs: 20,
        ..TrainConfig::default()
    };
    let reports = train::train_on(&mut net, &data, &config, 0, &mut UntilTarget(0.0)).unwrap();
    let last = reports.last().unwrap();
    assert!(
        last.eval.unwrap().accuracy >= 0.95,
        "test accuracy {:.2}% after 20 epochs",
        100.0 * last.eval.unwrap().accuracy
    );
    assert!(reports[0].train_loss > last.train_loss, "training must reduce the loss");
}

#[test]
fn same_seed_gives_identical_losses_and_another_seed_does_not() {
    let _turn = turn();
    let losses = |seed| {
        let (reports, _) = run(1, 4, 2, seed);
        reports
            .iter()
            .map(|r| (r.train_loss, r.eval.unwrap().loss))
            .collect::<Vec<_>>()
    };
    let first = losses(5);
    assert_eq!(first, losses(5));
    assert_ne!(first, losses(6));
}

#[test]
fn deadheading_shrinks_genotype_parameters_and_forward_pass_consistently() {
    let _turn = turn();
    let data = Digits::default().load(0).unwrap();
    // A two-epoch window lets the deadhead rule act within a short test.
    let pruner = PrunerConfig {
        window_epochs: 2,
        ..PrunerConfig::default()
    };
    let mut net = supernet(&data, 1, 8, 0, pruner);
    let initial_ops = net.genotype().live_op_count();
    let initial_params = net.parameter_count();
    let mut gates: HashMap<(usize, u32, Op), Tensor> = HashMap::new();
    for (k, cell) in net.genotype().cells.iter().enumerate() {
        for edge in &cell.edges {
            for &op in &edge.ops {
                gates.insert((k, edge.id, op), net.gate_weight(k, edge.id, op).unwrap());
            }
        }
    }
    let config = TrainConfig {
        epochs: 6,
        ..TrainConfig::default()
    };
    let reports = train::train_on(&mut net, &data, &config, 0, &mut Silent).unwrap();
    let killed: Vec<_> = reports.iter().flat_map(|r| r.deadhead.killed.clone()).collect();
    assert!(!killed.is_empty(), "some gates must close for good within 6 epochs");

    // The genotype lost the killed ops, and the network holds exactly the genotype's live ops.
    let genotype = net.genotype().clone();
    genotype.check().unwrap();
    assert!(genotype.live_op_count() <= initial_ops - killed.len());
    for op in &killed {
        let edge = genotype.cells[op.cell].edge(op.edge);
        assert!(edge.is_none_or(|e| !e.has_op(op.op)), "{op:?} still in the genotype");
    }
    assert_eq!(net.pruner_weights().len(), genotype.live_op_count());

    // Parameters shrink by exactly what the architecture says.
    assert!(net.parameter_count() < initial_params);
    assert_eq!(net.parameter_count(), genotype.at_width(8).parameter_count());
    assert_eq!(reports.last().unwrap().parameters, net.parameter_count());

    // The variable store holds exactly the tensors a fresh network of the new genotype has, by name and shape:
    // loading refuses a missing, foreign or misshapen tensor.
    let mut fresh = Supernet::builder(&genotype).width(8).build();
    fresh.load_named_tensors(net.named_tensors()).unwrap();

    // The forward pass no longer computes dead ops: their gates get no gradient; every live gate does.
    for (_, tensor) in net.var_store().variables() {
        let mut tensor = tensor;
        tensor.zero_grad();
    }
    let (images, labels) = spidernet::data::Batches::in_order(&data.train, 64, Device::Cpu)
        .next()
        .unwrap();
    let logits = net.forward(&images, Mode::train(0.0));
    Supernet::loss(&logits, &labels, 0.4, 0.0).backward();
    for op in &killed {
        let gate = &gates[&(op.cell, op.edge, op.op)];
        assert!(!gate.requires_grad(), "{op:?} must be frozen");
        let grad = gate.grad();
        assert!(
            !grad.defined() || grad.abs().sum(tch::Kind::Float).double_value(&[]) == 0.0,
            "{op:?} was computed"
        );
    }
    for weight in net.pruner_weights() {
        assert!(
            weight.grad().abs().double_value(&[]) > 0.0,
            "a live gate got no gradient"
        );
    }
}

#[test]
fn our_sgd_is_bitwise_libtorchs_and_resumes_from_its_saved_momentum() {
    let _turn = turn();
    sgd_is_bitwise_libtorchs(false);
}

#[test]
fn our_nesterov_sgd_is_bitwise_libtorchs_and_resumes_from_its_saved_momentum() {
    let _turn = turn();
    sgd_is_bitwise_libtorchs(true);
}

fn sgd_is_bitwise_libtorchs(nesterov: bool) {
    let data = Digits::default().load(0).unwrap();
    let batches: Vec<(Tensor, Tensor)> = spidernet::data::Batches::in_order(&data.train, 32, Device::Cpu)
        .take(4)
        .collect();
    let config = TrainConfig::default();
    let settings = SgdSettings {
        lr: 0.05,
        momentum: config.momentum,
        weight_decay: config.weight_decay,
        nesterov,
    };
    let loss =
        |net: &Supernet, (x, y): &(Tensor, Tensor)| Supernet::loss(&net.forward(x, Mode::train(0.0)), y, 0.4, 0.0);
    let copies = |net: &Supernet| -> Vec<(String, Tensor)> {
        net.named_tensors().into_iter().map(|(n, t)| (n, t.copy())).collect()
    };

    // libtorch's SGD through tch, and ours, from the same weights on the same batches.
    let theirs = supernet(&data, 1, 4, 3, PrunerConfig::default());
    let mut reference = tch::nn::Sgd {
        momentum: settings.momentum,
        dampening: 0.0,
        wd: settings.weight_decay,
        nesterov,
    }
    .build(theirs.var_store(), settings.lr)
    .unwrap();
    let ours = supernet(&data, 1, 4, 3, PrunerConfig::default());
    let mut sgd = Sgd::new(ours.parameters(), settings);
    let mut saved = None;
    for (k, batch) in batches.iter().enumerate() {
        reference.zero_grad();
        loss(&theirs, batch).backward();
        reference.step();
        sgd.zero_grad();
        loss(&ours, batch).backward();
        sgd.step().unwrap();
        if k == 1 {
            saved = Some((
                copies(&ours),
                sgd.momentum_buffers(ours.named_tensors())
                    .into_iter()
                    .map(|(n, b)| (n, b.copy()))
                    .collect(),
            ));
        }
    }
    for ((name, a), (_, b)) in theirs.named_tensors().iter().zip(ours.named_tensors()) {
        assert!(a.equal(&b), "{name} differs from libtorch's SGD");
    }
    let untrained = supernet(&data, 1, 4, 3, PrunerConfig::default());
    let moved = |net: &Supernet| {
        net.named_tensors()
            .iter()
            .zip(untrained.named_tensors())
            .any(|((_, a), (_, b))| !a.equal(&b))
    };
    assert!(moved(&ours), "four steps must change the weights");

    // A network restored from the weights and momentum after step 2 ends bitwise where the uninterrupted one did.
    let (weights, momentum) = saved.unwrap();
    let mut resumed = supernet(&data, 1, 4, 99, PrunerConfig::default());
    resumed.load_named_tensors(weights).unwrap();
    let mut sgd = Sgd::new(resumed.parameters(), settings);
    sgd.load_momentum_buffers(resumed.named_tensors(), momentum).unwrap();
    for batch in &batches[2..] {
        sgd.zero_grad();
        loss(&resumed, batch).backward();
        sgd.step().unwrap();
    }
    for ((name, a), (_, b)) in ours.named_tensors().iter().zip(resumed.named_tensors()) {
        assert!(a.equal(&b), "{name} differs after resuming");
    }
    let foreign = vec![(
        "cells.9.nodes.0.bn.weight".to_string(),
        Tensor::zeros([4], tch::kind::FLOAT_CPU),
    )];
    let error = sgd.load_momentum_buffers(resumed.named_tensors(), foreign).unwrap_err();
    assert!(error.to_string().contains("cells.9.nodes.0.bn.weight"), "{error}");
}

/// Logits of the final head for `images` as one batch, normalised by the batch's own statistics; the running
/// statistics are left as they were.
fn batch_statistics_logits(net: &Supernet, images: &Tensor) -> Tensor {
    tch::no_grad(|| {
        let saved: Vec<(Tensor, Tensor)> = net.buffers().into_iter().map(|b| (b.copy(), b)).collect();
        let logits = net.forward(images, Mode::train(0.0)).pop().unwrap();
        for (copy, mut buffer) in saved {
            buffer.copy_(&copy);
        }
        logits
    })
}

/// The largest |a − b|, relative to the largest |b|.
fn relative_gap(a: &Tensor, b: &Tensor) -> f64 {
    let gap = (a - b).abs().max().double_value(&[]);
    gap / b.abs().max().double_value(&[])
}

#[test]
fn recalibrated_batch_norms_evaluate_as_the_batch_statistics_of_the_network_as_it_ends() {
    let _turn = turn();
    let data = Digits::default().load(0).unwrap();
    let mut net = supernet(&data, 1, 8, 0, PrunerConfig::default());
    // Every training image in one batch: the recomputed running statistics are that batch's statistics.
    let everything = data.train.len();
    let config = TrainConfig {
        epochs: 2,
        bn_recalibration: everything,
        eval_batch_size: everything,
        ..TrainConfig::default()
    };
    train::train_on(&mut net, &data, &config, 0, &mut Silent).unwrap();
    let images = &data.train.images;
    let evaluated = tch::no_grad(|| net.forward(images, Mode::eval()).pop().unwrap());
    let ended = relative_gap(&evaluated, &batch_statistics_logits(&net, images));
    assert!(
        ended < 1e-3,
        "after training, evaluation and batch statistics differ by {ended}"
    );

    // A gate that closes at the last step leaves running statistics that averaged the open op behind.
    let (gate, op) = open_gates(&net)
        .into_iter()
        .find(|(_, op)| *op == Op::SepConv3x3)
        .expect("an open sep-conv 3×3");
    tch::no_grad(|| {
        let _ = gate.shallow_clone().fill_(-1.0);
    });
    let flipped = batch_statistics_logits(&net, images);
    let stale = relative_gap(
        &tch::no_grad(|| net.forward(images, Mode::eval()).pop().unwrap()),
        &flipped,
    );
    let seen = train::recalibrate_batch_norms(&net, &data.train, &config, 0, 1);
    assert_eq!(seen, everything);
    let recalibrated = relative_gap(
        &tch::no_grad(|| net.forward(images, Mode::eval()).pop().unwrap()),
        &flipped,
    );
    assert!(
        recalibrated < 1e-3,
        "recalibrated statistics differ from the batch's by {recalibrated}"
    );
    assert!(
        stale > 20.0 * recalibrated.max(1e-5),
        "closing {op:?} left stale statistics only {stale} apart"
    );
}

/// Every open gate weight of the network, with its op.
fn open_gates(net: &Supernet) -> Vec<(Tensor, Op)> {
    let mut open = Vec::new();
    for (k, cell) in net.genotype().cells.iter().enumerate() {
        for edge in &cell.edges {
            for &op in &edge.ops {
                let gate = net.gate_weight(k, edge.id, op).unwrap();
                if gate.double_value(&[]) > 0.0 {
                    open.push((gate, op));
                }
            }
        }
    }
    open
}

#[test]
fn frozen_gates_hold_their_values_through_the_last_epochs_while_the_weights_train() {
    let _turn = turn();
    let data = Digits::default().load(0).unwrap();
    let gate_values =
        |net: &Supernet| -> Vec<f64> { net.pruner_weights().iter().map(|w| w.double_value(&[])).collect() };
    let other_weights = |net: &Supernet| -> Vec<Vec<f32>> {
        let tensors = net
            .named_tensors()
            .into_iter()
            .filter(|(name, _)| !name.ends_with("gate"));
        tensors
            .map(|(_, t)| Vec::<f32>::try_from(t.flatten(0, -1)).unwrap())
            .collect()
    };
    let trained = |epochs: usize, freeze_gates_epochs: usize| {
        let mut net = supernet(&data, 1, 8, 0, PrunerConfig::default());
        let config = TrainConfig {
            epochs,
            freeze_gates_epochs,
            deadhead: false,
            ..TrainConfig::default()
        };
        train::train_on(&mut net, &data, &config, 0, &mut Silent).unwrap();
        net
    };
    // The reference schedule holds lr_max through the first epoch whatever the epochs, so the first epoch of a
    // two-epoch run is a one-epoch run.
    let after_first = trained(1, 0);
    let free = trained(2, 0);
    let frozen_last = trained(2, 1);
    assert_eq!(
        gate_values(&frozen_last),
        gate_values(&after_first),
        "the frozen last epoch left every gate where the first epoch put it"
    );
    assert_ne!(gate_values(&free), gate_values(&after_first), "free gates train on");
    assert_ne!(
        other_weights(&frozen_last),
        other_weights(&after_first),
        "the other weights train through the frozen epoch"
    );
    let untrained = supernet(&data, 1, 8, 0, PrunerConfig::default());
    assert_eq!(
        gate_values(&trained(2, 2)),
        gate_values(&untrained),
        "every epoch frozen"
    );
}

#[test]
fn epochs_of_fewer_images_than_the_split_train_that_many_batches_and_too_few_for_a_batch_are_refused() {
    let _turn = turn();
    /// The batch count each batch call gave, per epoch.
    struct Counted(Vec<(usize, usize, usize)>);
    impl TrainObserver for Counted {
        fn batch(&mut self, epoch: usize, batch: usize, batches: usize, _loss: f64) {
            self.0.push((epoch, batch, batches));
        }
    }
    let data = Digits::default().load(0).unwrap();
    let mut net = supernet(&data, 1, 4, 0, PrunerConfig::default());
    let config = TrainConfig {
        epochs: 2,
        epoch_images: Some(650),
        ..TrainConfig::default()
    };
    let mut counted = Counted(Vec::new());
    let reports = train::train_on(&mut net, &data, &config, 0, &mut counted).unwrap();
    assert_eq!(reports.len(), 2);
    // 650 images in batches of 64: 10 whole batches per epoch, not the split's own count.
    assert!(data.train.len() / 64 > 10);
    let expected: Vec<_> = (1..=2)
        .flat_map(|epoch| (1..=10).map(move |b| (epoch, b, 10)))
        .collect();
    assert_eq!(counted.0, expected);

    let mut net = supernet(&data, 1, 4, 0, PrunerConfig::default());
    let too_few = TrainConfig {
        epoch_images: Some(40),
        ..config
    };
    let error = train::train_on(&mut net, &data, &too_few, 0, &mut Silent)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("an epoch trains on 40") && error.contains("fewer than one batch of 64"),
        "{error}"
    );
}
