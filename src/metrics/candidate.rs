//! A candidate mutation and the thin networks that score it, built from the genotype (docs/ALGORITHM.md §13.8).

use crate::genotype::{Genotype, GenotypeError, InputShape};
use crate::init::InitScheme;
use crate::pruner::PrunerConfig;
use crate::supernet::Supernet;
use tch::Device;

/// The genotype with one edge split, and the two new edges whose toggling gives the "off" network.
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

    /// The "on" network at `width`, for inputs of `input` (the genotype's own shape when `None`).
    /// Gates start open; the caller toggles the new edges with `set_off`.
    pub fn network(&self, width: usize, scheme: InitScheme, input: Option<InputShape>, device: Device) -> Supernet {
        scoring_network(&self.on, width, scheme, input, device)
    }

    /// Switches the two new edges off (the "off" network) or on again; the weights are shared.
    pub fn set_off(&self, net: &mut Supernet, off: bool) -> Result<(), GenotypeError> {
        for edge in self.new_edges {
            net.set_edge_enabled(self.cell, edge, !off)?;
        }
        Ok(())
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
    Supernet::new(&genotype, width, scheme, PrunerConfig::default(), device, 0)
}
