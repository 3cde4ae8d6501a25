//! `weir`: the command line of the weir stream engine.

/// Jobs allocate and free small records at high rates; mimalloc does that faster than the
/// system allocator (measured in the Nexmark benchmark, see docs/architecture.md). Built
/// without the `mimalloc` feature, the binary uses the system allocator, for heap profilers.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

use weir_cli::commands::{
    self, BenchCommand, CheckpointsCommand, ExampleCommand, LogCommand, NexmarkCommand,
    SchemaCommand,
};

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
    /// Example jobs for data teams: list them, write their sample input, run them.
    #[command(subcommand)]
    Example(ExampleCommand),
    /// Benchmarks: the Nexmark queries on each source and worker count, with a table and a
    /// chart.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// The embedded log: create, fill, read and describe topics.
    #[command(subcommand)]
    Log(LogCommand),
    /// JSON Schemas of incoming records: check that a new version is compatible.
    #[command(subcommand)]
    Schema(SchemaCommand),
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
        Command::Nexmark(command) => commands::nexmark::run(command),
        Command::Example(command) => commands::example::run(command),
        Command::Bench(command) => commands::bench::run(command),
        Command::Log(command) => commands::log::run(command),
        Command::Checkpoints(command) => commands::checkpoints::run(command),
        Command::Schema(command) => commands::schema::run(command),
    };
    if let Err(error) = result {
        eprintln!("error: {}", one_line(&error));
        std::process::exit(1);
    }
}

/// The error and its causes on one line, `outer: inner`, leaving out a cause whose words the
/// line already holds (weir's errors name their source in their own message too).
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}
