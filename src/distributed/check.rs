//! `spidernet doctor --distributed`: every collective run on known values across the group, checked exactly, and
//! timed. Rank r contributes `(r + 1) · (i mod 7 + 1)` at element i, so every result has a closed form.

use super::{BUCKET_BYTES, ProcessGroup};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// One collective's check on this rank.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CollectiveCheck {
    /// The collective: `all_reduce_sum`, `all_reduce_max`, `broadcast` or `all_gather_bytes`.
    pub collective: String,
    /// The element kind, as libtorch names it (`Float`, `Double`, `Int64`, …), or `bytes`.
    pub kind: String,
    /// Elements per rank (bytes for `all_gather_bytes`: this rank's).
    pub elements: usize,
    /// The sum of every element of the result, as f64 (for `all_gather_bytes`, of every byte gathered).
    pub result_sum: f64,
    /// Whether every element equals its closed form.
    pub ok: bool,
    /// Wall time of the collective.
    pub seconds: f64,
}

/// The kinds the tensor collectives are checked on.
const KINDS: [Kind; 4] = [Kind::Float, Kind::Double, Kind::Int64, Kind::BFloat16];

/// Runs every check on `group` (every rank must call it), in a fixed order.
pub fn check_collectives(group: &ProcessGroup) -> anyhow::Result<Vec<CollectiveCheck>> {
    let mut checks = Vec::new();
    let (rank, world) = (group.rank() as f64, group.world() as f64);
    for kind in KINDS {
        // One element, a few thousand, and (f32 only) 1.5 buckets' worth in two tensors, a bucket each.
        for &elements in &[1usize, 5_000, (BUCKET_BYTES * 3 / 2) / kind.elt_size_in_bytes()] {
            if kind != Kind::Float && elements > 5_000 {
                continue;
            }
            let halves = [elements / 2, elements - elements / 2];
            let tensors: Vec<Tensor> = halves
                .iter()
                .scan(0i64, |start, &n| {
                    let t = pattern(*start, n as i64, kind, rank + 1.0);
                    *start += n as i64;
                    Some(t)
                })
                .collect();
            let start = Instant::now();
            group.all_reduce_sum(&tensors)?;
            let seconds = start.elapsed().as_secs_f64();
            let expected = pattern(0, elements as i64, kind, world * (world + 1.0) / 2.0);
            checks.push(verdict(
                "all_reduce_sum",
                kind,
                elements,
                &join(&tensors),
                &expected,
                seconds,
            ));

            let tensor = pattern(0, elements as i64, kind, rank + 1.0);
            let start = Instant::now();
            group.all_reduce_max(std::slice::from_ref(&tensor))?;
            let seconds = start.elapsed().as_secs_f64();
            let expected = pattern(0, elements as i64, kind, world);
            checks.push(verdict("all_reduce_max", kind, elements, &tensor, &expected, seconds));

            let root = group.world() - 1;
            let tensor = pattern(0, elements as i64, kind, rank + 1.0);
            let start = Instant::now();
            group.broadcast(std::slice::from_ref(&tensor), root)?;
            let seconds = start.elapsed().as_secs_f64();
            let expected = pattern(0, elements as i64, kind, root as f64 + 1.0);
            checks.push(verdict("broadcast", kind, elements, &tensor, &expected, seconds));
        }
    }
    // Every rank sends a text of its own length; rank r's is "rank r;" repeated 1000·(r + 1) times.
    let text = |r: usize| format!("rank {r};").repeat(1000 * (r + 1)).into_bytes();
    let start = Instant::now();
    let gathered = group.all_gather_bytes(&text(group.rank()))?;
    let seconds = start.elapsed().as_secs_f64();
    let ok = gathered.len() == group.world() && gathered.iter().enumerate().all(|(r, bytes)| *bytes == text(r));
    checks.push(CollectiveCheck {
        collective: "all_gather_bytes".into(),
        kind: "bytes".into(),
        elements: text(group.rank()).len(),
        result_sum: gathered.iter().flatten().map(|&b| b as f64).sum(),
        ok,
        seconds,
    });
    let broadcast = group.broadcast_bytes(&text(group.rank()), 0)?;
    checks.push(CollectiveCheck {
        collective: "broadcast_bytes".into(),
        kind: "bytes".into(),
        elements: broadcast.len(),
        result_sum: broadcast.iter().map(|&b| b as f64).sum(),
        ok: broadcast == text(0),
        seconds: 0.0,
    });
    group.barrier()?;
    Ok(checks)
}

/// Elements `start..start + n` of the pattern, scaled: `scale · (i mod 7 + 1)`, of `kind`.
fn pattern(start: i64, n: i64, kind: Kind, scale: f64) -> Tensor {
    let base = Tensor::arange_start(start, start + n, (Kind::Int64, Device::Cpu)).remainder(7) + 1;
    (base.to_kind(Kind::Double) * scale).to_kind(kind)
}

fn join(tensors: &[Tensor]) -> Tensor {
    Tensor::cat(&tensors.iter().map(|t| t.reshape([-1])).collect::<Vec<_>>(), 0)
}

fn verdict(
    collective: &str,
    kind: Kind,
    elements: usize,
    got: &Tensor,
    expected: &Tensor,
    seconds: f64,
) -> CollectiveCheck {
    CollectiveCheck {
        collective: collective.into(),
        kind: format!("{kind:?}"),
        elements,
        result_sum: got.to_kind(Kind::Double).sum(Kind::Double).double_value(&[]),
        ok: got.equal(expected),
        seconds,
    }
}
