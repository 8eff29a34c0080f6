//! Command line of spidernet: parse, wire, print. The subcommands live in `cli/`.

// Tests may be long; every other function stays short enough to read in one screen (clippy.toml).
#![cfg_attr(not(test), warn(clippy::too_many_lines))]

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    spidernet::system::allocator::keep_freed_blocks();
    let cli = cli::Cli::parse();
    // Library warnings go to stderr; RUST_LOG adjusts the level.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match cli.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => match error.downcast_ref::<cli::Exit>() {
            Some(exit) => ExitCode::from(exit.code),
            None => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        },
    }
}
