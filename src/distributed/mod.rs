//! Many processes, one search (docs/DISTRIBUTED.md): PyTorch's c10d process group, joined from the launcher's
//! environment (torchrun, SLURM), with the collectives a data-parallel search needs. A run without a launcher is a
//! single process and never touches c10d.

mod check;
#[cfg(feature = "distributed")]
mod gloo;
#[cfg(not(feature = "distributed"))]
#[path = "no_gloo.rs"]
mod gloo;
mod launch;

pub use check::{CollectiveCheck, check_collectives};
pub use launch::{
    COMMON_VARIABLES, DEFAULT_TIMEOUT, Launch, LaunchError, Launcher, SLURM_VARIABLES, TORCHRUN_VARIABLES,
};

use anyhow::{Context, bail};
use std::sync::{Mutex, MutexGuard, OnceLock};
use tch::{Device, Kind, Tensor};

/// Bytes per all-reduce bucket: tensors are flattened into buckets of about this size, as PyTorch's DDP does.
pub const BUCKET_BYTES: usize = 25 << 20;

/// The processes of one run.
pub struct ProcessGroup {
    launch: Launch,
    // Behind a lock so that the process's group can be shared; collectives are issued from one thread anyway, in
    // the same order on every rank.
    gloo: Option<Mutex<gloo::GlooGroup>>,
    traffic: Mutex<Traffic>,
}

/// What this rank's collectives have carried so far: how many ran, the bytes of their payloads (each tensor or
/// buffer counted once, as this rank contributes it) and the wall time spent inside them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Traffic {
    /// Collective calls into c10d.
    pub collectives: u64,
    /// Bytes of the payloads.
    pub bytes: u64,
    /// Seconds spent in them, waiting for the other ranks included.
    pub seconds: f64,
}

/// The process's group, as PyTorch's default process group: joined once by `init_from_env`.
static PROCESS_GROUP: OnceLock<ProcessGroup> = OnceLock::new();

/// The process's group: the one `init_from_env` joined, or a single process when none was.
pub fn group() -> &'static ProcessGroup {
    PROCESS_GROUP.get_or_init(ProcessGroup::single)
}

/// Joins the group the launcher's environment describes and makes it the process's group; a process without a
/// launcher stays single. Only the first call (or `group`) decides.
pub fn init_from_env() -> anyhow::Result<&'static ProcessGroup> {
    if let Some(group) = PROCESS_GROUP.get() {
        return Ok(group);
    }
    let joined = ProcessGroup::from_env()?;
    Ok(PROCESS_GROUP.get_or_init(|| joined))
}

impl ProcessGroup {
    /// A single process: every collective is the identity.
    pub fn single() -> Self {
        ProcessGroup {
            launch: Launch::single(),
            gloo: None,
            traffic: Mutex::default(),
        }
    }

    /// Joins the group the environment describes, or stands alone when no launcher set one up.
    pub fn from_env() -> anyhow::Result<Self> {
        let launch = Launch::from_env().context("reading the distributed launch from the environment")?;
        Self::join(launch)
    }

    /// Joins the group `launch` describes (a single process joins nothing).
    pub fn join(launch: Launch) -> anyhow::Result<Self> {
        if !launch.is_distributed() {
            return Ok(ProcessGroup {
                launch,
                ..Self::single()
            });
        }
        if !cfg!(feature = "distributed") {
            bail!(
                "{} started {} processes, but this build has no distributed support: rebuild with the \
                 `distributed` feature (on by default)",
                launch.launcher,
                launch.world
            );
        }
        let gloo = gloo::GlooGroup::join(&launch).map_err(|message| {
            anyhow::anyhow!(
                "rank {} of {} could not join the group through the store at {} within {}: {message}",
                launch.rank,
                launch.world,
                launch.store_address(),
                humantime::format_duration(launch.timeout)
            )
        })?;
        Ok(ProcessGroup {
            launch,
            gloo: Some(Mutex::new(gloo)),
            traffic: Mutex::default(),
        })
    }

