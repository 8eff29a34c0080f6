//! The whole network description: global settings plus one cell per resolution level.

use serde::{Deserialize, Serialize};

use super::cell::Cell;
use super::error::GenotypeError;
use super::geometry::NetworkShape;
use super::op::OpSet;

/// Shape of one input image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputShape {
    /// Colour channels.
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
}

impl InputShape {
    /// A shape of `channels` × `height` × `width`.
    pub const fn new(channels: usize, height: usize, width: usize) -> Self {
        InputShape {
            channels,
            height,
            width,
        }
    }
}

/// A complete architecture: `reductions + 1` cells and the settings needed to build tensors for them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genotype {
    /// File format version; always `Genotype::FORMAT`.
    pub format: u32,
    /// Number of resolution-halving cells.
    pub reductions: usize,
    /// Channel count of cell 0; cell k has `channels * 2^k`.
    pub channels: usize,
    /// Shape of the input images.
    pub input: InputShape,
    /// Number of output classes.
    pub classes: usize,
    /// The cells, cell k at index k.
    pub cells: Vec<Cell>,
}

impl Genotype {
    /// The format version this code reads and writes.
    pub const FORMAT: u32 = 1;

    /// The starting architecture: every cell in its minimal topology, with the published ops.
    pub fn minimal(
        reductions: usize,
        channels: usize,
        input: InputShape,
        classes: usize,
    ) -> Result<Genotype, GenotypeError> {
        Genotype::minimal_with(reductions, channels, input, classes, OpSet::Published)
    }

    /// The starting architecture: every cell in its minimal topology, every edge holding the ops of `op_set`.
    pub fn minimal_with(
        reductions: usize,
        channels: usize,
        input: InputShape,
        classes: usize,
        op_set: OpSet,
    ) -> Result<Genotype, GenotypeError> {
        validate_settings(reductions, channels, input, classes)?;
        Ok(Genotype {
            format: Self::FORMAT,
            reductions,
            channels,
            input,
            classes,
            cells: (0..=reductions).map(|k| Cell::minimal_with(k, op_set)).collect(),
        })
    }

    /// Channel count of cell `k`: `channels * 2^k` (saturating).
    pub fn cell_channels(&self, k: usize) -> usize {
        self.at_width(self.channels).cell_channels(k)
    }

    /// Trainable scalars of this genotype's network at its own width.
    pub fn parameter_count(&self) -> usize {
        self.at_width(self.channels).parameter_count()
    }

    /// The network of this genotype at `width` channels in cell 0 (its own `channels` for the trained network).
    pub fn at_width(&self, width: usize) -> NetworkShape<'_> {
        NetworkShape::new(self, width)
    }

    /// Input (height, width) halved `level` times, rounding up.
    pub fn level_resolution(&self, level: usize) -> (usize, usize) {
        let (mut height, mut width) = (self.input.height, self.input.width);
        for _ in 0..level {
            if height <= 1 && width <= 1 {
                break;
            }
            height = height.div_ceil(2);
            width = width.div_ceil(2);
        }
        (height, width)
    }

    /// Output (height, width) of cell `k`.
    pub fn cell_output_resolution(&self, k: usize) -> (usize, usize) {
        self.level_resolution(k)
    }

    /// Resolution level of the inputs of cell `k` (cells 0 and 1 both read level 0).
    pub fn cell_input_level(&self, k: usize) -> usize {
        k.max(1) - 1
    }

    /// Total number of edges over all cells.
    pub fn edge_count(&self) -> usize {
        self.cells.iter().map(|cell| cell.edges.len()).sum()
    }

    /// Total number of live ops over all cells.
    pub fn live_op_count(&self) -> usize {
        self.cells.iter().map(Cell::live_op_count).sum()
    }

    /// Verifies the settings and every cell.
    pub fn check(&self) -> Result<(), GenotypeError> {
        if self.format != Self::FORMAT {
            return Err(GenotypeError::InvalidGenotype(format!(
                "format is {} but only format {} is supported",
                self.format,
                Self::FORMAT
            )));
        }
        validate_settings(self.reductions, self.channels, self.input, self.classes)?;
        let expected_cells = self.reductions + 1;
        if self.cells.len() != expected_cells {
            return Err(GenotypeError::InvalidGenotype(format!(
                "{} reductions need {} cells, found {}",
                self.reductions,
                expected_cells,
                self.cells.len()
            )));
        }
        for (k, cell) in self.cells.iter().enumerate() {
            if cell.index != k {
                return Err(GenotypeError::InvalidGenotype(format!(
                    "cell at position {k} has index {}",
                    cell.index
                )));
            }
            cell.check()?;
        }
        Ok(())
    }
}

