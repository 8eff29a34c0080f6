//! Candidate operations an edge can carry.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A candidate operation on a cell edge; the derived order is the canonical `Op::ALL` order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Identity,
    // snake_case alone would give "max_pool3x3"; the digits need their own word.
    #[serde(rename = "max_pool_3x3")]
    MaxPool3x3,
    #[serde(rename = "avg_pool_3x3")]
    AvgPool3x3,
    #[serde(rename = "sep_conv_3x3")]
    SepConv3x3,
    #[serde(rename = "sep_conv_5x5")]
    SepConv5x5,
    #[serde(rename = "dil_conv_3x3")]
    DilConv3x3,
    #[serde(rename = "dil_conv_5x5")]
    DilConv5x5,
    /// ReLU → dense 1×1 convolution → batch norm (the dense op set only).
    #[serde(rename = "conv_1x1")]
    Conv1x1,
    /// ReLU → dense 3×3 convolution → batch norm (the dense op set only).
    #[serde(rename = "conv_3x3")]
    Conv3x3,
}

impl Op {
    /// Every operation of every op set, in canonical order.
    pub const ALL: [Op; 9] = [
        Op::Identity,
        Op::MaxPool3x3,
        Op::AvgPool3x3,
        Op::SepConv3x3,
        Op::SepConv5x5,
        Op::DilConv3x3,
        Op::DilConv5x5,
        Op::Conv1x1,
        Op::Conv3x3,
    ];

    /// The snake_case name, identical to the serialized form.
    pub fn name(self) -> &'static str {
        match self {
            Op::Identity => "identity",
            Op::MaxPool3x3 => "max_pool_3x3",
            Op::AvgPool3x3 => "avg_pool_3x3",
            Op::SepConv3x3 => "sep_conv_3x3",
            Op::SepConv5x5 => "sep_conv_5x5",
            Op::DilConv3x3 => "dil_conv_3x3",
            Op::DilConv5x5 => "dil_conv_5x5",
            Op::Conv1x1 => "conv_1x1",
            Op::Conv3x3 => "conv_3x3",
        }
    }
}

/// The candidate ops a new edge holds (`--ops`, docs/ALGORITHM.md §4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpSet {
    /// The published seven: identity, the two pools, two separable and two dilated convolutions.
    #[default]
    Published,
    /// Dense convolutions in place of the depthwise-separable ones, as NAS-Bench-201's op set: identity, the two
    /// pools, and ReLU–conv–BN at 1×1 and 3×3.
    Dense,
}

impl OpSet {
    /// Its ops, in canonical order.
    pub fn ops(self) -> &'static [Op] {
        match self {
            OpSet::Published => &Op::ALL[..7],
            OpSet::Dense => &[Op::Identity, Op::MaxPool3x3, Op::AvgPool3x3, Op::Conv1x1, Op::Conv3x3],
        }
    }

    /// Whether it is the published set (which genotype files leave unwritten).
    pub fn is_published(&self) -> bool {
        *self == OpSet::Published
    }

    /// The name `--ops` takes.
    pub fn name(self) -> &'static str {
        match self {
            OpSet::Published => "published",
            OpSet::Dense => "dense",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_serde_names() {
        for op in Op::ALL {
            let json = serde_json::to_string(&op).expect("op serializes");
            assert_eq!(json, format!("\"{}\"", op.name()));
            let back: Op = serde_json::from_str(&json).expect("op deserializes");
            assert_eq!(back, op);
        }
    }

    #[test]
    fn all_is_sorted_and_distinct() {
        assert!(Op::ALL.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(Op::ALL[0], Op::Identity);
        assert_eq!(Op::ALL[6], Op::DilConv5x5);
    }

    #[test]
    fn op_sets_are_sorted_subsets_and_the_published_one_has_the_seven() {
        for set in [OpSet::Published, OpSet::Dense] {
            assert!(set.ops().windows(2).all(|pair| pair[0] < pair[1]), "{set:?}");
            assert_eq!(set.ops()[0], Op::Identity);
        }
        assert_eq!(OpSet::Published.ops().len(), 7);
        assert!(!OpSet::Published.ops().contains(&Op::Conv3x3));
        assert!(
            OpSet::Dense
                .ops()
                .iter()
                .all(|op| !op.name().contains("sep") && !op.name().contains("dil"))
        );
        assert_eq!(serde_json::to_string(&OpSet::Dense).unwrap(), "\"dense\"");
    }
}
