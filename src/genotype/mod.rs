//! The architecture genotype as plain data: ops, edges, cells, edits, validation and JSON storage.

mod cell;
mod check;
mod edge;
mod edit;
mod error;
mod geometry;
mod json;
mod network;
mod op;

pub use cell::Cell;
pub use edge::Edge;
pub use edit::{DeadheadOutcome, Doomed, Removal, Split};
pub use error::GenotypeError;
pub use geometry::{
    BATCH_NORM_EPS, BATCH_NORM_MOMENTUM, CellInput, ConvBlock, ConvShape, NetworkShape, STEM_KERNEL, batch_norm_count,
};
pub use network::{Genotype, InputShape};
pub use op::{Op, OpSet};