    /// What this rank's collectives have carried so far (nothing in a single process).
    pub fn traffic(&self) -> Traffic {
        *self.traffic.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs one collective over a payload of `bytes`, adding it to the traffic.
    fn counted<T>(&self, bytes: usize, collective: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
        let start = std::time::Instant::now();
        let outcome = collective();
        let mut traffic = self.traffic.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        traffic.collectives += 1;
        traffic.bytes += bytes as u64;
        traffic.seconds += start.elapsed().as_secs_f64();
        outcome
    }

    /// Where this process stands in the run.
    pub fn launch(&self) -> &Launch {
        &self.launch
    }

    /// This process's rank, from 0.
    pub fn rank(&self) -> usize {
        self.launch.rank
    }

    /// Processes in the run.
    pub fn world(&self) -> usize {
        self.launch.world
    }

    /// Whether this process is rank 0, which owns the run folder and speaks for the run.
    pub fn is_leader(&self) -> bool {
        self.launch.rank == 0
    }

    /// Sums each of `tensors` across the group, in place, through buckets of about `BUCKET_BYTES`.
    pub fn all_reduce_sum(&self, tensors: &[Tensor]) -> anyhow::Result<()> {
        self.all_reduce(tensors, Reduction::Sum)
    }

    /// Takes the element-wise maximum of each of `tensors` across the group, in place.
    pub fn all_reduce_max(&self, tensors: &[Tensor]) -> anyhow::Result<()> {
        self.all_reduce(tensors, Reduction::Max)
    }

    fn all_reduce(&self, tensors: &[Tensor], reduction: Reduction) -> anyhow::Result<()> {
        self.bucketed(tensors, "all-reduce", |gloo, flat| gloo.all_reduce(flat, reduction))
    }

    /// Overwrites each of `tensors` with rank `root`'s.
    pub fn broadcast(&self, tensors: &[Tensor], root: usize) -> anyhow::Result<()> {
        self.check_rank(root)?;
        self.bucketed(tensors, "broadcast", |gloo, flat| gloo.broadcast(flat, root))
    }

    /// Runs `collective` (named `what` in errors) on each bucket of `tensors`, flattened, and copies the results
    /// back; nothing in a single process.
    fn bucketed(
        &self,
        tensors: &[Tensor],
        what: &str,
        collective: impl Fn(&gloo::GlooGroup, &[Tensor]) -> Result<(), String>,
    ) -> anyhow::Result<()> {
        let Some(gloo) = self.gloo() else {
            return Ok(());
        };
        for bucket in buckets(tensors, BUCKET_BYTES) {
            let members = &tensors[bucket.clone()];
            let flat = flatten(members)?;
            let bytes = flat.numel() * flat.kind().elt_size_in_bytes();
            self.counted(bytes, || collective(&gloo, std::slice::from_ref(&flat)))
                .map_err(|message| self.failed(what, message))?;
            unflatten(&flat, members)?;
        }
        Ok(())
    }

    /// Every rank's `bytes`, in rank order (they may differ in length).
    pub fn all_gather_bytes(&self, bytes: &[u8]) -> anyhow::Result<Vec<Vec<u8>>> {
        let Some(gloo) = self.gloo() else {
            return Ok(vec![bytes.to_vec()]);
        };
        let length = Tensor::from_slice(&[bytes.len() as i64]);
        let lengths: Vec<Tensor> = (0..self.world()).map(|_| length.zeros_like()).collect();
        self.counted(8, || gloo.all_gather(&length, &lengths))
            .map_err(|message| self.failed("all-gather", message))?;
        let lengths: Vec<usize> = lengths.iter().map(|l| l.int64_value(&[0]) as usize).collect();
        let longest = lengths.iter().copied().max().unwrap_or(0).max(1);
        let mut padded = bytes.to_vec();
        padded.resize(longest, 0);
        let input = Tensor::from_slice(&padded);
        let outputs: Vec<Tensor> = (0..self.world()).map(|_| input.zeros_like()).collect();
        self.counted(longest, || gloo.all_gather(&input, &outputs))
            .map_err(|message| self.failed("all-gather", message))?;
        outputs
            .iter()
            .zip(lengths)
            .map(|(tensor, length)| {
                let all = Vec::<u8>::try_from(tensor).context("reading gathered bytes")?;
                Ok(all[..length].to_vec())
            })
            .collect()
    }

    /// Rank `root`'s `bytes` on every rank (the others' arguments are ignored).
    pub fn broadcast_bytes(&self, bytes: &[u8], root: usize) -> anyhow::Result<Vec<u8>> {
        let Some(gloo) = self.gloo() else {
            return Ok(bytes.to_vec());
        };
        self.check_rank(root)?;
        let length = Tensor::from_slice(&[bytes.len() as i64]);
        self.counted(8, || gloo.broadcast(std::slice::from_ref(&length), root))
            .map_err(|message| self.failed("broadcast", message))?;
        let length = length.int64_value(&[0]) as usize;
        let mut padded = bytes.to_vec();
        padded.resize(length.max(1), 0);
        let tensor = Tensor::from_slice(&padded);
        self.counted(padded.len(), || gloo.broadcast(std::slice::from_ref(&tensor), root))
            .map_err(|message| self.failed("broadcast", message))?;
        let all = Vec::<u8>::try_from(&tensor).context("reading broadcast bytes")?;
        Ok(all[..length].to_vec())
    }

    /// Whether `flag` is true on any rank.
    pub fn any(&self, flag: bool) -> anyhow::Result<bool> {
        if self.gloo.is_none() {
            return Ok(flag);
        }
        let tensor = Tensor::from_slice(&[flag as i64]);
        self.all_reduce_max(std::slice::from_ref(&tensor))?;
        Ok(tensor.int64_value(&[0]) != 0)
    }

    /// Sums each of `values` across the group, in place.
    pub fn sum_f64(&self, values: &mut [f64]) -> anyhow::Result<()> {
        if self.gloo.is_none() {
            return Ok(());
        }
        let tensor = Tensor::from_slice(values);
        self.all_reduce_sum(std::slice::from_ref(&tensor))?;
        values.copy_from_slice(&Vec::<f64>::try_from(&tensor)?);
        Ok(())
    }

    /// Rank 0's `value` on every rank: how a decision taken on one rank's measurements becomes everyone's. It
    /// travels as CBOR, which keeps every f64 (NaN and infinities included) bit for bit.
    pub fn decide<T: serde::Serialize + serde::de::DeserializeOwned>(&self, value: T) -> anyhow::Result<T> {
        if self.gloo.is_none() {
            return Ok(value);
        }
        let mut mine = Vec::new();
        ciborium::into_writer(&value, &mut mine).context("encoding a decision")?;
        let bytes = self.broadcast_bytes(&mine, 0)?;
        if self.is_leader() {
            return Ok(value);
        }
        ciborium::from_reader(bytes.as_slice()).context("reading rank 0's decision")
    }

    /// Rank 0's outcome on every rank: its value, or on the other ranks an error saying that rank 0 failed (its
    /// own error is in its output). For work that rank 0 alone can do, such as reading the run folder, so that the
    /// other ranks fail at once instead of waiting for a collective that never comes.
    pub fn share_outcome<T: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
        outcome: anyhow::Result<T>,
        what: &str,
    ) -> anyhow::Result<T> {
        if self.gloo.is_none() {
            return outcome;
        }
        match outcome {
            Ok(value) if self.is_leader() => self.decide(Some(value)).map(|v| v.expect("rank 0's own value")),
            Err(error) if self.is_leader() => {
                self.decide(None::<T>)?;
                Err(error)
            }
            _ => self
                .decide(None::<T>)?
                .with_context(|| format!("rank 0 failed {what}: its error is in its output")),
        }
    }

