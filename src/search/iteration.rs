//! One search iteration (docs/ALGORITHM.md §1): train the supernet with deadheading, then one
//! mutation pass over every cell; and the rules around it: the data splits the search uses, the fresh networks of
//! each phase, when the loop stops, and what the search alone sums up to.

use super::mutate::Strategy;
use super::record::{Checkpoint, GateOpen, IterationRecord, Summary};
use super::settings::SearchConfig;
use super::{Phase, SearchObserver, inherit, mutate, time_cost};
use crate::data::{Dataset, Split};
use crate::genotype::Genotype;
use crate::seed::{self, Stream};
use crate::supernet::OpRef;
use crate::supernet::Supernet;
use crate::train::{self, Checkpointing, EpochReport};
use anyhow::Context;
use std::time::Instant;
use tch::Device;

/// The splits a search trains, validates and tests on.
pub(crate) struct SearchData {
    /// The images the search phases train on.
    pub search_train: Split,
    /// The images held out to validate each phase.
    pub validation: Split,
}

pub(crate) fn search_data(data: &Dataset, config: &SearchConfig) -> SearchData {
    let mut rng = seed::rng(config.seed, Stream::DataSplit, seed::data_split::SEARCH);
    let (rest, validation) = data.train.hold_out(config.validation_fraction, &mut rng);
    let search_train = match config.search_samples {
        Some(k) if k < rest.len() => rest.hold_out(k as f64 / rest.len() as f64, &mut rng).1,
        _ => rest,
    };
    SearchData {
        search_train,
        validation,
    }
}

/// Counts the iterations without an applied split and decides whether the loop stops after `record`.
pub(super) fn update_stop(checkpoint: &mut Checkpoint, record: &IterationRecord, config: &SearchConfig) {
    let applied = record.mutations.iter().filter(|m| m.applied).count();
    let refused = record.mutations.len() - applied;
    checkpoint.stale = if applied == 0 && record.iteration > 0 {
        checkpoint.stale + 1
    } else {
        0
    };
    checkpoint.stopped = if record.iteration >= config.iterations {
        Some(format!("reached {} iterations", config.iterations))
    } else if applied == 0 && refused > 0 {
        let untimely = record
            .mutations
            .iter()
            .any(|m| m.refusal() == Some("not worth its time"));
        Some(if untimely {
            "no chosen split is worth its time: the rest of the budget goes to the final training".to_string()
        } else {
            "the memory budget leaves no room for the chosen splits".to_string()
        })
    } else if checkpoint.stale >= config.patience {
        Some(format!(
            "no mutation was accepted for {} iterations in a row",
            checkpoint.stale
        ))
    } else {
        None
    };
}

/// Why a search with `settings` ends before its first iteration, if it does: strategy none grows nothing by
/// definition, and a scored search whose splits are weighed against their time with an expected gain ≤ 0 can make
/// none ([`time_cost::a_split_can_pay`]), so it spends nothing on scoring them.
pub(super) fn grows_nothing(settings: &SearchConfig) -> Option<String> {
    match (settings.strategy, settings.weighed_split_gain()) {
        (Strategy::Unchanged, _) => Some("strategy none: the initial genotype is trained as it is".to_string()),
        (Strategy::Spidernet, Some(gain)) if !time_cost::a_split_can_pay(gain) => Some(format!(
            "no split can be worth its time: a split only adds work, and its expected gain is {:+.3} points \
             (--split-gain); the whole budget goes to the final training",
            100.0 * gain
        )),
        _ => None,
    }
}

/// The summary of the search alone: the final genotype's size and the time spent searching.
pub(super) fn search_summary(
    genotype: &Genotype,
    config: &SearchConfig,
    history: &[IterationRecord],
    stopped: String,
) -> Summary {
    Summary {
        stopped,
        iterations: history.iter().filter(|r| r.iteration > 0).count(),
        live_ops: genotype.live_op_count(),
        edges_per_cell: genotype.cells.iter().map(|c| c.edges.len()).collect(),
        parameters: genotype.parameter_count(),
        estimated_memory_bytes: config.memory_of(genotype).total(),
        test_accuracy: None,
        test_loss: None,
        search_training_seconds: history.iter().map(|r| r.training_seconds).sum(),
        search_scoring_seconds: history.iter().map(|r| r.scoring_seconds).sum(),
        final_training_seconds: 0.0,
        final_training_peak_rss_bytes: None,
        final_training_peak_device_bytes: None,
        final_training_samples: 0,
        final_epochs: 0,
        run_seconds: 0.0,
        final_train_images_per_second: None,
    }
}

/// What every phase of the search works on: the settings it follows, its data splits, and where it runs.
#[derive(Clone, Copy)]
pub(super) struct Ground<'a> {
    /// The settings followed now.
    pub config: &'a SearchConfig,
    /// The images the search trains and validates on.
    pub splits: &'a SearchData,
    /// Where the networks run.
    pub device: Device,
    /// The final epochs of the time budget's plan in force, if one was made.
    pub planned_final_epochs: Option<usize>,
}

