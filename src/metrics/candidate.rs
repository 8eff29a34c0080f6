//! A candidate mutation and the thin networks that score it, built from the genotype (docs/ALGORITHM.md §13.8).

use crate::genotype::{Genotype, GenotypeError, InputShape};
use crate::nn::init::InitScheme;
use crate::supernet::Supernet;
use tch::Device;

/// The genotype with one edge split. Its "off" network, the split without the two new edges, is the unsplit
/// genotype's network with the same weights by name (docs/ALGORITHM.md §7), so it is never built here.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// Cell of the split edge.
    pub cell: usize,
    /// Id of the split edge (in the unsplit genotype; it becomes the shortcut).
    pub edge: u32,
    /// The genotype after the split.
    pub on: Genotype,
    /// Ids of the new edges A (into the new node) and B (out of it).
    pub new_edges: [u32; 2],
}

impl Candidate {
    /// Splits `edge` of `cell` in a copy of `genotype`.
    pub fn split(genotype: &Genotype, cell: usize, edge: u32) -> Result<Candidate, GenotypeError> {
        let mut on = genotype.clone();
        let target = on
            .cells
            .get_mut(cell)
            .ok_or(GenotypeError::UnknownEdge { cell, edge })?;
        let split = target.split(edge)?;
        Ok(Candidate {
            cell,
            edge,
            on,
            new_edges: [split.edge_a, split.edge_b],
        })
    }

    /// The "on" network at `width`, for inputs of `input` (the genotype's own shape when `None`); gates start open.
    pub fn network(&self, width: usize, scheme: InitScheme, input: Option<InputShape>, device: Device) -> Supernet {
        scoring_network(&self.on, width, scheme, input, device)
    }
}

/// A scoring network of `genotype` at `width`, for inputs of `input` (the genotype's own shape when `None`).
pub fn scoring_network(
    genotype: &Genotype,
    width: usize,
    scheme: InitScheme,
    input: Option<InputShape>,
    device: Device,
) -> Supernet {
    let mut genotype = genotype.clone();
    if let Some(input) = input {
        genotype.input = input;
    }
    Supernet::builder(&genotype)
        .width(width)
        .init(scheme, 0)
        .device(device)
        .build()
}