    /// Rank 0's named f32 tensors on every rank, or None where rank 0 has none: names and shapes go by `decide`,
    /// the values by broadcast into fresh tensors on `device`. The other ranks' `tensors` are not read.
    pub fn share_named_tensors(
        &self,
        tensors: Option<Vec<(String, Tensor)>>,
        device: Device,
    ) -> anyhow::Result<Option<Vec<(String, Tensor)>>> {
        if self.gloo.is_none() {
            return Ok(tensors);
        }
        let tensors = tensors.filter(|_| self.is_leader());
        if let Some((name, tensor)) = tensors.iter().flatten().find(|(_, t)| t.kind() != Kind::Float) {
            bail!(
                "{name} is {:?}: only f32 tensors are shared between ranks",
                tensor.kind()
            );
        }
        let layout: Option<Vec<(String, Vec<i64>)>> = tensors
            .as_ref()
            .map(|list| list.iter().map(|(name, t)| (name.clone(), t.size())).collect());
        let Some(layout) = self.decide(layout)? else {
            return Ok(None);
        };
        let tensors = match tensors {
            Some(tensors) => tensors,
            None => layout
                .into_iter()
                .map(|(name, shape)| (name, Tensor::zeros(shape, (Kind::Float, device))))
                .collect(),
        };
        self.broadcast(&tensors.iter().map(|(_, t)| t.shallow_clone()).collect::<Vec<_>>(), 0)?;
        Ok(Some(tensors))
    }

