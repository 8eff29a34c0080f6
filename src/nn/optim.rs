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
    /// The decayed tensors first, then the others.
    params: Vec<Tensor>,
    buffers: Vec<Tensor>,
    started: Vec<bool>,
    /// How many of `params`, from the start, weight decay applies to.
    decayed: usize,
    settings: SgdSettings,
}

impl Sgd {
    /// SGD over `params`, a network's trainable tensors, all of them decayed.
    pub fn new(params: Vec<Tensor>, settings: SgdSettings) -> Self {
        Sgd::with_decay_groups(params, Vec::new(), settings)
    }

    /// SGD over `decayed` and `undecayed`, with the settings' weight decay on the first only (PyTorch's two
    /// parameter groups).
    pub fn with_decay_groups(decayed: Vec<Tensor>, undecayed: Vec<Tensor>, settings: SgdSettings) -> Self {
        let count = decayed.len();
        let params: Vec<Tensor> = decayed.into_iter().chain(undecayed).collect();
        let buffers = tch::no_grad(|| params.iter().map(Tensor::zeros_like).collect());
        let started = vec![false; params.len()];
        Sgd {
            params,
            buffers,
            started,
            decayed: count,
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
        let split = self.decayed;
        let undecayed = SgdSettings {
            weight_decay: 0.0,
            ..self.settings
        };
        let refused = native::sgd_step(
            &self.params[..split],
            &self.buffers[..split],
            &mut self.started[..split],
            self.settings,
        )
        .or_else(|| {
            native::sgd_step(
                &self.params[split..],
                &self.buffers[split..],
                &mut self.started[split..],
                undecayed,
            )
            .map(|index| split + index)
        });
        match refused {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_decay_moves_only_the_decayed_group() {
        let make = || Tensor::ones([3], (tch::Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
        let (decayed, undecayed) = (make(), make());
        let settings = SgdSettings {
            lr: 0.5,
            momentum: 0.9,
            weight_decay: 0.1,
            nesterov: false,
        };
        let mut sgd = Sgd::with_decay_groups(vec![decayed.shallow_clone()], vec![undecayed.shallow_clone()], settings);
        // A zero loss gradient: only weight decay moves a tensor, by lr · wd · p.
        (decayed.sum(tch::Kind::Float) * 0.0 + undecayed.sum(tch::Kind::Float) * 0.0).backward();
        sgd.step().unwrap();
        assert_eq!(Vec::<f32>::try_from(&decayed).unwrap(), vec![0.95f32; 3]);
        assert_eq!(Vec::<f32>::try_from(&undecayed).unwrap(), vec![1.0f32; 3]);
    }
}