/// One iteration: train the supernet (none for iteration 0), then one mutation pass over every cell.
/// With `--inherit-weights`, `inherited` holds the tensors the previous phase trained (renamed for the genotype
/// its pass grew); the iteration starts from them and leaves its own there.
pub(super) fn run_iteration(
    iteration: usize,
    on: &Ground,
    genotype: &mut Genotype,
    inherited: &mut Option<Vec<(String, tch::Tensor)>>,
    observer: &mut dyn SearchObserver,
) -> anyhow::Result<IterationRecord> {
    let Ground {
        config,
        splits,
        device,
        planned_final_epochs,
    } = *on;
    let start = Instant::now();
    let live_before = genotype.live_op_count();
    let phase = Phase::of_iteration(iteration);
    let trained = match phase {
        Phase::Premutation => PhaseTraining::default(),
        _ => train_phase(phase, on, genotype, inherited, observer)?,
    };
    let training_seconds = start.elapsed().as_secs_f64();
    let start = Instant::now();
    crate::system::allocator::release_freed_blocks();
    let (decisions, mutations) = mutate::mutation_pass(
        iteration,
        config,
        planned_final_epochs,
        &splits.search_train,
        genotype,
        device,
        observer,
    )?;
    if let Some(tensors) = inherited.take() {
        *inherited = Some(inherit::renamed_for_splits(tensors, &mutations));
    }
    let scoring_seconds = start.elapsed().as_secs_f64();
    let evaluation = trained.last_epoch.as_ref().and_then(|r| r.eval);
    let deadheaded = trained.deadheaded;
    Ok(IterationRecord {
        iteration,
        validation_accuracy: evaluation.map(|e| e.accuracy),
        validation_loss: evaluation.map(|e| e.loss),
        train_loss: trained.last_epoch.map(|r| r.train_loss),
        pruned_share: (phase != Phase::Premutation).then(|| deadheaded.len() as f64 / live_before.max(1) as f64),
        deadheaded,
        parameters: genotype.parameter_count(),
        memory: config.memory_of(genotype),
        memory_budget: config.memory_budget,
        live_ops: genotype.live_op_count(),
        edges_per_cell: genotype.cells.iter().map(|c| c.edges.len()).collect(),
        decisions,
        mutations,
        training_seconds,
        scoring_seconds,
        train_images_per_second: trained.images_per_second,
        gate_open: trained.gate_open,
        plans: Vec::new(),
    })
}

/// What a search phase's supernet training leaves for its record.
#[derive(Default)]
struct PhaseTraining {
    last_epoch: Option<EpochReport>,
    deadheaded: Vec<OpRef>,
    images_per_second: Option<f64>,
    gate_open: Vec<GateOpen>,
}

/// Trains `phase`'s supernet of `genotype` (fresh, or from `inherited`), and leaves the genotype its deadheading
/// left, and with `--inherit-weights` the trained tensors, in their places.
fn train_phase(
    phase: Phase,
    on: &Ground,
    genotype: &mut Genotype,
    inherited: &mut Option<Vec<(String, tch::Tensor)>>,
    observer: &mut dyn SearchObserver,
) -> anyhow::Result<PhaseTraining> {
    let Ground {
        config, splits, device, ..
    } = *on;
    crate::system::allocator::release_freed_blocks();
    let mut net = fresh_network(genotype, config, device, phase);
    if let Some(tensors) = inherited.as_deref() {
        inherit::inherit(&mut net, tensors);
    }
    observer.phase(phase, config.train.epochs);
    let train_seed = seed::derive(config.seed, Stream::BatchOrder, phase.seed_index());
    let reports = train::train(
        &mut net,
        &splits.search_train,
        Some(&splits.validation),
        &config.train,
        train_seed,
        observer,
        Checkpointing::default(),
    )
    .with_context(|| format!("{phase}"))?;
    *genotype = net.genotype().clone();
    if config.inherit_weights {
        *inherited = Some(net.named_tensors().into_iter().map(|(n, t)| (n, t.detach())).collect());
    }
    let gate_open = net
        .gate_histories()
        .into_iter()
        .map(|(op, history)| GateOpen {
            op,
            open: history.total_open(),
        })
        .collect();
    Ok(PhaseTraining {
        images_per_second: train::images_per_second(&reports, splits.search_train.len(), config.train.batch_size),
        deadheaded: reports.iter().flat_map(|r| r.deadhead.killed.clone()).collect(),
        last_epoch: reports.last().cloned(),
        gate_open,
    })
}

