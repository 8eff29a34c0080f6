//! `spidernet show`: a genotype cell by cell, and optionally a drawing of its cells.

use super::args::{positive, print_ignoring_closed_pipe};
use anyhow::Context;
use clap::Args;
use spidernet::artifacts::Artifacts;
use spidernet::genotype::Genotype;
use std::path::PathBuf;

#[derive(Args)]
pub struct ShowArgs {
    /// A genotype.json, or a run folder holding one.
    genotype: PathBuf,
    /// Write a drawing of every cell to this SVG file.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Training batch size the memory estimate assumes.
    #[arg(long, default_value_t = 64, value_parser = positive)]
    batch: usize,
}

/// Prints the summary and writes the drawing.
pub fn run(args: ShowArgs) -> anyhow::Result<()> {
    let path = if args.genotype.is_dir() {
        Artifacts::new(&args.genotype).genotype_path()
    } else {
        args.genotype.clone()
    };
    let genotype = Genotype::load(&path)?;
    let mut text = spidernet::show::summary(&genotype, args.batch);
    if let Some(svg) = &args.svg {
        spidernet::system::atomic::write_atomic(svg, spidernet::show::cells_svg(&genotype).as_bytes())
            .with_context(|| format!("cannot write {}", svg.display()))?;
        text.push_str(&format!("\ncells drawn in {}\n", svg.display()));
    }
    print_ignoring_closed_pipe(&text)
}
