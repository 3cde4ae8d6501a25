//! `weir`: the command line of the weir stream engine.

mod cli;

/// Jobs allocate and free small records at high rates; mimalloc does that faster than the
/// system allocator (measured in the Nexmark benchmark, see docs/architecture.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

use cli::checkpoints::CheckpointsCommand;
use cli::log::LogCommand;
use cli::nexmark::NexmarkCommand;

#[derive(Parser)]
#[command(
    name = "weir",
    version,
    about = "weir: a stream-processing dataflow engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The Nexmark benchmark: generate its events, run its queries.
    #[command(subcommand)]
    Nexmark(NexmarkCommand),
    /// The embedded log: create, fill, read and describe topics.
    #[command(subcommand)]
    Log(LogCommand),
    /// A job's checkpoints: list, describe, keep as a savepoint.
    #[command(subcommand)]
    Checkpoints(CheckpointsCommand),
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Command::Nexmark(command) => cli::nexmark::run(command),
        Command::Log(command) => cli::log::run(command),
        Command::Checkpoints(command) => cli::checkpoints::run(command),
    };
    if let Err(error) = result {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}
