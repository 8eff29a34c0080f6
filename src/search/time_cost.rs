//! Growth that counts time (docs/SEARCH.md, *Growth that counts time*): under a time budget the final training
//! gets the time the search leaves, so a split that makes each training step slower costs final epochs. This
//! module weighs that cost against what the split is expected to add. Pure arithmetic: the search measures the
//! step times, this module decides.

use serde::{Deserialize, Serialize};

/// Test accuracy (a fraction) that the final training gains per e-fold of its epochs, with the schedule planned to
/// the epochs it gets: the slope of a least-squares fit of accuracy against ln(final epochs) over the ten budgeted
/// Fashion-MNIST searches in docs/results/budget-30m and budget-2h (1.34 ± 0.31 points; docs/RESULTS.md, *Growth
/// that counts time*).
pub const ACCURACY_PER_EFOLD: f64 = 0.0134;

/// The accuracy (a fraction) that a split the published rule picks adds at equal images, as the metric-validation
/// study on Fashion-MNIST measured it: the mean over its 18 decisions of the picked candidate's gain, 0 where the
/// rule picked none: −0.058 points, 95 % interval [−0.17, +0.06] (docs/RESULTS.md, *Do the metrics predict a
/// split's gain?*). The quick profile weighs every split of a budgeted search against this (`--split-gain`).
pub const MEASURED_SPLIT_GAIN: f64 = -0.00058;

/// What one split costs in final epochs and accuracy, and whether its expected gain pays for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitCost {
    /// Measured seconds per image of a training step of the network without the split.
    pub seconds_per_image_before: f64,
    /// The same with the split.
    pub seconds_per_image_after: f64,
    /// Final epochs the plan in force gives the network without the split (none before the first plan, which
    /// needs the first mutation pass's time).
    pub final_epochs: Option<usize>,
    /// Final epochs the same time gives the network with it.
    pub final_epochs_after: Option<f64>,
    /// Accuracy the lost epochs are expected to cost: [`ACCURACY_PER_EFOLD`] × ln(after / before), negative when
    /// the split measured faster.
    pub cost: f64,
    /// Accuracy the split is expected to add at equal epochs (`--split-gain`).
    pub expected_gain: f64,
    /// Whether the expected gain exceeds the cost, so that the split is made.
    pub worth: bool,
}

/// Weighs a split whose network trains at `after` seconds per image, against `before` without it, when the plan
/// gives the final training `final_epochs` epochs and the split is expected to add `expected_gain` accuracy. With
/// the final epochs planned to the time left, the cost depends on the slowdown alone, not on the epochs.
pub fn weigh(before: f64, after: f64, final_epochs: Option<usize>, expected_gain: f64) -> SplitCost {
    let slowdown = after / before;
    let cost = if slowdown.is_finite() && slowdown > 0.0 {
        ACCURACY_PER_EFOLD * slowdown.ln()
    } else {
        f64::INFINITY
    };
    SplitCost {
        seconds_per_image_before: before,
        seconds_per_image_after: after,
        final_epochs,
        final_epochs_after: final_epochs.map(|epochs| epochs as f64 / slowdown),
        cost,
        expected_gain,
        worth: expected_gain > cost,
    }
}

/// Whether any split can be worth its time when it is expected to add `expected_gain`. A split adds a node and an
/// edge of ops, so the network it grows does more work per image and its cost is never below 0: only a positive
/// expected gain can exceed it. A split that measured faster would be noise, not a reason to grow; so with a gain
/// ≤ 0 the search scores nothing and gives the whole budget to the final training.
pub fn a_split_can_pay(expected_gain: f64) -> bool {
    expected_gain > 0.0
}

impl SplitCost {
    /// One phrase for the terminal: the slowdown, the epochs and the balance.
    pub fn describe(&self) -> String {
        let epochs = match (self.final_epochs, self.final_epochs_after) {
            (Some(before), Some(after)) => format!(", {before} → {after:.1} final epochs"),
            _ => String::new(),
        };
        format!(
            "{:+.1} % time per image{epochs}: costs {:.2} points, expected to add {:.2}",
            100.0 * (self.seconds_per_image_after / self.seconds_per_image_before - 1.0),
            100.0 * self.cost,
            100.0 * self.expected_gain,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_is_worth_its_time_only_when_its_gain_exceeds_the_epochs_it_costs() {
        // 20 % slower: 30 final epochs become 25, which costs 0.0134 × ln 1.2 = 0.00244 accuracy.
        let slower = weigh(0.010, 0.012, Some(30), 0.002);
        assert!((slower.final_epochs_after.unwrap() - 25.0).abs() < 1e-12);
        assert!((slower.cost - ACCURACY_PER_EFOLD * 1.2f64.ln()).abs() < 1e-15);
        assert!((slower.cost - 0.002443).abs() < 1e-6);
        assert!(!slower.worth, "a gain of 0.2 points does not pay for 0.24");
        assert!(weigh(0.010, 0.012, Some(30), 0.003).worth);
        assert_eq!(
            weigh(0.010, 0.012, None, 0.002).cost,
            slower.cost,
            "the cost needs no plan"
        );
        // Doubling the time per image halves the epochs and costs ln 2 e-folds, whatever the epochs.
        for epochs in [5, 50] {
            let double = weigh(0.01, 0.02, Some(epochs), 0.0);
            assert!((double.cost - ACCURACY_PER_EFOLD * std::f64::consts::LN_2).abs() < 1e-15);
            assert!((double.final_epochs_after.unwrap() - epochs as f64 / 2.0).abs() < 1e-12);
        }
        // A split that measured faster costs nothing and is made even with no expected gain, if it is weighed at
        // all: with no positive gain the search does not weigh any.
        let faster = weigh(0.010, 0.009, Some(10), 0.0);
        assert!(faster.cost < 0.0 && faster.worth);
        assert!(!a_split_can_pay(0.0) && !a_split_can_pay(MEASURED_SPLIT_GAIN));
        assert!(a_split_can_pay(1e-6));
        // A broken measurement never makes a split.
        assert!(!weigh(0.0, 0.01, Some(10), 1.0).worth);
        assert!(!weigh(0.01, f64::NAN, Some(10), 1.0).worth);
    }

    #[test]
    fn the_description_names_slowdown_epochs_and_balance() {
        let text = weigh(0.010, 0.012, Some(30), 0.002).describe();
        assert_eq!(
            text,
            "+20.0 % time per image, 30 → 25.0 final epochs: costs 0.24 points, expected to add 0.20"
        );
        let unplanned = weigh(0.010, 0.012, None, 0.002).describe();
        assert_eq!(
            unplanned,
            "+20.0 % time per image: costs 0.24 points, expected to add 0.20"
        );
    }
}
