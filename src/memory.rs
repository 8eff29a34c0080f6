//! Analytic estimate of the memory a training step of a genotype's network needs (docs/ALGORITHM.md §8), and the
//! budget check applied before a mutation.

use crate::genotype::{Genotype, Op};

const FLOAT: u64 = 4;

/// The parts of the estimate, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemoryEstimate {
    /// Weights.
    pub parameters: u64,
    /// Gradients of the weights.
    pub gradients: u64,
    /// SGD momentum buffers.
    pub momentum: u64,
    /// BN running statistics.
    pub buffers: u64,
    /// Activations kept for backward, plus the gradient buffers alive at the peak of backward.
    pub activations: u64,
}

impl MemoryEstimate {
    /// Everything together.
    pub fn total(&self) -> u64 {
        self.parameters + self.gradients + self.momentum + self.buffers + self.activations
    }
}

/// Feature maps (channel-width tensors at the op's output resolution) an op adds to what a training step keeps
/// for backward. Gate and drop-path products and the node sums are freed as soon as they are summed, so they
/// are not counted here.
fn op_saved_maps(op: Op) -> u64 {
    match op {
        // Identity is its input (or a strided view of it).
        Op::Identity => 0,
        // Output (kept by the gate product) plus int64 indices: two floats' worth.
        Op::MaxPool3x3 => 3,
        Op::AvgPool3x3 => 1,
        // dw, pw, ReLU output, dw, pw, BN output; the first BN's output is the ReLU's input and is freed.
        Op::SepConv3x3 | Op::SepConv5x5 => 6,
        // dw, pw, BN.
        Op::DilConv3x3 | Op::DilConv5x5 => 3,
        // ReLU, conv, BN.
        Op::Conv1x1 | Op::Conv3x3 => 3,
    }
}

/// Estimated training memory of the supernet of `genotype` at `width`, for mini-batches of `batch` images.
pub fn estimate(genotype: &Genotype, width: usize, batch: usize) -> MemoryEstimate {
    (0..genotype.cells.len())
        .map(|k| cell_estimate(genotype, width, batch, k))
        .fold(stem_estimate(genotype, width, batch), |total, part| total + part)
}

/// The share of the estimate that belongs to the input batch and the stem.
pub fn stem_estimate(genotype: &Genotype, width: usize, batch: usize) -> MemoryEstimate {
    let map = feature_map_bytes(batch);
    let (h0, w0) = (genotype.input.height, genotype.input.width);
    // Input batch, stem conv and stem BN.
    let saved = map(genotype.input.channels, (h0, w0)) + 2 * map(width, (h0, w0));
    finish(
        genotype.at_width(width).stem_parameter_count(),
        2 * width as u64 * FLOAT,
        saved,
    )
}

/// The share of the estimate that belongs to cell `k`: rescalers, node batch norms, live ops and tower.
pub fn cell_estimate(genotype: &Genotype, width: usize, batch: usize, k: usize) -> MemoryEstimate {
    let map = feature_map_bytes(batch);
    let shape = genotype.at_width(width);
    let cell = &genotype.cells[k];
    let channels = shape.cell_channels(k);
    let working = genotype.level_resolution(genotype.cell_input_level(k));
    let output = genotype.cell_output_resolution(k);
    let mut saved = 0;
    let mut buffers = 0;
    // Rescalers: 1×1 conv + BN at the input's own resolution when the width changes.
    for input in shape.cell_inputs(k).iter().filter(|input| input.projection.is_some()) {
        saved += 2 * map(channels, genotype.level_resolution(input.level));
        buffers += 2 * channels as u64 * FLOAT;
    }
    // Node BNs: an input node keeps its BN output; other nodes keep their sum (the BN's input) too.
    for node in 0..cell.n_nodes {
        saved += if cell.is_input(node) {
            map(channels, working)
        } else {
            2 * map(channels, output)
        };
        buffers += 2 * channels as u64 * FLOAT;
    }
    for edge in &cell.edges {
        for &op in &edge.ops {
            // Every op works at the cell's output resolution (reductions happen on the input edges).
            saved += op_saved_maps(op) * map(channels, output);
            buffers += op_buffers(op, channels);
        }
    }
    finish(shape.cell_parameter_count(k), buffers, saved)
}

/// Bytes one image takes at the peak of an evaluation-mode forward pass without gradients: nothing is kept for a
/// backward pass, so what is alive at once is the input, the stem's output and every cell's output (kept for the
/// later cells' dense inputs), and within the widest cell its inputs, one pending sum per node and two op outputs,
/// counted at the cell's input resolution. An upper bound: measured, 256 Fashion-MNIST images through a 198-op
/// network took 150 MB beyond batches of 16, where this counts 304 MiB.
pub fn inference_bytes_per_image(genotype: &Genotype, width: usize) -> u64 {
    let map = feature_map_bytes(1);
    let shape = genotype.at_width(width);
    let input = (genotype.input.height, genotype.input.width);
    let kept: u64 = map(genotype.input.channels, input)
        + map(width, input)
        + (0..genotype.cells.len())
            .map(|k| map(shape.cell_channels(k), genotype.cell_output_resolution(k)))
            .sum::<u64>();
    let widest = (0..genotype.cells.len())
        .map(|k| {
            let working = genotype.level_resolution(genotype.cell_input_level(k));
            let maps = shape.cell_inputs(k).len() + genotype.cells[k].n_nodes + 2;
            maps as u64 * map(shape.cell_channels(k), working)
        })
        .max()
        .unwrap_or(0);
    kept + widest
}

