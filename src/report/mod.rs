//! The HTML report of a run: one self-contained file with charts, tables and the final cells.

pub(crate) mod charts;
mod confusion;
mod decisions;
mod html;

pub use confusion::confusion_svg;
pub use html::{charts, page, render};

use crate::genotype::Genotype;
use crate::inference::EvalReport;
use crate::search::{IterationRecord, RunDir, SearchConfig, Summary};
use crate::system::atomic::write_atomic;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// Everything a report shows of one run folder.
#[derive(Clone, Debug)]
pub struct RunRecord {
    /// The run folder.
    pub root: PathBuf,
    /// Its settings.
    pub config: SearchConfig,
    /// One record per iteration.
    pub history: Vec<IterationRecord>,
    /// The final summary, once the run has finished.
    pub summary: Option<Summary>,
    /// The current (or final) genotype.
    pub genotype: Genotype,
    /// The last `spidernet eval` of its trained network (eval.json), if any.
    pub evaluation: Option<EvalReport>,
}

impl RunRecord {
    /// Reads a run folder written by `spidernet search`.
    pub fn load(root: &Path) -> anyhow::Result<RunRecord> {
        let (dir, config, checkpoint) = RunDir::open(root)?;
        let history = dir.history()?;
        let summary = dir.summary()?;
        let genotype = match dir.genotype_path() {
            path if path.exists() => Genotype::load(&path)?,
            _ => checkpoint.genotype,
        };
        Ok(RunRecord {
            root: root.to_path_buf(),
            config,
            history,
            summary,
            genotype,
            evaluation: EvalReport::load(root)?,
        })
    }

    /// A short name: the strategy and the seed.
    pub fn name(&self) -> String {
        format!("{} (seed {})", self.config.strategy, self.config.seed)
    }
}

/// Writes the report of the run in `root` to `out`, with the run in `compare` (same data set) overlaid if given;
/// with `charts_dir`, also each chart as its own SVG file there.
pub fn write_report(root: &Path, compare: Option<&Path>, out: &Path, charts_dir: Option<&Path>) -> anyhow::Result<()> {
    let run = RunRecord::load(root)?;
    let other = compare.map(RunRecord::load).transpose()?;
    if let Some(other) = &other
        && other.config.data != run.config.data
    {
        bail!(
            "{} was run on --data {}, but {} on --data {}: only runs on the same data can be compared",
            other.root.display(),
            other.config.data,
            run.root.display(),
            run.config.data
        );
    }
    let drawn = charts(&run, other.as_ref())?;
    let html = page(&run, other.as_ref(), &drawn);
    write_atomic(out, html.as_bytes()).with_context(|| format!("cannot write {}", out.display()))?;
    if let Some(dir) = charts_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for (name, svg) in drawn {
            let path = dir.join(format!("{name}.svg"));
            write_atomic(&path, svg.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    Ok(())
}
