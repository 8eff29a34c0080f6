//! The network's building blocks: the candidate ops and the blocks they are made of, their layers and
//! initialisation, the learned gates (pruners), the tensor names, and the optimiser.

pub mod blocks;
pub mod init;
pub(crate) mod layers;
pub mod ops;
pub mod optim;
pub mod pruner;
pub(crate) mod tensor_names;
