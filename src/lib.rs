//! SpiderNet architecture search: grow cells by edge splits, prune ops with learned gates, train the result.

// Tests may be long; every other function stays short enough to read in one screen (clippy.toml).
#![cfg_attr(not(test), warn(clippy::too_many_lines))]

pub mod artifacts;
pub mod bench;
pub mod data;
pub mod distributed;
pub mod doctor;
pub mod export;
pub mod genotype;
pub mod inference;
pub mod memory;
pub mod metrics;
pub mod nn;
pub mod report;
pub mod search;
pub(crate) mod seed;
pub mod show;
pub mod stats;
pub mod supernet;
pub mod system;
pub mod train;
pub mod validation;