/// The network of `genotype` with fresh PyTorch-default weights, seeded from the run's seed and `phase`, with the
/// phase's deadhead window.
pub(crate) fn fresh_network(genotype: &Genotype, config: &SearchConfig, device: Device, phase: Phase) -> Supernet {
    let init_seed = seed::derive(config.seed, Stream::Init, phase.seed_index());
    let epochs = match phase {
        Phase::Final => config.final_train.epochs,
        Phase::Premutation | Phase::Search(_) => config.train.epochs,
    };
    let pruner = config.pruner_for(epochs);
    Supernet::builder(genotype)
        .seed(init_seed)
        .pruner(pruner)
        .device(device)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genotype::InputShape;
    use crate::search::budget::TimeBudget;
    use crate::search::record::Mutation;
    use crate::search::{Profile, SearchConfig};

    fn record(iteration: usize, mutations: Vec<Mutation>) -> IterationRecord {
        IterationRecord {
            iteration,
            validation_accuracy: None,
            validation_loss: None,
            train_loss: None,
            deadheaded: Vec::new(),
            pruned_share: None,
            parameters: 0,
            memory: Default::default(),
            memory_budget: 0,
            live_ops: 0,
            edges_per_cell: Vec::new(),
            decisions: Vec::new(),
            mutations,
            training_seconds: 0.0,
            scoring_seconds: 0.0,
            train_images_per_second: None,
            gate_open: Vec::new(),
            plans: Vec::new(),
        }
    }

    fn split(applied: bool, expected_gain: Option<f64>) -> Mutation {
        Mutation {
            cell: 0,
            edge: 0,
            from: 0,
            to: 1,
            estimated_bytes: 0,
            applied,
            time: expected_gain.map(|gain| time_cost::weigh(0.01, 0.012, None, gain)),
        }
    }

    #[test]
    fn a_pass_whose_splits_are_all_refused_ends_the_search_and_says_why() {
        let config = SearchConfig::new(Profile::Quick, "digits", 1, 4, 0);
        let start = || Checkpoint::start(Genotype::minimal(1, 4, InputShape::new(1, 8, 8), 10).unwrap(), 0);
        let mut checkpoint = start();
        update_stop(
            &mut checkpoint,
            &record(1, vec![split(false, Some(0.0)), split(false, None)]),
            &config,
        );
        let reason = checkpoint.stopped.unwrap();
        assert!(reason.starts_with("no chosen split is worth its time"), "{reason}");
        let mut checkpoint = start();
        update_stop(&mut checkpoint, &record(1, vec![split(false, None)]), &config);
        assert!(checkpoint.stopped.unwrap().contains("memory budget"));
        let mut checkpoint = start();
        update_stop(
            &mut checkpoint,
            &record(1, vec![split(false, Some(0.0)), split(true, Some(1.0))]),
            &config,
        );
        assert_eq!(checkpoint.stopped, None, "one split was worth its time");
        assert_eq!(checkpoint.stale, 0);
    }

    #[test]
    fn a_scored_search_whose_splits_cannot_pay_for_their_time_grows_nothing() {
        let budgeted = |profile, strategy, gain| {
            let mut config = SearchConfig::new(profile, "digits", 1, 4, 0);
            config.strategy = strategy;
            config.split_gain = gain;
            config.time_budget = Some(TimeBudget {
                seconds: 1800.0,
                max_iterations: 6,
                max_epochs_per_iteration: 2,
            });
            config
        };
        let quick = budgeted(Profile::Quick, Strategy::Spidernet, Profile::Quick.split_gain());
        let reason = grows_nothing(&quick).expect("the measured gain is negative");
        assert!(reason.starts_with("no split can be worth its time"), "{reason}");
        assert!(reason.contains("-0.058 points"), "{reason}");
        assert!(grows_nothing(&budgeted(Profile::Quick, Strategy::Spidernet, Some(0.0))).is_some());
        assert_eq!(
            grows_nothing(&budgeted(Profile::Quick, Strategy::Spidernet, Some(0.001))),
            None,
            "a positive gain may pay for a split: the splits are scored and weighed"
        );
        assert_eq!(
            grows_nothing(&budgeted(Profile::Quick, Strategy::Spidernet, None)),
            None
        );
        assert_eq!(
            grows_nothing(&budgeted(
                Profile::Reference,
                Strategy::Spidernet,
                Profile::Reference.split_gain()
            )),
            None,
            "the reference profile grows as published"
        );
        assert_eq!(
            grows_nothing(&budgeted(Profile::Quick, Strategy::Random, Some(-1.0))),
            None,
            "random splits are not weighed"
        );
        let mut unbudgeted = quick.clone();
        unbudgeted.time_budget = None;
        assert_eq!(
            grows_nothing(&unbudgeted),
            None,
            "without a budget time costs no accuracy"
        );
        let none = budgeted(Profile::Quick, Strategy::Unchanged, None);
        assert!(grows_nothing(&none).unwrap().starts_with("strategy none"));
    }
}