    /// The rows of a batch of `n` that this rank trains on: a contiguous share, the first `n mod world` ranks
    /// taking one more.
    pub fn shard(&self, n: usize) -> std::ops::Range<usize> {
        let (rank, world) = (self.rank(), self.world());
        let (base, extra) = (n / world, n % world);
        let start = rank * base + rank.min(extra);
        start..start + base + usize::from(rank < extra)
    }

    /// Fails unless every rank computes the same `fingerprint` of `what` (a network's weights, a decision); a single
    /// process computes nothing.
    pub fn ensure_identical(
        &self,
        what: &str,
        fingerprint: impl FnOnce() -> anyhow::Result<u64>,
    ) -> anyhow::Result<()> {
        if self.gloo.is_none() {
            return Ok(());
        }
        let all = self.all_gather_bytes(&fingerprint()?.to_le_bytes())?;
        if all.iter().any(|f| *f != all[0]) {
            let hex: Vec<String> = all
                .iter()
                .map(|f| {
                    format!(
                        "{:016x}",
                        u64::from_le_bytes(f.as_slice().try_into().unwrap_or_default())
                    )
                })
                .collect();
            bail!("the ranks' {what} drifted apart: fingerprints {}", hex.join(", "));
        }
        Ok(())
    }

    /// Returns when every rank has reached it.
    pub fn barrier(&self) -> anyhow::Result<()> {
        match self.gloo() {
            Some(gloo) => self
                .counted(0, || gloo.barrier())
                .map_err(|message| self.failed("barrier", message)),
            None => Ok(()),
        }
    }

    fn gloo(&self) -> Option<MutexGuard<'_, gloo::GlooGroup>> {
        self.gloo
            .as_ref()
            .map(|gloo| gloo.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    fn check_rank(&self, root: usize) -> anyhow::Result<()> {
        if root >= self.world() {
            bail!("rank {root} is not in a group of {}", self.world());
        }
        Ok(())
    }

    fn failed(&self, what: &str, message: String) -> anyhow::Error {
        anyhow::anyhow!(
            "{what} failed on rank {} of {} (store {}, timeout {}): {message}",
            self.rank(),
            self.world(),
            self.launch.store_address(),
            humantime::format_duration(self.launch.timeout)
        )
    }
}

/// A reduction across the group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    /// The sum.
    Sum = 0,
    /// The maximum.
    Max = 1,
}

