//! Errors raised when building, editing, validating or storing a genotype. A variant that wraps a cause names only
//! its own context and hands the cause on as its `source`, so that a chain printed with `{:#}` shows each cause once.

use std::path::PathBuf;

use super::op::Op;

/// Everything that can go wrong with a genotype.
#[derive(Debug, thiserror::Error)]
pub enum GenotypeError {
    /// An edge id that the cell does not contain.
    #[error("cell {cell}: no edge with id {edge}")]
    UnknownEdge { cell: usize, edge: u32 },
    /// An op that is not (or no longer) live on the edge.
    #[error("cell {cell}, edge {edge}: op {op} is not live on this edge")]
    OpNotLive { cell: usize, edge: u32, op: Op },
    /// Killing the op would cut the last input-to-output path.
    #[error("cell {cell}, edge {edge}: killing op {op} would leave no path from an input node to the output")]
    WouldDisconnect { cell: usize, edge: u32, op: Op },
    /// Edge ids ran out.
    #[error("cell {cell}: edge ids are exhausted (next id {next_edge_id})")]
    EdgeIdsExhausted { cell: usize, next_edge_id: u32 },
    /// A cell invariant does not hold.
    #[error("cell {cell}: {reason}")]
    InvalidCell { cell: usize, reason: String },
    /// A genotype-level setting is out of range.
    #[error("invalid genotype: {0}")]
    InvalidGenotype(String),
    /// The input resolution cannot be halved `reductions` times.
    #[error(
        "input {height}x{width} is too small for {reductions} reductions: each reduction halves the resolution, so at most {max_reductions} fit"
    )]
    InputTooSmall {
        height: usize,
        width: usize,
        reductions: usize,
        max_reductions: usize,
    },
    /// The text is not a well-formed genotype document.
    #[error("genotype JSON{}", location.as_deref().map(|at| format!(" ({at})")).unwrap_or_default())]
    Json {
        location: Option<String>,
        #[source]
        source: serde_json::Error,
    },
    /// Reading a genotype file failed.
    #[error("cannot read genotype file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Writing a genotype file failed.
    #[error("cannot write genotype file {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A genotype file was read but its content is wrong.
    #[error("genotype file {}", path.display())]
    InFile {
        path: PathBuf,
        #[source]
        source: Box<GenotypeError>,
    },
}
