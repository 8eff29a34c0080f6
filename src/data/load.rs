//! Loading a `--data` source with the options of the command line, and caching its training statistics.

use super::{DataOptions, Dataset, Normalization, channel_statistics, source};
use crate::system::atomic::write_atomic;
use crate::system::hash::stable_hash;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A loaded data set and how it was loaded.
#[derive(Debug)]
pub struct Loaded {
    /// The normalised data set.
    pub dataset: Dataset,
    /// Whether the normalisation statistics came from the cache.
    pub statistics_cached: bool,
    /// Seconds spent loading.
    pub seconds: f64,
}

/// Where the statistics cache lives: `$SPIDERNET_CACHE/stats`, else `$XDG_CACHE_HOME/spidernet/stats`, else
/// `~/.cache/spidernet/stats`; `None` when none of them is set.
pub fn cache_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let root = var("SPIDERNET_CACHE")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("spidernet")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("spidernet")))?;
    Some(root.join("stats"))
}

/// Loads the data set `spec` with `options`, splitting by `seed`; statistics are read from and written to
/// `cache` when given (a cache that cannot be read or written only costs the computation).
pub fn load(spec: &str, options: &DataOptions, seed: u64, cache: Option<&Path>) -> anyhow::Result<Loaded> {
    let start = Instant::now();
    let source = source(spec, options)?;
    let raw = source.read(seed)?;
    let channels = raw.train_images.size()[1] as usize;
    let cache_file = cache
        .zip(source.fingerprint(seed))
        .map(|(dir, fingerprint)| dir.join(format!("{:016x}.json", stable_hash(fingerprint.as_bytes()))));
    let cached = cache_file
        .as_deref()
        .and_then(read_cached)
        .filter(|s| s.mean.len() == channels);
    let statistics_cached = cached.is_some();
    let stats = match cached {
        Some(stats) => stats,
        None => {
            let stats = channel_statistics(&raw.train_images);
            if let Some(file) = &cache_file
                && let Err(error) = write_cache(file, &stats)
            {
                tracing::warn!("cannot cache data statistics in {}: {error:#}", file.display());
            }
            stats
        }
    };
    let mut dataset = raw.normalize(stats);
    if let Some(flip) = options.flip {
        dataset.horizontal_flip = flip;
    }
    Ok(Loaded {
        dataset,
        statistics_cached,
        seconds: start.elapsed().as_secs_f64(),
    })
}

fn write_cache(file: &Path, stats: &Normalization) -> anyhow::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_atomic(file, serde_json::to_string(stats)?.as_bytes())?;
    Ok(())
}

/// Reads cached statistics; serde_json's `float_roundtrip` makes them bit-identical to the computed ones, so a
/// cache hit cannot change a seeded run.
fn read_cached(file: &Path) -> Option<Normalization> {
    let text = std::fs::read_to_string(file).ok()?;
    Normalization::parse(&text).ok()
}

/// A fingerprint of files: kind, then each file's absolute path, size and modification time.
pub(super) fn files_fingerprint(kind: &str, files: &[PathBuf]) -> Option<String> {
    let mut text = kind.to_string();
    for file in files {
        let meta = std::fs::metadata(file).ok()?;
        let modified = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?;
        let path = std::fs::canonicalize(file).ok()?;
        text.push_str(&format!("|{}:{}:{}", path.display(), meta.len(), modified.as_nanos()));
    }
    Some(text)
}
