//! The command line's names for the library's choices: each value enum here maps onto a library type, which
//! carries no command-line derives of its own.

use clap::ValueEnum;
use spidernet::genotype::OpSet;
use spidernet::metrics::{DecisionRule, NtkMode};
use spidernet::nn::blocks::MemoryFormat;
use spidernet::search::{Profile, Strategy};
use spidernet::train::{DecayScope, Schedule};

/// `--profile`.
#[derive(Clone, Copy, ValueEnum)]
pub enum ProfileChoice {
    /// Minutes on a laptop CPU: few iterations, a short final training, lighter NTK sampling.
    Quick,
    /// The published settings.
    Reference,
}

impl From<ProfileChoice> for Profile {
    fn from(choice: ProfileChoice) -> Profile {
        match choice {
            ProfileChoice::Quick => Profile::Quick,
            ProfileChoice::Reference => Profile::Reference,
        }
    }
}

/// `--strategy`.
#[derive(Clone, Copy, ValueEnum)]
pub enum StrategyChoice {
    /// Train-free scoring by NTK condition number and linear regions.
    Spidernet,
    /// A uniformly random edge per cell, no scoring (a baseline).
    Random,
    /// No growth: the initial genotype goes straight to the final training (a baseline).
    None,
}

impl From<StrategyChoice> for Strategy {
    fn from(choice: StrategyChoice) -> Strategy {
        match choice {
            StrategyChoice::Spidernet => Strategy::Spidernet,
            StrategyChoice::Random => Strategy::Random,
            StrategyChoice::None => Strategy::Unchanged,
        }
    }
}

/// `--ntk`.
#[derive(Clone, Copy, ValueEnum)]
pub enum NtkChoice {
    /// κ over the non-null spectrum, in f64.
    Sound,
    /// The published f32 λ_max/λ_min.
    Faithful,
}

impl From<NtkChoice> for NtkMode {
    fn from(choice: NtkChoice) -> NtkMode {
        match choice {
            NtkChoice::Sound => NtkMode::Sound,
            NtkChoice::Faithful => NtkMode::Faithful,
        }
    }
}

/// `--ops`.
#[derive(Clone, Copy, ValueEnum)]
pub enum OpSetChoice {
    /// The published seven: identity, max and average pooling, sep-conv and dil-conv at 3×3 and 5×5.
    Published,
    /// Dense convolutions instead of the separable ones: identity, max and average pooling, ReLU–conv–BN at 1×1
    /// and 3×3.
    Dense,
}

impl From<OpSetChoice> for OpSet {
    fn from(choice: OpSetChoice) -> OpSet {
        match choice {
            OpSetChoice::Published => OpSet::Published,
            OpSetChoice::Dense => OpSet::Dense,
        }
    }
}

/// `--memory-format`.
#[derive(Clone, Copy, ValueEnum)]
pub enum MemoryFormatChoice {
    /// Channels-last on the CPU, NCHW on CUDA.
    Auto,
    /// NCHW (contiguous) everywhere.
    Nchw,
    /// Channels-last (NHWC strides, NCHW shape) everywhere.
    ChannelsLast,
}

impl From<MemoryFormatChoice> for MemoryFormat {
    fn from(choice: MemoryFormatChoice) -> MemoryFormat {
        match choice {
            MemoryFormatChoice::Auto => MemoryFormat::Auto,
            MemoryFormatChoice::Nchw => MemoryFormat::Nchw,
            MemoryFormatChoice::ChannelsLast => MemoryFormat::ChannelsLast,
        }
    }
}

/// The help of a flag whose default the profile sets: `what`, then each profile's value as `value` gives it, under
/// the name `--profile` takes.
pub fn per_profile(what: &str, value: impl Fn(Profile) -> String) -> String {
    let defaults: Vec<String> = ProfileChoice::value_variants()
        .iter()
        .filter_map(|&choice| {
            let name = choice.to_possible_value()?.get_name().to_string();
            Some(format!("{name}: {}", value(choice.into())))
        })
        .collect();
    format!("{what} [{}]", defaults.join(", "))
}

/// Parses a `--metrics` decision rule.
pub fn parse_rule(text: &str) -> Result<DecisionRule, String> {
    DecisionRule::parse(text).map_err(|error| error.to_string())
}

/// `--schedule`.
#[derive(Clone, Copy, ValueEnum)]
pub enum ScheduleChoice {
    /// A cosine stepped once per epoch (the reference's).
    EpochCosine,
    /// A cosine computed per batch, reaching 0 at the last batch.
    Cosine,
    /// Flat through the warm-up, then linear to 0 at the last batch.
    Linear,
}

impl From<ScheduleChoice> for Schedule {
    fn from(choice: ScheduleChoice) -> Schedule {
        match choice {
            ScheduleChoice::EpochCosine => Schedule::EpochCosine,
            ScheduleChoice::Cosine => Schedule::Cosine,
            ScheduleChoice::Linear => Schedule::Linear,
        }
    }
}

/// `--decay`.
#[derive(Clone, Copy, ValueEnum)]
pub enum DecayChoice {
    /// Every trainable tensor (the reference's).
    All,
    /// Convolution and linear weights only.
    Weights,
}

impl From<DecayChoice> for DecayScope {
    fn from(choice: DecayChoice) -> DecayScope {
        match choice {
            DecayChoice::All => DecayScope::All,
            DecayChoice::Weights => DecayScope::Weights,
        }
    }
}
