//! Train-free metrics: the NTK against closed forms and brute force, linear regions against hand counts,
//! and scoring on the embedded digits.

mod common;

use common::turn;
use proptest::prelude::*;
use spidernet::data::{DataSource, Digits};
use spidernet::genotype::{Genotype, InputShape};
use spidernet::metrics::candidate::Candidate;
use spidernet::metrics::lrc::{count_regions, sign_pattern};
use spidernet::metrics::ntk::{self, conditioning, gradient_rows};
use spidernet::metrics::replicas;
use spidernet::metrics::score::{MetricsConfig, Scorer};
use spidernet::nn::init::{Fan, InitScheme};
use spidernet::supernet::{Mode, Supernet};
use std::collections::HashSet;
use tch::{Device, Kind, Tensor};

const CPU: (Kind, Device) = (Kind::Double, Device::Cpu);

fn relative_error(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[]) / b.abs().max().double_value(&[]).max(1e-30)
}

#[test]
fn ntk_of_a_linear_layer_matches_its_closed_form() {
    let _turn = turn();
    // f(x) = W x + b with K outputs: ∂Σ_c f_c/∂W = 1 xᵀ and ∂Σ_c f_c/∂b = 1, so Θ_ij = K (x_i·x_j + 1).
    tch::manual_seed(0);
    let (k, d) = (4, 6);
    let weight = Tensor::randn([k, d], CPU).set_requires_grad(true);
    let bias = Tensor::randn([k], CPU).set_requires_grad(true);
    let batches = vec![Tensor::randn([5, d], CPU), Tensor::randn([3, d], CPU)];
    let forward = |x: &Tensor| x.linear(&weight, Some(&bias));
    let g = gradient_rows(forward, &[weight.shallow_clone(), bias.shallow_clone()], &batches)
        .unwrap()
        .to_kind(Kind::Double);
    let x = Tensor::cat(&batches, 0);
    let expected = (x.matmul(&x.tr()) + 1.0) * k as f64;
    let theta = g.matmul(&g.tr());
    assert!(relative_error(&theta, &expected) < 1e-6);

    // κ of the closed form, computed independently: eigenvalues of K(XXᵀ + 1), full rank here (8 samples, d = 6 + 1).
    let gram_eigen = Vec::<f64>::try_from(expected.linalg_eigvalsh("L")).unwrap();
    let rank = gram_eigen.iter().filter(|&&l| l > 1e-9 * gram_eigen[7]).count();
    assert_eq!(rank, d as usize + 1, "rank of K(XXᵀ+1) with 8 samples in 6 dimensions");
    let c = conditioning(&g, 1e-9).unwrap();
    assert_eq!(c.dropped, 8 - rank);
    let smallest = gram_eigen[8 - rank];
    assert!(
        (c.sound / (gram_eigen[7] / smallest) - 1.0).abs() < 1e-6,
        "{} vs {}",
        c.sound,
        gram_eigen[7] / smallest
    );
}

/// The NTK's width-3 network of the minimal genotype for digits.
fn thin_net(seed: u64) -> Supernet {
    let input = InputShape {
        channels: 1,
        height: 8,
        width: 8,
    };
    let genotype = Genotype::minimal(2, 16, input, 10).unwrap();
    let scheme = InitScheme::KaimingNormal(Fan::Out);
    Supernet::builder(&genotype).width(3).init(scheme, seed).build()
}

fn digit_batches(count: usize, size: i64) -> Vec<Tensor> {
    let data = Digits::default().load(0).unwrap();
    (0..count as i64)
        .map(|b| data.train.images.narrow(0, b * size, size))
        .collect()
}

