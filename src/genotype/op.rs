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
}

impl Op {
    /// Every operation, in canonical order.
    pub const ALL: [Op; 7] = [
        Op::Identity,
        Op::MaxPool3x3,
        Op::AvgPool3x3,
        Op::SepConv3x3,
        Op::SepConv5x5,
        Op::DilConv3x3,
        Op::DilConv5x5,
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
}
