//! `weir schema ...`: check a new version of a JSON Schema against the old one.

use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, Subcommand, ValueEnum};
use weir::schema::{Compatibility, JsonSchema};

/// The `weir schema` commands.
#[derive(Subcommand)]
pub enum SchemaCommand {
    /// Checks that a new version of a JSON Schema is compatible with the old one: exits with
    /// 0 and says so, or with 1 and lists every field that breaks it.
    Check(CheckArgs),
}

/// Which way the new schema must be compatible.
#[derive(Clone, Copy, ValueEnum)]
enum Way {
    /// Readers with the new schema read records written with the old (upgrade readers first).
    Backward,
    /// Readers with the old schema read records written with the new (upgrade writers first).
    Forward,
    /// Both.
    Full,
}

/// The arguments of `weir schema check`.
#[derive(Args)]
pub struct CheckArgs {
    /// The schema in use.
    old: PathBuf,
    /// Its new version.
    new: PathBuf,
    /// Which way it must be compatible.
    #[arg(long, value_enum, default_value = "backward")]
    compatibility: Way,
}

/// Runs a `weir schema` command.
pub fn run(command: SchemaCommand) -> anyhow::Result<()> {
    let SchemaCommand::Check(args) = command;
    let old = JsonSchema::from_file(&args.old).map_err(anyhow::Error::msg)?;
    let new = JsonSchema::from_file(&args.new).map_err(anyhow::Error::msg)?;
    let (way, name) = match args.compatibility {
        Way::Backward => (Compatibility::Backward, "backward"),
        Way::Forward => (Compatibility::Forward, "forward"),
        Way::Full => (Compatibility::Full, "full"),
    };
    let why = way.check(&old, &new);
    if why.is_empty() {
        println!(
            "{} is {name} compatible with {}",
            args.new.display(),
            args.old.display()
        );
        return Ok(());
    }
    for reason in &why {
        println!("{reason}");
    }
    bail!(
        "{} is not {name} compatible with {}: {} incompatible changes",
        args.new.display(),
        args.old.display(),
        why.len()
    )
}