/// Bytes of a batch of f32 feature maps with `channels` channels at a resolution.
fn feature_map_bytes(batch: usize) -> impl Fn(usize, (usize, usize)) -> u64 {
    move |channels, (h, w)| batch as u64 * channels as u64 * (h * w) as u64 * FLOAT
}

/// An estimate from a parameter count, buffer bytes and the bytes of activations saved for backward.
fn finish(params: usize, buffers: u64, saved: u64) -> MemoryEstimate {
    let params = params as u64;
    // Backward allocates gradients of the activations, and the transient products (gates, drop-path, sums)
    // leave the allocator holding more than is alive at any instant. Three quarters on top of the saved
    // activations matches the measured peaks within a few percent (`spidernet bench-memory`, docs/PERFORMANCE.md).
    MemoryEstimate {
        parameters: params * FLOAT,
        gradients: params * FLOAT,
        momentum: params * FLOAT,
        buffers,
        activations: saved + saved * 3 / 4,
    }
}

impl std::ops::Add for MemoryEstimate {
    type Output = MemoryEstimate;

    fn add(self, other: MemoryEstimate) -> MemoryEstimate {
        MemoryEstimate {
            parameters: self.parameters + other.parameters,
            gradients: self.gradients + other.gradients,
            momentum: self.momentum + other.momentum,
            buffers: self.buffers + other.buffers,
            activations: self.activations + other.activations,
        }
    }
}

fn op_buffers(op: Op, channels: usize) -> u64 {
    let norms = match op {
        Op::SepConv3x3 | Op::SepConv5x5 => 2,
        Op::DilConv3x3 | Op::DilConv5x5 | Op::Conv1x1 | Op::Conv3x3 => 1,
        _ => 0,
    };
    norms * 2 * channels as u64 * FLOAT
}

/// Parses a size such as `512MiB`, `4GiB`, `1.5GB` or `1000000` (bytes).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a size: expected a number with an optional unit, like 4GiB"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kib" | "k" => 1024.0,
        "mib" | "m" => 1024.0 * 1024.0,
        "gib" | "g" => 1024.0 * 1024.0 * 1024.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        other => {
            return Err(format!(
                "'{text}': unknown unit '{other}' (use B, KiB, MiB, GiB, KB, MB or GB)"
            ));
        }
    };
    let bytes = value * scale;
    if !(bytes.is_finite() && bytes >= 1.0) {
        return Err(format!("'{text}' is not a positive size"));
    }
    Ok(bytes as u64)
}

/// Formats bytes with a binary unit, e.g. `1.5 GiB`.
pub fn format_size(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

/// Physical memory of this machine in bytes, from /proc/meminfo, if it can be read.
pub fn physical_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The default budget: half the machine's memory on CPU (the rest is left to the OS, libtorch and data),
/// or 4 GiB when it cannot be read.
pub fn default_budget() -> u64 {
    physical_memory().map_or(4 << 30, |total| total / 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genotype::InputShape;

    #[test]
    fn sizes_parse_with_units_and_reject_nonsense() {
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert_eq!(parse_size("1.5 GB"), Ok(1_500_000_000));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("4 parsecs").unwrap_err().contains("unknown unit"));
        assert!(parse_size("lots").unwrap_err().contains("not a size"));
        assert!(parse_size("0MiB").unwrap_err().contains("positive"));
        assert_eq!(format_size(3 << 29), "1.5 GiB");
    }

    #[test]
    fn estimate_grows_with_splits_batch_and_width_and_counts_optimizer_state() {
        let input = InputShape {
            channels: 1,
            height: 28,
            width: 28,
        };
        let mut genotype = Genotype::minimal(2, 16, input, 10).unwrap();
        let small = estimate(&genotype, 16, 64);
        assert_eq!(small.parameters, 4 * genotype.at_width(16).parameter_count() as u64);
        assert_eq!(small.momentum, small.parameters);
        assert!(estimate(&genotype, 16, 128).activations > small.activations);
        assert!(estimate(&genotype, 32, 64).total() > small.total());
        let first = genotype.cells[1].edges[0].id;
        genotype.cells[1].split(first).unwrap();
        assert!(estimate(&genotype, 16, 64).total() > small.total());
    }

    #[test]
    fn inference_needs_a_small_share_of_training_memory_and_counts_the_widest_cell() {
        // The 198-op network found on Fashion-MNIST (docs/RESULTS.md): 256 images measured 150 MB beyond 16.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/images/fashion-spidernet-seed0-genotype.json"
        );
        let genotype = Genotype::load(std::path::Path::new(path)).unwrap();
        let per_image = inference_bytes_per_image(&genotype, 16);
        assert!(
            (150 << 20..=400 << 20).contains(&(256 * per_image)),
            "{}",
            256 * per_image
        );
        assert!(per_image * 20 < estimate(&genotype, 16, 1).activations);
        // Minimal R=0 C=4 on 8×8: input, stem and the cell's output kept; the cell's 1 input, 3 nodes and 2 op
        // outputs at 8×8 with 4 channels.
        let minimal = Genotype::minimal(0, 4, InputShape::new(1, 8, 8), 10).unwrap();
        let plane = 8 * 8 * FLOAT;
        assert_eq!(
            inference_bytes_per_image(&minimal, 4),
            plane * (1 + 4 + 4) + plane * 4 * (1 + 3 + 2)
        );
    }
}
