//! Rank correlations and bootstrap intervals: what the metric-validation harness reports (docs/METRICS.md,
//! *Validating the metrics*). Pairs with a NaN on either side are left out.

use rand::RngExt;
use statrs::statistics::{OrderStatistics, RankTieBreaker, Statistics};

/// The pairs of `x` and `y` where both are numbers (infinities kept, NaN dropped).
fn paired(x: &[f64], y: &[f64]) -> (Vec<f64>, Vec<f64>) {
    x.iter()
        .zip(y)
        .filter(|(a, b)| !a.is_nan() && !b.is_nan())
        .map(|(a, b)| (*a, *b))
        .unzip()
}

/// Kendall's τ-b (ties corrected, as scipy.stats.kendalltau); `None` with fewer than two pairs or a constant side.
pub fn kendall_tau(x: &[f64], y: &[f64]) -> Option<f64> {
    let (x, y) = paired(x, y);
    if x.len() < 2 {
        return None;
    }
    let (tau, _) = kendalls::tau_b_with_comparator(&x, &y, |a: &f64, b: &f64| a.total_cmp(b)).ok()?;
    tau.is_finite().then_some(tau)
}

/// Spearman's ρ: Pearson's correlation of the average ranks (as scipy.stats.spearmanr); `None` with fewer than two
/// pairs or a constant side.
pub fn spearman_rho(x: &[f64], y: &[f64]) -> Option<f64> {
    let (x, y) = paired(x, y);
    if x.len() < 2 {
        return None;
    }
    let rx = statrs::statistics::Data::new(x).ranks(RankTieBreaker::Average);
    let ry = statrs::statistics::Data::new(y).ranks(RankTieBreaker::Average);
    let covariance = rx.iter().population_covariance(ry.iter());
    let rho = covariance / (rx.iter().population_std_dev() * ry.iter().population_std_dev());
    rho.is_finite().then_some(rho)
}

/// Kendall's τ within groups: over the pairs of items of the same group only, (concordant − discordant) /
/// (pairs untied on x or y, the τ-b denominator summed over groups). What matters for a rule that only ever compares
/// the candidates of one decision. `groups[i]` is item i's group.
pub fn grouped_kendall_tau(x: &[f64], y: &[f64], groups: &[usize]) -> Option<f64> {
    let (mut score, mut untied_x, mut untied_y) = (0.0, 0.0, 0.0);
    for i in 0..x.len() {
        for j in i + 1..x.len() {
            if groups[i] != groups[j] || [x[i], x[j], y[i], y[j]].iter().any(|v| v.is_nan()) {
                continue;
            }
            let (dx, dy) = (x[i].total_cmp(&x[j]) as i32, y[i].total_cmp(&y[j]) as i32);
            score += f64::from(dx * dy);
            untied_x += f64::from(dx.abs());
            untied_y += f64::from(dy.abs());
        }
    }
    let tau = score / (untied_x * untied_y).sqrt();
    tau.is_finite().then_some(tau)
}

/// A two-sided interval.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Interval {
    /// Lower end.
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

/// The percentile bootstrap's 95 % interval of `statistic` over `units` resampling units (candidates, or
/// decisions): `resamples` times, `units` indices are drawn with replacement from `rng` and the statistic is
/// computed on them; resamples where it is undefined are left out. `None` when fewer than 20 resamples are defined.
pub fn bootstrap_interval(
    units: usize,
    resamples: usize,
    rng: &mut impl rand::Rng,
    mut statistic: impl FnMut(&[usize]) -> Option<f64>,
) -> Option<Interval> {
    if units == 0 {
        return None;
    }
    let mut values: Vec<f64> = (0..resamples)
        .filter_map(|_| {
            let drawn: Vec<usize> = (0..units).map(|_| rng.random_range(0..units)).collect();
            statistic(&drawn)
        })
        .collect();
    if values.len() < 20 {
        return None;
    }
    let mut data = statrs::statistics::Data::new(values.as_mut_slice());
    Some(Interval {
        low: data.quantile(0.025),
        high: data.quantile(0.975),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_and_reversed_orders_and_undefined_cases() {
        let x = [1.0, 2.0, 3.0, 4.0];
        let reversed = [9.0, 5.0, 2.0, -1.0];
        assert_eq!(kendall_tau(&x, &x), Some(1.0));
        assert_eq!(kendall_tau(&x, &reversed), Some(-1.0));
        assert!((spearman_rho(&x, &reversed).unwrap() + 1.0).abs() < 1e-12);
        assert_eq!(kendall_tau(&x, &[1.0; 4]), None, "a constant side");
        assert_eq!(spearman_rho(&[1.0], &[2.0]), None);
        assert_eq!(
            kendall_tau(&[1.0, f64::NAN, 3.0], &[1.0, 5.0, 2.0]),
            Some(1.0),
            "NaN pairs are dropped"
        );
    }

    #[test]
    fn grouped_tau_ignores_pairs_across_groups() {
        // Within each group the order agrees; across groups it is reversed.
        let x = [1.0, 2.0, 10.0, 11.0];
        let y = [10.0, 11.0, 1.0, 2.0];
        assert!(kendall_tau(&x, &y).unwrap() < 0.0);
        assert_eq!(grouped_kendall_tau(&x, &y, &[0, 0, 1, 1]), Some(1.0));
        assert_eq!(
            grouped_kendall_tau(&x, &y, &[0, 1, 2, 3]),
            None,
            "no pair within a group"
        );
    }

    #[test]
    fn the_bootstrap_interval_brackets_the_estimate_and_narrows_with_more_data() {
        use rand::SeedableRng;
        let width = |n: usize| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
            let x: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let y: Vec<f64> = x.iter().map(|v| v + 3.0 * ((v * 7.3).sin())).collect();
            let estimate = kendall_tau(&x, &y).unwrap();
            let interval = bootstrap_interval(n, 400, &mut rng, |drawn| {
                let (a, b): (Vec<f64>, Vec<f64>) = drawn.iter().map(|&i| (x[i], y[i])).unzip();
                kendall_tau(&a, &b)
            })
            .unwrap();
            assert!(
                interval.low <= estimate && estimate <= interval.high,
                "{interval:?} {estimate}"
            );
            interval.high - interval.low
        };
        assert!(width(200) < width(20));
    }
}
