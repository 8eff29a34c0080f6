//! Train-free metrics (docs/ALGORITHM.md §7): NTK condition number, linear-region count, and candidate scoring.

pub mod candidate;
pub mod dump;
pub mod lrc;
pub mod ntk;
pub mod replicas;
pub mod rule;
pub mod score;
pub mod zero_cost;

pub use rule::DecisionRule;
pub use score::{
    CandidateEvent, CandidateReport, CellDecision, Metric, MetricsConfig, NetworkObserver, NtkMode, Role,
    SkippedCandidate, Unobserved,
};