/// Consecutive runs of `tensors` of one kind and device, each of at most `limit` bytes unless one tensor alone is
/// larger: the buckets a collective flattens.
pub fn buckets(tensors: &[Tensor], limit: usize) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, tensor) in tensors.iter().enumerate() {
        let size = tensor.numel() * tensor.kind().elt_size_in_bytes();
        let same = i > start && tensors[start].kind() == tensor.kind() && tensors[start].device() == tensor.device();
        if i > start && (!same || bytes + size > limit) {
            ranges.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < tensors.len() {
        ranges.push(start..tensors.len());
    }
    ranges
}

/// One contiguous CPU tensor holding every element of `tensors` (all of one kind), in order.
fn flatten(tensors: &[Tensor]) -> anyhow::Result<Tensor> {
    let kind: Kind = tensors[0].kind();
    let flat: Vec<Tensor> = tensors
        .iter()
        .map(|t| t.f_reshape([-1])?.f_to_device(Device::Cpu))
        .collect::<Result<_, _>>()?;
    Ok(Tensor::f_cat(&flat, 0)?.f_to_kind(kind)?.f_contiguous()?)
}

/// Copies `flat`'s elements back into `tensors`, in order.
fn unflatten(flat: &Tensor, tensors: &[Tensor]) -> anyhow::Result<()> {
    let mut offset = 0;
    for tensor in tensors {
        let count = tensor.numel() as i64;
        let part = flat.f_narrow(0, offset, count)?.f_view(tensor.size().as_slice())?;
        // Weights are leaves that require a gradient: the copy is not part of any graph.
        tch::no_grad(|| tensor.shallow_clone().f_copy_(&part))?;
        offset += count;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_split_at_the_limit_and_at_a_change_of_kind() {
        let f = |n: i64| Tensor::zeros([n], (Kind::Float, Device::Cpu));
        let tensors = [
            f(10),
            f(10),
            f(30),
            Tensor::zeros([5], (Kind::Int64, Device::Cpu)),
            f(1),
        ];
        // 40, 40 and 120 bytes of f32, then 40 of i64, then 4 of f32, at a limit of 80 bytes.
        assert_eq!(buckets(&tensors, 80), vec![0..2, 2..3, 3..4, 4..5]);
        assert_eq!(buckets(&tensors, 1 << 20), vec![0..3, 3..4, 4..5]);
        assert!(buckets(&[], 80).is_empty());
    }

    #[test]
    fn flattening_round_trips() {
        let a = Tensor::arange(6, (Kind::Float, Device::Cpu)).view([2, 3]);
        let b = Tensor::from_slice(&[7.0f32, 8.0]);
        let flat = flatten(&[a.shallow_clone(), b.shallow_clone()]).unwrap();
        assert_eq!(
            Vec::<f32>::try_from(&flat).unwrap(),
            vec![0., 1., 2., 3., 4., 5., 7., 8.]
        );
        let doubled = &flat * 2.0;
        unflatten(&doubled, &[a.shallow_clone(), b.shallow_clone()]).unwrap();
        assert_eq!(
            Vec::<f32>::try_from(&a.view([-1])).unwrap(),
            vec![0., 2., 4., 6., 8., 10.]
        );
        assert_eq!(Vec::<f32>::try_from(&b).unwrap(), vec![14., 16.]);
    }

    #[test]
    fn shards_cover_a_batch_in_order() {
        let rank_of = |rank, world| ProcessGroup {
            launch: Launch {
                rank,
                world,
                ..Launch::single()
            },
            ..ProcessGroup::single()
        };
        let shards = |n, world| (0..world).map(|r| rank_of(r, world).shard(n)).collect::<Vec<_>>();
        assert_eq!(shards(64, 2), vec![0..32, 32..64]);
        assert_eq!(shards(10, 3), vec![0..4, 4..7, 7..10]);
        assert_eq!(shards(2, 3), vec![0..1, 1..2, 2..2]);
        assert_eq!(ProcessGroup::single().shard(5), 0..5);
    }

    #[test]
    fn a_single_process_keeps_its_values() {
        let group = ProcessGroup::single();
        let t = Tensor::from_slice(&[1.5f64, -2.0]);
        group.all_reduce_sum(&[t.shallow_clone()]).unwrap();
        group.broadcast(&[t.shallow_clone()], 0).unwrap();
        assert_eq!(Vec::<f64>::try_from(&t).unwrap(), vec![1.5, -2.0]);
        assert_eq!(group.all_gather_bytes(b"abc").unwrap(), vec![b"abc".to_vec()]);
        assert_eq!(group.broadcast_bytes(b"xy", 0).unwrap(), b"xy".to_vec());
        group.barrier().unwrap();
        assert!(group.is_leader());
    }
}
