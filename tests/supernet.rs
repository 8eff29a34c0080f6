//! Behaviour of the ops, the gate and the supernet built from a genotype.

use spidernet::genotype::{Genotype, InputShape, Op};
use spidernet::nn::blocks::batch_norm;
use spidernet::nn::init::InitScheme;
use spidernet::nn::ops::OpBlock;
use spidernet::nn::pruner;
use spidernet::supernet::{Mode, Supernet};
use tch::{Device, Kind, Tensor, nn, nn::ModuleT};

fn shape(channels: usize, height: usize, width: usize) -> InputShape {
    InputShape {
        channels,
        height,
        width,
    }
}

fn net(reductions: usize, width: usize, input: InputShape) -> Supernet {
    let genotype = Genotype::minimal(reductions, width, input, 10).unwrap();
    Supernet::builder(&genotype).width(width).seed(7).build()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn every_op_keeps_channels_and_halves_with_ceil_under_stride_two() {
    let vs = nn::VarStore::new(Device::Cpu);
    for (h, w) in [(8, 8), (7, 9)] {
        let x = Tensor::randn([2, 4, h, w], (Kind::Float, Device::Cpu));
        for op in Op::ALL {
            for stride in [1, 2] {
                let owner = format!("{}_{stride}_{h}", op.name());
                let block = OpBlock::new(&(vs.root() / &owner), op, 4, stride);
                let y = block.forward_t(&x, true);
                let expect = if stride == 1 {
                    [2, 4, h, w]
                } else {
                    [2, 4, (h + 1) / 2, (w + 1) / 2]
                };
                assert_eq!(y.size(), expect, "{} stride {stride} on {h}x{w}", op.name());
                let params: i64 = vs
                    .variables()
                    .into_iter()
                    .filter(|(name, t)| name.starts_with(&format!("{owner}.")) && t.requires_grad())
                    .map(|(_, t)| t.numel() as i64)
                    .sum();
                assert_eq!(params as usize, op.parameter_count(4), "{}", op.name());
            }
        }
    }
}

#[test]
fn pooling_and_identity_follow_pytorch_semantics() {
    let vs = nn::VarStore::new(Device::Cpu);
    let x = Tensor::arange(16, (Kind::Float, Device::Cpu)).view([1, 1, 4, 4]) + 1.0;
    let avg = OpBlock::new(&(vs.root() / "a"), Op::AvgPool3x3, 1, 1).forward_t(&x, true);
    // The corner averages 4 real values over 9 cells: padding counts.
    let corner = (1.0 + 2.0 + 5.0 + 6.0) / 9.0;
    assert!((avg.double_value(&[0, 0, 0, 0]) - corner).abs() < 1e-6);
    let negative = -&x;
    let max = OpBlock::new(&(vs.root() / "m"), Op::MaxPool3x3, 1, 1).forward_t(&negative, true);
    // Max-pool pads with −∞, so a corner of all-negative input is its own largest neighbour.
    assert_eq!(max.double_value(&[0, 0, 0, 0]), -1.0);
    let id = OpBlock::new(&(vs.root() / "i"), Op::Identity, 1, 2).forward_t(&x, true);
    let expected = Tensor::from_slice(&[1.0f32, 3.0, 9.0, 11.0]).view([1, 1, 2, 2]);
    assert!(id.equal(&expected));
}

#[test]
fn batch_norm_follows_pytorch_train_and_eval_semantics() {
    let vs = nn::VarStore::new(Device::Cpu);
    let bn = batch_norm(vs.root() / "bn", 3);
    tch::manual_seed(1);
    let x = Tensor::randn([4, 3, 5, 5], (Kind::Float, Device::Cpu)) * 2.0 + 0.5;
    let y = bn.forward_t(&x, true);
    let dims = [0i64, 2, 3];
    let mean = x.mean_dim(dims.as_slice(), true, Kind::Float);
    let biased = x.var_correction(dims.as_slice(), 0, true);
    let expected = (&x - &mean) / (&biased + 1e-5).sqrt();
    assert!(max_abs_diff(&y, &expected) < 1e-5);
    let unbiased = x.var_correction(dims.as_slice(), 1, false);
    let running_mean = mean.flatten(0, -1) * 0.1;
    let running_var = unbiased * 0.1 + 0.9;
    assert!(max_abs_diff(&bn.running_mean, &running_mean) < 1e-6);
    assert!(max_abs_diff(&bn.running_var, &running_var) < 1e-6);
    let eval = bn.forward_t(&x, false);
    let expected = (&x - running_mean.view([1, 3, 1, 1])) / (running_var.view([1, 3, 1, 1]) + 1e-5).sqrt();
    assert!(max_abs_diff(&eval, &expected) < 1e-5);
}

#[test]
fn straight_through_gradient_matches_a_finite_difference_of_the_op_scale() {
    // L(s) = downstream(s · op(x)); the gate's gradient must equal dL/ds at s = gate value, open or closed.
    tch::manual_seed(3);
    let vs = nn::VarStore::new(Device::Cpu);
    let block = OpBlock::new(&(vs.root() / "op"), Op::SepConv3x3, 4, 1);
    let head = nn::linear(vs.root() / "head", 4, 3, Default::default());
    let x = Tensor::randn([6, 4, 5, 5], (Kind::Float, Device::Cpu));
    let labels = Tensor::from_slice(&[0i64, 1, 2, 0, 1, 2]);
    let op_output = block.forward_t(&x, true).detach().to_kind(Kind::Double);
    let other_input = Tensor::randn([6, 4, 5, 5], (Kind::Double, Device::Cpu));
    let downstream = |y: &Tensor| -> Tensor {
        let y = (y + &other_input)
            .batch_norm(
                None::<Tensor>,
                None::<Tensor>,
                None::<Tensor>,
                None::<Tensor>,
                true,
                0.1,
                1e-5,
                false,
            )
            .relu();
        let pooled = y.mean_dim([2i64, 3].as_slice(), false, Kind::Double);
        let logits = pooled.linear(
            &head.ws.to_kind(Kind::Double),
            head.bs.as_ref().map(|b| b.to_kind(Kind::Double)),
        );
        logits.log_softmax(-1, Kind::Double).nll_loss(&labels)
    };
    for (w, s) in [(0.02, 1.0), (-0.02, 0.0)] {
        let weight = Tensor::from_slice(&[w]).view([]).set_requires_grad(true);
        downstream(&pruner::gate(&weight, &op_output)).backward();
        let analytic = weight.grad().double_value(&[]);
        let h = 1e-5;
        let value = |scale: f64| tch::no_grad(|| downstream(&(&op_output * scale)).double_value(&[]));
        let numeric = (value(s + h) - value(s - h)) / (2.0 * h);
        assert!(analytic.abs() > 1e-4, "gradient should not vanish: {analytic}");
        assert!(
            (analytic - numeric).abs() <= 1e-6 * analytic.abs().max(1.0),
            "w = {w}: analytic {analytic} vs numeric {numeric}"
        );
    }
}

#[test]
fn supernet_builds_heads_for_every_cell_on_odd_resolutions() {
    for (input, reductions) in [(shape(1, 8, 8), 2), (shape(3, 12, 10), 3), (shape(1, 28, 28), 2)] {
        let net = net(reductions, 4, input);
        let x = Tensor::randn(
            [3, input.channels as i64, input.height as i64, input.width as i64],
            tch::kind::FLOAT_CPU,
        );
        let logits = net.forward(&x, Mode::train(0.2));
        assert_eq!(logits.len(), reductions + 1);
        for head in &logits {
            assert_eq!(head.size(), [3, 10]);
        }
        assert_eq!(net.parameter_count(), net.genotype().at_width(4).parameter_count());
    }
}

#[test]
fn initial_network_matches_the_reference_parameter_count() {
    // The published network, R=2, C=64 on 3×32×32, after its first split (one edge of cell 0), has 2,250,283
    // parameters by the published code's own log.
    let mut genotype = Genotype::minimal(2, 64, shape(3, 32, 32), 10).unwrap();
    let first = genotype.cells[0].edges[0].id;
    genotype.cells[0].split(first).unwrap();
    assert_eq!(genotype.at_width(64).parameter_count(), 2_250_283);
    let net = Supernet::builder(&genotype).width(64).seed(7).build();
    assert_eq!(net.parameter_count(), 2_250_283);
}

#[test]
fn default_init_is_pytorchs_not_tchs() {
    let net = net(1, 8, shape(1, 8, 8));
    let store = net.var_store();
    for (name, tensor) in store.variables() {
        if name.ends_with(".gate") {
            assert!((tensor.double_value(&[]) - 0.01).abs() < 1e-9, "{name}");
        } else if name.ends_with("bn.weight") || name.contains(".node") && name.ends_with(".weight") {
            assert_eq!(tensor.min().double_value(&[]), 1.0, "{name}: γ must start at 1");
            assert_eq!(tensor.max().double_value(&[]), 1.0, "{name}: γ must start at 1");
        } else if name.ends_with("bn.bias") {
            assert_eq!(tensor.abs().max().double_value(&[]), 0.0, "{name}: β must start at 0");
        } else if name.ends_with(".weight") && tensor.dim() == 4 {
            let (fan_in, _) = spidernet::nn::init::fans(&tensor);
            let bound = 1.0 / fan_in.sqrt();
            assert!(
                tensor.abs().max().double_value(&[]) <= bound + 1e-7,
                "{name}: beyond 1/sqrt(fan_in)"
            );
            // U(±b) has standard deviation b/√3; tch's Kaiming-uniform default would be √6 times wider, zeros 0.
            let count = tensor.numel();
            if count >= 64 {
                let std = tensor.std(true).double_value(&[]);
                let expected = bound / 3f64.sqrt();
                assert!(
                    (std - expected).abs() < 0.3 * expected,
                    "{name}: std {std} against {expected} of U(±{bound})"
                );
            } else {
                assert!(
                    tensor.abs().max().double_value(&[]) > 0.2 * bound,
                    "{name}: nearly all zero"
                );
            }
        }
    }
}

#[test]
fn closing_every_gate_of_an_edge_computes_the_network_without_it() {
    // Cell 1's edges 0→2 and 1→2 both feed node 2: with every gate of edge 0→2 closed, the network computes what
    // the genotype without that edge computes with the same weights by name.
    let mut net = net(2, 4, shape(1, 8, 8));
    net.reset_parameters_by_name(InitScheme::PytorchDefault, 7);
    let edge = net.genotype().cells[1]
        .edges
        .iter()
        .find(|e| e.from == 0)
        .unwrap()
        .clone();
    let mut pruned = net.genotype().clone();
    for &op in &edge.ops {
        pruned.cells[1].kill_op(edge.id, op).unwrap();
    }
    assert!(pruned.cells[1].edge(edge.id).is_none());
    let mut without = Supernet::builder(&pruned).width(4).build();
    without.reset_parameters_by_name(InitScheme::PytorchDefault, 7);
    let x = Tensor::randn([5, 1, 8, 8], tch::kind::FLOAT_CPU);
    let before = net.forward(&x, Mode::eval()).pop().unwrap();
    let expected = without.forward(&x, Mode::eval()).pop().unwrap();
    assert!(max_abs_diff(&before, &expected) > 1e-4, "the edge must matter");
    for &op in &edge.ops {
        let weight = net.gate_weight(1, edge.id, op).unwrap();
        tch::no_grad(|| {
            let _ = weight.shallow_clone().fill_(-0.01);
        });
    }
    let closed = net.forward(&x, Mode::eval()).pop().unwrap();
    assert!(closed.equal(&expected));
}

#[test]
fn layout_friendly_subsampling_pooling_and_even_pixel_convolutions_compute_the_plain_forms() {
    tch::manual_seed(3);
    for side in [7, 8, 14] {
        let x = Tensor::randn([2, 5, side, side], (Kind::Float, Device::Cpu));
        let strided = x.slice(2, 0, None, 2).slice(3, 0, None, 2);
        assert_eq!(
            max_abs_diff(&spidernet::nn::blocks::subsample(&x, 2), &strided),
            0.0,
            "side {side}"
        );
        let every_fourth = x.slice(2, 0, None, 4).slice(3, 0, None, 4);
        assert_eq!(
            max_abs_diff(&spidernet::nn::blocks::subsample(&x, 4), &every_fourth),
            0.0
        );
        let mean = x.mean_dim([2i64, 3].as_slice(), false, Kind::Float);
        assert!(max_abs_diff(&spidernet::nn::blocks::global_average(&x), &mean) < 1e-6);
        let channels_last = spidernet::nn::blocks::channels_last(&x);
        assert_eq!(max_abs_diff(&channels_last, &x), 0.0);
        assert_eq!(channels_last.stride()[1], 1, "channels innermost");
        // A stride-2, dilation-2 depthwise conv runs on the even pixels; it must equal the dilated conv itself.
        let vs = nn::VarStore::new(Device::Cpu);
        for kernel in [3, 5] {
            let (depthwise, _) = spidernet::genotype::ConvShape::depthwise_pointwise(5, kernel, 2, 2);
            let conv = spidernet::nn::blocks::conv(vs.root() / format!("k{kernel}s{side}"), depthwise);
            let p = depthwise.padding();
            let direct = x.conv2d(&conv.ws, None::<Tensor>, [2, 2], [p, p], [2, 2], 5);
            let even = conv.apply_weight(&x, &conv.ws, 1);
            assert_eq!(even.size(), direct.size());
            assert!(max_abs_diff(&even, &direct) < 1e-5, "kernel {kernel}, side {side}");
        }
    }
}

#[test]
fn gate_histories_restore_into_a_fresh_network_of_the_same_genotype_and_nothing_else() {
    let mut trained = net(1, 4, shape(1, 8, 8));
    // Close one gate, then record three batches: that op's history differs from the others'.
    let first_gate = trained.pruner_weights()[0].shallow_clone();
    tch::no_grad(|| {
        let _ = first_gate.shallow_clone().fill_(-1.0);
    });
    for _ in 0..3 {
        trained.track_gates();
    }
    let saved = trained.gate_histories();
    assert!(
        saved.len() > 1 && saved[0].1 != saved[1].1,
        "one closed gate, the rest open"
    );

    let mut fresh = net(1, 4, shape(1, 8, 8));
    assert_ne!(fresh.gate_histories(), saved);
    fresh.restore_gate_histories(saved.clone()).unwrap();
    assert_eq!(fresh.gate_histories(), saved);

    let mut short = saved.clone();
    let dropped = short.pop().unwrap().0;
    let error = fresh.restore_gate_histories(short).unwrap_err().to_string();
    assert!(
        error.contains(&format!("no gate history for op {}", dropped.op)),
        "{error}"
    );
    let mut foreign = saved.clone();
    let mut extra = saved[0].clone();
    extra.0.cell = 9;
    foreign.push(extra);
    let error = fresh.restore_gate_histories(foreign).unwrap_err().to_string();
    assert!(error.contains("cell 9"), "{error}");
}