#[test]
fn per_sample_gradients_through_train_mode_bn_equal_a_fresh_forward_per_sample() {
    let _turn = turn();
    let net = thin_net(1);
    let params = net.weight_tensors();
    let batch = digit_batches(1, 12).pop().unwrap();
    let forward = |x: &Tensor| net.forward(x, Mode::train(0.0)).pop().unwrap();
    let rows = gradient_rows(forward, &params, std::slice::from_ref(&batch)).unwrap();
    for n in 0..12 {
        let logits = forward(&batch);
        let target = logits.get(n).sum(Kind::Float);
        let grads = Tensor::run_backward(&[target], &params, false, false);
        let flat: Vec<Tensor> = grads
            .iter()
            .zip(&params)
            .map(|(g, p)| {
                if g.defined() {
                    g.flatten(0, -1)
                } else {
                    p.zeros_like().flatten(0, -1)
                }
            })
            .collect();
        let fresh = Tensor::cat(&flat, 0);
        assert!(relative_error(&rows.get(n), &fresh) < 1e-5, "sample {n}");
    }
}

#[test]
fn sound_kappa_drops_one_null_eigenvalue_per_batch_and_faithful_is_the_raw_f32_ratio() {
    let _turn = turn();
    let net = thin_net(2);
    let batches = digit_batches(3, 24);
    let forward = |x: &Tensor| net.forward(x, Mode::train(0.0)).pop().unwrap();
    let g = gradient_rows(forward, &net.weight_tensors(), &batches).unwrap();
    // Train-mode BN before the pooled head makes each batch's gradients sum to zero (docs/ALGORITHM.md §13.1).
    for b in 0..3 {
        let sum = g
            .narrow(0, b * 24, 24)
            .sum_dim_intlist([0i64].as_slice(), false, Kind::Double);
        let scale = g.narrow(0, b * 24, 24).abs().max().double_value(&[]);
        assert!(
            sum.abs().max().double_value(&[]) < 1e-4 * scale,
            "batch {b} gradients do not cancel"
        );
    }
    let c = conditioning(&g, 1e-9).unwrap();
    assert_eq!(c.dropped, 3);
    assert!(c.sound.is_finite() && c.sound > 1.0);
    let g32 = g.to_kind(Kind::Float);
    let eigen = g32.matmul(&g32.tr()).linalg_eigvalsh("U");
    let eigen = Vec::<f32>::try_from(eigen).unwrap();
    let raw = eigen[eigen.len() - 1] / eigen[0];
    let expected = if raw.is_nan() {
        ntk::FAITHFUL_NAN_VALUE
    } else {
        raw as f64
    };
    assert_eq!(c.faithful, expected);
    assert!(
        c.faithful.abs() > 100.0 * c.sound,
        "the faithful κ is dominated by the null space"
    );
}

#[test]
fn linear_regions_of_a_tiny_network_match_a_hand_count() {
    let _turn = turn();
    // relu(x − t) for t ∈ {−1, 0, 1} on a line cuts it into 4 intervals: 4 patterns.
    let x = Tensor::linspace(-2.0, 2.0, 41, CPU).view([41, 1]) + 0.013;
    let thresholds = Tensor::from_slice(&[-1.0f64, 0.0, 1.0]).view([1, 3]);
    let hidden = (&x - &thresholds).relu();
    let count = count_regions(&[sign_pattern(&[hidden.shallow_clone()], hidden.size()[0] as usize)]);
    assert_eq!((count.regions, count.samples, count.features), (4, 41, 3));
    assert!(!count.saturated());
    // Two independent units on a 2-D grid: 4 quadrants; split over two batches, patterns are pooled.
    let grid = Tensor::randn([200, 2], CPU);
    let quadrants = count_regions(&[
        sign_pattern(&[grid.narrow(0, 0, 3).relu()], 3),
        sign_pattern(&[grid.relu()], grid.size()[0] as usize),
    ]);
    assert_eq!((quadrants.regions, quadrants.samples), (4, 203));
    let unique = count_regions(&[sign_pattern(&[x.narrow(0, 0, 1)], 1)]);
    assert!(unique.saturated());
    // Without ReLUs (no live sep-conv) every sample shares the empty pattern.
    let linear = count_regions(&[sign_pattern(&[], 5), sign_pattern(&[], 2)]);
    assert_eq!((linear.regions, linear.samples, linear.features), (1, 7, 0));
}

