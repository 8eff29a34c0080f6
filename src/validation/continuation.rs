//! The ground truth of a split: a short continuation of training from the state's trained weights, with the split
//! (its new node and edges fresh, every other tensor inherited) and without it, evaluated on the search's
//! validation images. Both continuations of one replicate see the same images in the same order.

use crate::data::Split;
use crate::genotype::Genotype;
use crate::search::{Mutation, SearchConfig, inherit, renamed_for_splits};
use crate::seed::{self, Stream};
use crate::supernet::Supernet;
use crate::train::{self, Checkpointing, Evaluation, Schedule, Silent, TrainConfig};
use tch::{Device, Tensor};

/// What every continuation of one state shares.
pub(super) struct Continuation<'a> {
    /// The search whose state this is.
    pub search: &'a SearchConfig,
    /// The search's training images.
    pub train: &'a Split,
    /// The search's validation images.
    pub validation: &'a Split,
    /// Epochs of each continuation.
    pub epochs: usize,
    /// Its learning-rate schedule.
    pub schedule: Schedule,
    /// Images per epoch [default: all of `train`].
    pub samples: Option<usize>,
    /// Where the networks run.
    pub device: Device,
}

/// Purposes within one replicate's [`Stream::Continuation`] indices.
const SUBSET: u64 = 0;
const INIT: u64 = 1;
const BATCH_ORDER: u64 = 2;

fn index(replicate: usize, purpose: u64) -> u64 {
    (replicate as u64) << 8 | purpose
}

impl Continuation<'_> {
    /// The recipe of a continuation: the search phases' own, for `epochs` epochs with `schedule`, without
    /// deadheading (so that only the split differs between the two networks).
    fn recipe(&self) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs,
            schedule: self.schedule,
            deadhead: false,
            ..self.search.train.clone()
        }
    }

    /// The seeded subset of training images of `replicate`; None when it trains on all of them.
    fn subset(&self, replicate: usize) -> Option<Split> {
        let k = self.samples.filter(|&k| k < self.train.len())?;
        let mut rng = seed::rng(self.search.seed, Stream::Continuation, index(replicate, SUBSET));
        Some(self.train.hold_out(k as f64 / self.train.len() as f64, &mut rng).1)
    }

    /// Validation accuracy and loss after `replicate`'s continuation of `genotype` from `trained` (the state's
    /// tensors, named for the state's genotype); with `split`, `genotype` is the state's genotype grown by it.
    pub fn evaluate(
        &self,
        genotype: &Genotype,
        trained: &[(String, Tensor)],
        split: Option<&Mutation>,
        replicate: usize,
    ) -> anyhow::Result<Evaluation> {
        let recipe = self.recipe();
        let mut net = Supernet::builder(genotype)
            .seed(seed::derive(
                self.search.seed,
                Stream::Continuation,
                index(replicate, INIT),
            ))
            .pruner(self.search.pruner_for(recipe.epochs))
            .device(self.device)
            .build();
        let named: Vec<(String, Tensor)> = trained.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect();
        let renamed = match split {
            Some(mutation) => renamed_for_splits(named, std::slice::from_ref(mutation)),
            None => named,
        };
        inherit(&mut net, &renamed);
        let order_seed = seed::derive(self.search.seed, Stream::Continuation, index(replicate, BATCH_ORDER));
        let subset = self.subset(replicate);
        train::train(
            &mut net,
            subset.as_ref().unwrap_or(self.train),
            None,
            &recipe,
            order_seed,
            &mut Silent,
            Checkpointing::default(),
        )?;
        train::evaluate(&net, self.validation, recipe.eval_batch_size)
    }
}
