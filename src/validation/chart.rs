//! The harness's scatter chart: per metric, each candidate's signal (its good direction to the right) against its
//! mean gain.

use super::records::Records;
use crate::metrics::zero_cost::{Better, MetricName};
use crate::report::charts::{ScatterPanel, scatter_grid};

/// One panel per metric of the candidates with every replicate measured.
pub fn scatter_chart(records: &Records, metrics: &[MetricName], replicates: usize) -> anyhow::Result<String> {
    let gains = records.gains(replicates);
    let panels: Vec<ScatterPanel> = metrics
        .iter()
        .map(|&metric| {
            let sign = match metric.better() {
                Better::Higher => 1.0,
                Better::Lower => -1.0,
            };
            ScatterPanel {
                title: metric.name().to_string(),
                x_label: match metric.better() {
                    Better::Higher => "signal (higher is better)".to_string(),
                    Better::Lower => "−signal (lower is better)".to_string(),
                },
                y_label: "gain (accuracy points)".to_string(),
                points: gains
                    .iter()
                    .filter_map(|(c, g)| {
                        let signal = c.signals.get(&metric)?;
                        Some((sign * signal, 100.0 * g.iter().sum::<f64>() / g.len() as f64))
                    })
                    .collect(),
            }
        })
        .collect();
    scatter_grid(&panels, 4)
}