proptest! {
    #[test]
    fn distinct_pattern_count_equals_brute_force(rows in 1usize..120, features in 1usize..140, density in 0.05f64..0.95, seed in 0u64..1000) {
        tch::manual_seed(seed as i64);
        let bits = Tensor::rand([rows as i64, features as i64], CPU).lt(density);
        let values = Vec::<u8>::try_from(bits.to_kind(Kind::Uint8).flatten(0, -1)).unwrap();
        let brute: HashSet<&[u8]> = values.chunks(features).collect();
        // Few features force repeats; many make every row unique.
        let half = (rows / 2) as i64;
        let counted = count_regions(&[bits.narrow(0, 0, half), bits.narrow(0, half, rows as i64 - half)]);
        prop_assert_eq!(counted.regions, brute.len());
        prop_assert_eq!(counted.samples, rows);
    }
}

#[test]
fn scoring_on_digits_reports_every_edge_accepts_some_and_is_reproducible() {
    let _turn = turn();
    let data = Digits::default().load(0).unwrap();
    let genotype = Genotype::minimal(2, 16, data.shape, data.classes).unwrap();
    // Fewer and smaller NTK batches than the reference keep this test quick; the procedure is the same.
    let config = MetricsConfig {
        repeats: 2,
        ntk_batches: 2,
        ntk_batch_size: 16,
        ..MetricsConfig::default()
    };
    let scorer = Scorer::new(&data.train, config.clone(), 0, Device::Cpu);
    let mut reports = Vec::new();
    for (k, cell) in genotype.cells.iter().enumerate() {
        for edge in &cell.edges {
            let report = scorer.score_candidate(&genotype, k, edge.id).unwrap();
            assert_eq!((report.from, report.to), (edge.from, edge.to));
            assert_eq!(report.repeats.len(), 2);
            for repeat in &report.repeats {
                assert_eq!(repeat.ntk_on.dropped, 2, "one null eigenvalue per NTK batch");
                assert_eq!(repeat.lrc_on.samples, 3000);
                assert!(repeat.lrc_on.features > repeat.lrc_off.features, "the split adds ReLUs");
            }
            let passes = report.r_lrc > 0.0 && report.r_ntk <= 0.0 && report.r_ntk.is_finite();
            assert_eq!(report.accepted(), passes, "{:?}", report.rejection);
            reports.push(report);
        }
    }
    assert_eq!(reports.len(), 9);
    assert!(reports.iter().any(|r| r.accepted()), "no candidate accepted");

    let decide = |scorer: &Scorer| scorer.decide(&genotype, 2, 0, &mut |_| Ok(())).unwrap();
    let first = decide(&scorer);
    let again = decide(&Scorer::new(&data.train, config, 0, Device::Cpu));
    let outcome = |d: &spidernet::metrics::CellDecision| {
        let tried: Vec<_> = d
            .tried
            .iter()
            .map(|r| (r.edge, r.r_ntk, r.r_lrc, r.accepted(), r.score))
            .collect();
        (tried, d.chosen)
    };
    assert_eq!(outcome(&first), outcome(&again));
    for tried in &first.tried {
        let alone = reports.iter().find(|r| r.cell == 2 && r.edge == tried.edge).unwrap();
        assert_eq!(
            (alone.r_ntk, alone.r_lrc),
            (tried.r_ntk, tried.r_lrc),
            "a candidate's score must not depend on order"
        );
    }
    if let Some(chosen) = first.chosen {
        let winner = first.tried.iter().find(|r| r.edge == chosen).unwrap();
        assert!(winner.accepted());
        let best = first.tried.iter().filter_map(|r| r.score).fold(f64::INFINITY, f64::min);
        assert_eq!(winner.score, Some(best));
    }
}

/// Θ = G·Gᵀ in f64.
fn kernel(rows: &Tensor) -> Tensor {
    let g = rows.to_kind(Kind::Double);
    g.matmul(&g.tr())
}

