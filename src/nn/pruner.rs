//! The learned op gate (docs/ALGORITHM.md §5): straight-through gradient, clamp, gate statistics and the deadhead rule.

use tch::{Kind, Tensor};

/// Constants of the pruner, with the reference's values as defaults.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PrunerConfig {
    /// Initial gate weight.
    pub init: f64,
    /// The clamp bound, as a multiple of `init` (±5 × 0.01).
    pub clamp_factor: f64,
    /// Epochs in the deadhead window.
    pub window_epochs: usize,
    /// An op dies when its gate was open on fewer than this fraction of the window's batches.
    pub min_open_fraction: f64,
}

impl Default for PrunerConfig {
    fn default() -> Self {
        PrunerConfig {
            init: 0.01,
            clamp_factor: 5.0,
            window_epochs: 4,
            min_open_fraction: 0.25,
        }
    }
}

impl PrunerConfig {
    /// The clamp bound applied to gate weights after every batch.
    pub fn clamp_bound(&self) -> f64 {
        self.init.abs() * self.clamp_factor
    }
}

/// Multiplies `output` by the gate of `weight`: the forward value is exactly 0 or 1 times `output`,
/// and the gradient reaching `weight` is ⟨output, ∂L/∂y⟩, also while the gate is closed.
pub fn gate(weight: &Tensor, output: &Tensor) -> Tensor {
    let step = weight.detach().gt(0.0).to_kind(output.kind());
    // weight − weight.detach() is exactly zero in value but carries a unit derivative.
    let straight_through = (weight - weight.detach()) + step;
    output * straight_through
}

/// Per-epoch counts of the batches on which a gate was open, and the deadhead rule over a sliding window.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GateHistory {
    counts: Vec<u64>,
    /// Batches with an open gate since the phase began, the window's limit aside.
    #[serde(default)]
    total: u64,
}

impl Default for GateHistory {
    fn default() -> Self {
        GateHistory {
            counts: vec![0],
            total: 0,
        }
    }
}

/// What the deadhead rule says at the end of an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Fewer epochs than the window have been seen.
    Undecided,
    /// Open often enough.
    Alive,
    /// Open on fewer than the threshold fraction of the window's batches.
    Dead,
}

impl GateHistory {
    /// Adds one batch's gate state to the current epoch.
    pub fn record(&mut self, open: bool) {
        if let (true, Some(last)) = (open, self.counts.last_mut()) {
            *last += 1;
            self.total += 1;
        }
    }

    /// Batches with an open gate since the phase began.
    pub fn total_open(&self) -> u64 {
        self.total
    }

    /// Batches with an open gate within the current window.
    pub fn open_in_window(&self, window: usize) -> u64 {
        self.counts.iter().rev().take(window).sum()
    }

    /// Closes the epoch and applies the rule: with a full window of E epochs of `batches_per_epoch` batches,
    /// the op is dead when its gate was open on fewer than `min_open_fraction` · E · batches of them.
    pub fn end_epoch(&mut self, batches_per_epoch: usize, config: &PrunerConfig) -> Verdict {
        let window = config.window_epochs.max(1);
        if self.counts.len() < window {
            self.counts.push(0);
            return Verdict::Undecided;
        }
        let possible = (window * batches_per_epoch) as f64;
        let open = self.open_in_window(window) as f64;
        let keep_from = self.counts.len() - window;
        self.counts.drain(..keep_from);
        self.counts.push(0);
        if open < config.min_open_fraction * possible {
            Verdict::Dead
        } else {
            Verdict::Alive
        }
    }
}

/// Whether each gate weight in `weights` is open (> 0), read in one transfer.
pub fn open_gates(weights: &[Tensor]) -> Vec<bool> {
    if weights.is_empty() {
        return Vec::new();
    }
    let open = tch::no_grad(|| {
        Tensor::stack(weights, 0)
            .gt(0.0)
            .to_kind(Kind::Uint8)
            .to_device(tch::Device::Cpu)
    });
    Vec::<u8>::try_from(open.flatten(0, -1))
        .map(|v| v.into_iter().map(|b| b != 0).collect())
        .unwrap_or_default()
}

/// Clamps every gate weight to ±`bound` in place.
pub fn clamp_weights(weights: &[Tensor], bound: f64) {
    tch::no_grad(|| {
        for weight in weights {
            let _ = weight.shallow_clone().clamp_(-bound, bound);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weight(value: f64) -> Tensor {
        Tensor::from_slice(&[value as f32]).view([]).set_requires_grad(true)
    }

    #[test]
    fn forward_is_exactly_zero_or_one_times_the_output() {
        let y = Tensor::from_slice(&[1.5f32, -2.25, 3.0e7]);
        let open = gate(&weight(0.01), &y);
        assert!(open.equal(&y));
        let closed = gate(&weight(-0.01), &y);
        assert!(closed.equal(&Tensor::zeros([3], tch::kind::FLOAT_CPU)));
    }

    #[test]
    fn gradient_is_the_inner_product_of_output_and_upstream_gradient_even_when_closed() {
        for w in [0.02, -0.02] {
            let w = weight(w);
            let y = Tensor::from_slice(&[1.0f32, 2.0, -3.0]);
            let upstream = Tensor::from_slice(&[0.5f32, -1.0, 2.0]);
            let loss = (gate(&w, &y) * &upstream).sum(Kind::Float);
            loss.backward();
            let expected = (&y * &upstream).sum(Kind::Float).double_value(&[]);
            assert_eq!(w.grad().double_value(&[]), expected);
        }
    }

    #[test]
    fn deadhead_rule_needs_a_full_window_and_a_quarter_open() {
        let config = PrunerConfig::default();
        let batches = 10;
        // Open on 9 of 40 batches: below 25 %.
        let mut rarely = GateHistory::default();
        let mut often = GateHistory::default();
        for epoch in 0..4 {
            for batch in 0..batches {
                rarely.record(epoch < 3 && batch < 3);
                often.record(batch < 3 || (epoch == 0 && batch == 9));
            }
            let expected = if epoch < 3 { Verdict::Undecided } else { Verdict::Dead };
            assert_eq!(rarely.end_epoch(batches, &config), expected, "epoch {epoch}");
            let expected = if epoch < 3 { Verdict::Undecided } else { Verdict::Alive };
            assert_eq!(often.end_epoch(batches, &config), expected, "epoch {epoch}");
        }
        // The window slides: after a closed epoch, the first epoch (4 open batches) has left it, so 9 < 10 remain.
        for _ in 0..batches {
            often.record(false);
        }
        assert_eq!(often.end_epoch(batches, &config), Verdict::Dead);
    }

    #[test]
    fn clamp_bounds_weights_in_place() {
        let weights = vec![weight(0.3), weight(-0.07), weight(0.01)];
        clamp_weights(&weights, PrunerConfig::default().clamp_bound());
        let values: Vec<f64> = weights.iter().map(|w| w.double_value(&[])).collect();
        assert!((values[0] - 0.05).abs() < 1e-7 && (values[1] + 0.05).abs() < 1e-7);
        assert!((values[2] - 0.01).abs() < 1e-7);
        assert_eq!(open_gates(&weights), vec![true, false, true]);
    }
}
