//! SGD with momentum and weight decay, bitwise as libtorch computes it (the update runs in `native`), but with its
//! momentum buffers readable and restorable by tensor name. libtorch's optimiser behind tch keeps them out of
//! reach, and a training resumed mid-way needs them to continue exactly where it stopped.

use crate::system::native::{self, SgdSettings};
use std::collections::HashMap;
use tch::Tensor;

/// Why an SGD step or saved momentum buffers fail.
#[derive(Debug, thiserror::Error)]
pub enum SgdError {
    /// libtorch refused an update (it threw).
    #[error("libtorch refused the SGD update of a tensor of shape {0:?}")]
    Update(Vec<i64>),
    /// A buffer names no trainable tensor of the network.
    #[error("momentum buffer {0} names no trainable tensor of the network")]
    Unknown(String),
    /// A buffer has another shape than its tensor.
    #[error("momentum buffer {name} has shape {found:?}, but its tensor has {needed:?}")]
    Shape {
        name: String,
        found: Vec<i64>,
        needed: Vec<i64>,
    },
}

/// SGD over the trainable tensors a network had when the optimiser was made. Tensors frozen since (dead ops) are
/// skipped, as libtorch skips tensors without a gradient.
pub struct Sgd {
    params: Vec<Tensor>,
    buffers: Vec<Tensor>,
    started: Vec<bool>,
    settings: SgdSettings,
}

impl Sgd {
    /// SGD over `params`, a network's trainable tensors.
    pub fn new(params: Vec<Tensor>, settings: SgdSettings) -> Self {
        let buffers = tch::no_grad(|| params.iter().map(Tensor::zeros_like).collect());
        let started = vec![false; params.len()];
        Sgd {
            params,
            buffers,
            started,
            settings,
        }
    }

    /// Sets the learning rate of the next steps.
    pub fn set_lr(&mut self, lr: f64) {
        self.settings.lr = lr;
    }

    /// Drops the gradients of the parameters (libtorch's `zero_grad`).
    pub fn zero_grad(&mut self) {
        native::clear_grads(&self.params);
    }

    /// One step over every parameter that has a gradient.
    pub fn step(&mut self) -> Result<(), SgdError> {
        match native::sgd_step(&self.params, &self.buffers, &mut self.started, self.settings) {
            Some(index) => Err(SgdError::Update(self.params[index].size())),
            None => Ok(()),
        }
    }

    /// The momentum buffers so far, each under the name its tensor has in `named`, the network's named tensors.
    pub fn momentum_buffers(&self, named: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
        let names: HashMap<usize, String> = named
            .into_iter()
            .map(|(name, tensor)| (tensor.data_ptr() as usize, name))
            .collect();
        (0..self.params.len())
            .filter(|&i| self.started[i])
            .filter_map(|i| {
                let name = names.get(&(self.params[i].data_ptr() as usize))?;
                Some((name.clone(), self.buffers[i].shallow_clone()))
            })
            .collect()
    }

    /// Restores momentum buffers that `momentum_buffers` gave for the same network, whose named tensors are
    /// `named`.
    pub fn load_momentum_buffers(
        &mut self,
        named: Vec<(String, Tensor)>,
        saved: Vec<(String, Tensor)>,
    ) -> Result<(), SgdError> {
        let positions: HashMap<usize, usize> = self
            .params
            .iter()
            .enumerate()
            .map(|(i, param)| (param.data_ptr() as usize, i))
            .collect();
        let named: HashMap<String, Tensor> = named.into_iter().collect();
        for (name, buffer) in saved {
            let position = named
                .get(&name)
                .and_then(|tensor| positions.get(&(tensor.data_ptr() as usize)))
                .copied()
                .ok_or_else(|| SgdError::Unknown(name.clone()))?;
            let target = &mut self.buffers[position];
            if buffer.size() != target.size() {
                return Err(SgdError::Shape {
                    name,
                    found: buffer.size(),
                    needed: target.size(),
                });
            }
            tch::no_grad(|| target.copy_(&buffer));
            self.started[position] = true;
        }
        Ok(())
    }
}
