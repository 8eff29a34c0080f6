//! What a workload reports, and the timing and memory helpers every workload shares.

use crate::system::memory_probe::MemoryWindow;
use std::collections::BTreeMap;
use std::time::Instant;
use tch::Device;

/// One workload's result, as one JSON line of `spidernet bench --json` (the twin prints the same fields).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Measurement {
    /// Workload id, e.g. `a-train-initial`.
    pub workload: String,
    /// "spidernet" here, "pytorch" for the twin.
    pub side: &'static str,
    /// Unit of the values: `images/s` (higher is better) or `s` (lower is better).
    pub unit: &'static str,
    /// Median over the repeats; None when the workload was skipped.
    pub median: Option<f64>,
    /// One value per repeat.
    pub values: Vec<f64>,
    /// Trainable parameters of the timed network, where there is one.
    pub parameters: Option<usize>,
    /// Edges of the timed genotype, where there is one.
    pub edges: Option<usize>,
    /// Batch size of the timed passes, where there is one.
    pub batch: Option<usize>,
    /// libtorch intra-op threads.
    pub threads: usize,
    /// Highest resident memory of the process while the workload ran (Linux VmHWM after a reset).
    pub peak_rss_bytes: Option<u64>,
    /// `peak_rss_bytes` minus the resident memory when the workload began.
    pub added_rss_bytes: Option<u64>,
    /// On CUDA: the most device memory held by live tensors at once (libtorch's caching allocator).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_device_allocated_bytes: Option<u64>,
    /// On CUDA: the most device memory the allocator held at once, its cache included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_device_reserved_bytes: Option<u64>,
    /// Where the workload ran: `cpu` or `cuda:N`.
    pub device: String,
    /// The feature maps' memory format: `nchw` or `channels-last`.
    pub memory_format: &'static str,
    /// Further medians a workload breaks its time into (e.g. training and scoring seconds of a search iteration).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, f64>,
    /// Why the workload did not run, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl Measurement {
    /// A measurement of `values` in `unit`, with their median.
    pub fn new(workload: &str, unit: &'static str, values: Vec<f64>, threads: usize) -> Self {
        Measurement {
            workload: workload.to_string(),
            side: "spidernet",
            unit,
            median: Some(median(&values)),
            values,
            threads,
            ..Default::default()
        }
    }

    /// Multiplies every value and the median by `factor` (e.g. to turn a total into a per-item figure).
    pub fn scale(&mut self, factor: f64) {
        for value in &mut self.values {
            *value *= factor;
        }
        self.median = self.median.map(|m| m * factor);
    }

    /// Records the peak memory of a window opened when the workload began, and the device and layout it ran on.
    pub fn with_memory(mut self, window: MemoryWindow) -> Self {
        let reading = window.finish();
        let device = reading.device;
        if let Some(rss) = reading.rss {
            self.peak_rss_bytes = Some(rss.peak);
            self.added_rss_bytes = Some(rss.added);
        }
        if let Some(cuda) = reading.cuda {
            self.peak_device_allocated_bytes = Some(cuda.allocated);
            self.peak_device_reserved_bytes = Some(cuda.reserved);
        }
        self.device = match device {
            Device::Cuda(index) => format!("cuda:{index}"),
            _ => "cpu".into(),
        };
        self.memory_format = if crate::nn::blocks::uses_channels_last(device) {
            "channels-last"
        } else {
            "nchw"
        };
        self
    }
}

/// The median of `values` (the mean of the middle two for an even count; NaN for none).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Waits for queued GPU work so that timings cover it; nothing to wait for on the CPU.
pub fn synchronize(device: Device) {
    if let Device::Cuda(index) = device {
        tch::Cuda::synchronize(index as i64);
    }
}

/// Runs `work` once per repeat and returns the seconds each took, GPU work included.
pub fn timed(repeats: usize, device: Device, mut work: impl FnMut()) -> Vec<f64> {
    (0..repeats)
        .map(|_| {
            let start = Instant::now();
            work();
            synchronize(device);
            start.elapsed().as_secs_f64()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn a_skipped_workload_has_no_median_in_json() {
        let skipped = Measurement {
            workload: "d-search-iteration".into(),
            skipped: Some("no data".into()),
            ..Default::default()
        };
        let json: serde_json::Value = serde_json::to_value(&skipped).unwrap();
        assert!(json["median"].is_null() && json["skipped"] == "no data");
        assert!(json.get("details").is_none());
    }
}