/// A thin NTK network of the minimal digits genotype with its first cell-1 edge split, with the candidate and the
/// unsplit genotype.
fn split_thin_net() -> (Supernet, Candidate, Genotype) {
    let parent = thin_net(0).genotype().clone();
    let edge = parent.cells[1].edges[0].id;
    let candidate = Candidate::split(&parent, 1, edge).unwrap();
    let mut net = candidate.network(3, InitScheme::KaimingNormal(Fan::Out), None, Device::Cpu);
    net.reset_parameters_by_name(InitScheme::KaimingNormal(Fan::Out), 7);
    (net, candidate, parent)
}

#[test]
fn replicated_gradients_give_the_kernel_of_one_backward_per_sample() {
    let _turn = turn();
    let (net, ..) = split_thin_net();
    // A closed gate still passes its straight-through gradient.
    let gate = net.pruner_weights()[4].shallow_clone();
    tch::no_grad(|| {
        let _ = gate.shallow_clone().fill_(-0.02);
    });
    let batches = digit_batches(2, 10);
    let forward = |x: &Tensor| net.forward(x, Mode::train(0.0)).pop().unwrap();
    let reference = kernel(&gradient_rows(forward, &net.weight_tensors(), &batches).unwrap());
    for (copies, channels_last) in [(1, false), (3, false), (4, true), (10, true)] {
        let rows = replicas::gradient_rows(&net, &batches, Mode::train(0.0), copies, channels_last).unwrap();
        assert_eq!(rows.size()[0], 20);
        let error = relative_error(&kernel(&rows), &reference);
        assert!(
            error < 1e-5,
            "{copies} copies, channels-last {channels_last}: relative error {error}"
        );
    }
    // The replicated pass leaves the network's own gradients and statistics untouched.
    assert!(
        net.weight_tensors()
            .iter()
            .all(|w| !w.grad().defined() || w.grad().abs().max().double_value(&[]) == 0.0)
    );
}

#[test]
fn a_candidate_is_the_unsplit_network_with_the_same_weights_plus_the_split() {
    let _turn = turn();
    let (on, candidate, parent) = split_thin_net();
    let mut unsplit = Supernet::builder(&parent)
        .width(3)
        .init(InitScheme::KaimingNormal(Fan::Out), 99)
        .build();
    unsplit.reset_parameters_by_name(InitScheme::KaimingNormal(Fan::Out), 7);
    // Every conv and linear weight the two share by name has the same values.
    let theirs: std::collections::HashMap<String, Tensor> = on.named_tensors().into_iter().collect();
    let mut shared = 0;
    for (name, tensor) in unsplit.named_tensors() {
        if name.ends_with("conv.weight") || name.contains("wise.weight") || name.starts_with("towers.") {
            assert!(tensor.equal(&theirs[&name]), "{name} differs");
            shared += 1;
        }
    }
    assert!(shared > 20, "only {shared} tensors compared");
    // The split's kernel differs from the unsplit network's, the "off" side every candidate of the cell shares.
    let batches = digit_batches(1, 12);
    let on_kernel = kernel(&replicas::gradient_rows(&on, &batches, Mode::train(0.0), 4, true).unwrap());
    let off_kernel = kernel(&replicas::gradient_rows(&unsplit, &batches, Mode::train(0.0), 4, true).unwrap());
    assert!(relative_error(&on_kernel, &off_kernel) > 1e-3);
    // With the two new edges' gates closed, the split computes exactly the unsplit network's logits.
    let x = &batches[0];
    let expected = unsplit.forward(x, Mode::train(0.0)).pop().unwrap();
    assert!(!on.forward(x, Mode::train(0.0)).pop().unwrap().equal(&expected));
    for edge in candidate.new_edges {
        for &op in &candidate.on.cells[1].edge(edge).unwrap().ops {
            let gate = on.gate_weight(1, edge, op).unwrap();
            tch::no_grad(|| {
                let _ = gate.shallow_clone().fill_(-0.01);
            });
        }
    }
    assert!(on.forward(x, Mode::train(0.0)).pop().unwrap().equal(&expected));
}
