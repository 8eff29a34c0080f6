//! `spidernet bench-memory`: the analytic training-memory estimate against the measured peak RSS, on genotypes
//! grown by seeded random splits. Each genotype is measured in a process of its own, so that memory one network
//! freed cannot hide the next one's peak.

use crate::genotype::InputShape;
use crate::memory;
use crate::memory_probe::{grown_genotype, measure_training_peak};
use anyhow::Context;
use std::path::Path;

/// The benchmark shape: Fashion-MNIST-sized input, R=2, C=16.
pub const MEMORY_INPUT: InputShape = InputShape::new(1, 28, 28);
const REDUCTIONS: usize = 2;
const CHANNELS: usize = 16;
/// SGD steps each probe measures.
pub const MEMORY_STEPS: usize = 3;
/// Splits of the measured genotypes, from the minimal network to a large one.
pub const MEMORY_SPLITS: [usize; 5] = [0, 6, 12, 21, 30];

/// One measured genotype.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryRow {
    /// Seeded random splits applied to the minimal genotype.
    pub splits: usize,
    /// Edges of the genotype.
    pub edges: usize,
    /// Trainable parameters.
    pub parameters: usize,
    /// The analytic estimate, bytes.
    pub estimate: u64,
    /// The measured peak RSS added by training, bytes.
    pub measured: u64,
}

/// Measures, in this process, the peak RSS that training the genotype of `splits` splits adds (the probe that
/// [`compare_estimates`] runs in a child process).
pub fn probe(splits: usize, batch: usize) -> anyhow::Result<u64> {
    let genotype = grown_genotype(MEMORY_INPUT, REDUCTIONS, CHANNELS, splits, 0);
    measure_training_peak(&genotype, CHANNELS, batch, MEMORY_STEPS)
}

/// Runs `program` with `probe_args` and `--batch B --probe-splits N` (a command that prints [`probe`]'s byte count)
/// once per genotype of [`MEMORY_SPLITS`], and sets each measurement beside the estimate; `row` receives each as it
/// is measured.
pub fn compare_estimates(
    program: &Path,
    probe_args: &[&str],
    batch: usize,
    row: &mut dyn FnMut(&MemoryRow),
) -> anyhow::Result<()> {
    for splits in MEMORY_SPLITS {
        let output = std::process::Command::new(program)
            .args(probe_args)
            .args(["--batch", &batch.to_string(), "--probe-splits", &splits.to_string()])
            .output()
            .with_context(|| format!("cannot run the memory probe {}", program.display()))?;
        if !output.status.success() {
            anyhow::bail!(
                "memory probe for {splits} splits failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let measured: u64 = text
            .trim()
            .parse()
            .with_context(|| format!("memory probe for {splits} splits printed {text:?}, not a byte count"))?;
        let genotype = grown_genotype(MEMORY_INPUT, REDUCTIONS, CHANNELS, splits, 0);
        row(&MemoryRow {
            splits,
            edges: genotype.edge_count(),
            parameters: genotype.at_width(CHANNELS).parameter_count(),
            estimate: memory::estimate(&genotype, CHANNELS, batch).total(),
            measured,
        });
    }
    Ok(())
}
