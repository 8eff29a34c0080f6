//! SpiderNet architecture search: grow cells by edge splits, prune ops with learned gates, train the result.

pub mod data;
pub mod genotype;
pub mod init;
pub mod metrics;
pub mod ops;
pub mod pruner;
pub mod seed;
pub mod supernet;
pub mod train;
