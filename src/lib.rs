//! SpiderNet architecture search: grow cells by edge splits, prune ops with learned gates, train the result.

pub mod allocator;
pub mod artifacts;
pub mod atomic;
pub mod bench;
pub mod blocks;
pub mod data;
pub mod doctor;
pub mod export;
pub mod genotype;
pub mod hash;
pub mod init;
pub mod layers;
pub mod memory;
pub mod memory_probe;
pub mod metrics;
pub mod native;
pub mod ops;
pub mod optim;
pub mod pruner;
pub mod report;
pub mod search;
pub mod seed;
pub mod show;
pub mod supernet;
pub mod tensor_names;
pub mod train;