/// Checks the global settings shared by `minimal` and `check`.
fn validate_settings(
    reductions: usize,
    channels: usize,
    input: InputShape,
    classes: usize,
) -> Result<(), GenotypeError> {
    let invalid = |message: String| Err(GenotypeError::InvalidGenotype(message));
    if channels < 1 {
        return invalid("channels must be at least 1, got 0".to_string());
    }
    if classes < 2 {
        return invalid(format!("classes must be at least 2, got {classes}"));
    }
    for (name, value) in [
        ("channels", input.channels),
        ("height", input.height),
        ("width", input.width),
    ] {
        if value < 1 {
            return invalid(format!("input {name} must be at least 1, got 0"));
        }
    }
    let (height, width) = (input.height, input.width);
    let max_reductions = height.min(width).ilog2() as usize;
    if reductions > max_reductions {
        return Err(GenotypeError::InputTooSmall {
            height,
            width,
            reductions,
            max_reductions,
        });
    }
    // reductions <= log2(min side) < usize::BITS, so the shift is exact.
    if channels.checked_mul(1usize << reductions).is_none() {
        return invalid(format!("channels {channels} doubled {reductions} times overflows"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MNIST: InputShape = InputShape {
        channels: 1,
        height: 28,
        width: 28,
    };

    #[test]
    fn minimal_builds_one_cell_per_level() {
        let genotype = Genotype::minimal(2, 16, MNIST, 10).expect("valid settings");
        assert_eq!(genotype.format, 1);
        assert_eq!(genotype.cells.len(), 3);
        for (k, cell) in genotype.cells.iter().enumerate() {
            assert_eq!(*cell, Cell::minimal(k));
        }
        assert_eq!(genotype.edge_count(), 2 + 3 + 4);
        assert_eq!(genotype.live_op_count(), 9 * 7);
        genotype.check().expect("minimal genotype is valid");
    }

    #[test]
    fn geometry() {
        let genotype = Genotype::minimal(3, 16, MNIST, 10).expect("valid settings");
        assert_eq!(
            (0..4).map(|k| genotype.cell_channels(k)).collect::<Vec<_>>(),
            vec![16, 32, 64, 128]
        );
        assert_eq!(genotype.level_resolution(0), (28, 28));
        assert_eq!(genotype.level_resolution(1), (14, 14));
        assert_eq!(genotype.level_resolution(2), (7, 7));
        assert_eq!(genotype.level_resolution(3), (4, 4));
        assert_eq!(genotype.cell_output_resolution(3), (4, 4));
        assert_eq!(
            (0..4).map(|k| genotype.cell_input_level(k)).collect::<Vec<_>>(),
            vec![0, 0, 1, 2]
        );
        let odd = Genotype::minimal(
            1,
            1,
            InputShape {
                channels: 3,
                height: 5,
                width: 2,
            },
            2,
        )
        .expect("valid settings");
        assert_eq!(odd.level_resolution(1), (3, 1));
        assert_eq!(odd.level_resolution(3), (1, 1));
        assert_eq!(odd.cell_channels(200), usize::MAX);
    }

    #[test]
    fn minimal_rejects_bad_settings() {
        let tiny = InputShape {
            channels: 1,
            height: 8,
            width: 8,
        };
        let err = Genotype::minimal(4, 16, tiny, 10).expect_err("too small");
        assert_eq!(
            err.to_string(),
            "input 8x8 is too small for 4 reductions: each reduction halves the resolution, so at most 3 fit"
        );
        Genotype::minimal(3, 16, tiny, 10).expect("2^3 fits 8x8");

        let err = Genotype::minimal(0, 0, MNIST, 10).expect_err("no channels");
        assert!(err.to_string().contains("channels must be at least 1"));
        let err = Genotype::minimal(0, 8, MNIST, 1).expect_err("one class");
        assert!(err.to_string().contains("classes must be at least 2, got 1"));
        let flat = InputShape { width: 0, ..MNIST };
        let err = Genotype::minimal(0, 8, flat, 10).expect_err("no width");
        assert!(err.to_string().contains("input width must be at least 1"));
        let err = Genotype::minimal(70, 8, MNIST, 10).expect_err("absurd reductions");
        assert!(err.to_string().contains("at most 4 fit"));
    }

    #[test]
    fn check_rejects_inconsistent_genotypes() {
        let good = Genotype::minimal(1, 8, MNIST, 10).expect("valid settings");

        let mut genotype = good.clone();
        genotype.format = 2;
        assert!(
            genotype
                .check()
                .expect_err("format")
                .to_string()
                .contains("format is 2")
        );

        let mut genotype = good.clone();
        genotype.cells.pop();
        let message = genotype.check().expect_err("cell count").to_string();
        assert!(message.contains("1 reductions need 2 cells, found 1"), "{message}");

        let mut genotype = good.clone();
        genotype.cells.swap(0, 1);
        let message = genotype.check().expect_err("order").to_string();
        assert!(message.contains("cell at position 0 has index 1"), "{message}");

        let mut genotype = good;
        genotype.cells[1].edges[2].ops.clear();
        let message = genotype.check().expect_err("bad cell").to_string();
        assert_eq!(message, "cell 1: edge 2 has no live ops");
    }
}
