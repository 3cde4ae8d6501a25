//! `weir checkpoints ...`: list and describe a job's checkpoints, keep one as a savepoint.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Subcommand;
use weir::checkpoint::{epoch_name, list_checkpoints, save_savepoint, CheckpointInfo, FINAL_EPOCH};

/// The `weir checkpoints` commands.
#[derive(Subcommand)]
pub enum CheckpointsCommand {
    /// One line per complete checkpoint: epoch, time, size, incremental size.
    List {
        /// The checkpoint directory (`--checkpoint-dir` of the run).
        dir: PathBuf,
    },
    /// Everything a checkpoint records, including every source partition's offset.
    Describe {
        /// The checkpoint directory.
        dir: PathBuf,
        /// The epoch to describe (`final`, or a number); the newest by default.
        #[arg(long)]
        epoch: Option<String>,
    },
    /// Keeps the newest complete checkpoint as a named savepoint, which rotation never
    /// deletes; restore it with `--restore DIR/savepoints/NAME`.
    Savepoint {
        /// The checkpoint directory.
        dir: PathBuf,
        /// The savepoint's name.
        #[arg(long)]
        name: String,
    },
}

/// Runs a `weir checkpoints` command.
pub fn run(command: CheckpointsCommand) -> anyhow::Result<()> {
    match command {
        CheckpointsCommand::List { dir } => {
            let checkpoints = list(&dir)?;
            println!("epoch\tcompleted (UTC ms)\tworkers\tsize\tincremental\tduration");
            for checkpoint in &checkpoints {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{} ms",
                    epoch_name(checkpoint.epoch),
                    checkpoint.created_ms,
                    checkpoint.workers,
                    bytes(checkpoint.size),
                    bytes(checkpoint.incremental_size),
                    checkpoint.duration_ms
                );
            }
        }
        CheckpointsCommand::Describe { dir, epoch } => {
            let checkpoints = list(&dir)?;
            let wanted =
                match epoch.as_deref() {
                    None => None,
                    Some("final") => Some(FINAL_EPOCH),
                    Some(number) => Some(number.parse().with_context(|| {
                        format!("--epoch {number:?}: expected final or a number")
                    })?),
                };
            let checkpoint = match wanted {
                None => checkpoints.last(),
                Some(epoch) => checkpoints.iter().find(|c| c.epoch == epoch),
            }
            .with_context(|| format!("{} has no such complete checkpoint", dir.display()))?;
            describe(checkpoint);
        }
        CheckpointsCommand::Savepoint { dir, name } => {
            let path = save_savepoint(&dir, &name)?;
            println!("savepoint {name} -> {}", path.display());
        }
    }
    Ok(())
}

fn list(dir: &std::path::Path) -> anyhow::Result<Vec<CheckpointInfo>> {
    let checkpoints = list_checkpoints(dir)?;
    if checkpoints.is_empty() {
        bail!("{} holds no complete checkpoint", dir.display());
    }
    Ok(checkpoints)
}

fn describe(checkpoint: &CheckpointInfo) {
    println!("checkpoint {}", checkpoint.path.display());
    println!("epoch:       {}", epoch_name(checkpoint.epoch));
    println!(
        "completed:   {} ms since the Unix epoch",
        checkpoint.created_ms
    );
    println!("workers:     {}", checkpoint.workers);
    println!("key groups:  {}", checkpoint.key_groups);
    println!("size:        {}", bytes(checkpoint.size));
    println!("incremental: {}", bytes(checkpoint.incremental_size));
    println!(
        "duration:    {} ms (slowest worker)",
        checkpoint.duration_ms
    );
    match &checkpoint.operators {
        Some(operators) if operators.is_empty() => println!("operators:   none with state"),
        Some(operators) => println!("operators:   {}", operators.join(", ")),
        None => println!("operators:   not recorded (an older checkpoint)"),
    }
    for source in &checkpoint.sources {
        match &source.partitions {
            Some(partitions) => {
                println!("source {} ({}):", source.source, source.name);
                for (partition, position) in partitions {
                    let end = position
                        .end_offset
                        .map_or(String::new(), |end| format!(", reads up to {end}"));
                    let time = position
                        .max_event_time
                        .map_or(String::new(), |time| format!(", latest event time {time}"));
                    println!(
                        "  partition {partition}: next offset {}{end}{time}",
                        position.next_offset
                    );
                }
            }
            None => println!("source {} ({}): cannot resume", source.source, source.name),
        }
    }
}

fn bytes(count: u64) -> String {
    match count {
        0..1024 => format!("{count} B"),
        1024..1_048_576 => format!("{:.1} KiB", count as f64 / 1024.0),
        _ => format!("{:.1} MiB", count as f64 / 1_048_576.0),
    }
}
