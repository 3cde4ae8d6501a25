//! `weir example ...`: list the example jobs, write their sample input, run them.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, Subcommand};
use weir::schema::JsonSchema;
use weir::{Destination, Job};
use weir_examples::{
    example, write_sample, Example, ExampleInput, ExampleOutput, Origin, EXAMPLES,
};

use crate::arguments::Location;

use super::job_args::{route_dead_letters, JobArgs, OutputArgs};

/// The `weir example` commands.
#[derive(Subcommand)]
pub enum ExampleCommand {
    /// Lists the example jobs: what each computes and the operators it shows.
    List,
    /// Writes an example's sample input (seeded: the same on every machine).
    Data(DataArgs),
    /// Runs an example job.
    Run(Box<RunArgs>),
}

/// The arguments of `weir example data`.
#[derive(Args)]
pub struct DataArgs {
    /// The example.
    #[arg(value_parser = example_name())]
    example: &'static Example,
    /// Where to write: a JSON lines file, or `log:DIR/TOPIC` for a new topic of the embedded
    /// log (JSON values, records keyed as the example keys them).
    #[arg(long)]
    out: Location,
    /// How many records.
    #[arg(long, default_value_t = 10_000)]
    records: u64,
    /// Seed of the sample.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Partitions of a new topic.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    partitions: u32,
}

/// The arguments of `weir example run`.
#[derive(Args)]
pub struct RunArgs {
    /// The example.
    #[arg(value_parser = example_name())]
    example: &'static Example,
    /// Read records from a JSON lines file, `log:DIR/TOPIC` or `kafka:HOST:PORT/TOPIC` (JSON
    /// values; a topic up to its ends when the job first started).
    #[arg(long)]
    from: Location,
    #[command(flatten)]
    job: JobArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// Where records too late for the example's windows or state go: a JSON lines file
    /// (left out when there are none; a directory of part files with checkpoints) or a topic.
    #[arg(long, default_value = "late.jsonl")]
    late: Location,
    /// For examples whose results update (word-count, latest-state): write the changelog,
    /// each result as `{"op":"+"|"-","row":{...}}`, instead of the table written when the
    /// input ends.
    #[arg(long)]
    changelog: bool,
    /// A JSON Schema file every input record must match before it is decoded; a record that
    /// breaks it is a dead letter naming the field (the example's Rust type is checked too).
    #[arg(long)]
    schema: Option<PathBuf>,
    /// Read at most this many records per second per worker from a topic.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_rate: Option<u64>,
}

/// Runs a `weir example` command.
pub fn run(command: ExampleCommand) -> anyhow::Result<()> {
    match command {
        ExampleCommand::List => {
            list();
            Ok(())
        }
        ExampleCommand::Data(args) => data(&args),
        ExampleCommand::Run(args) => run_example(&args),
    }
}

fn list() {
    for example in EXAMPLES {
        println!("{:<20} {}", example.name, example.about);
        println!("{:<20} shows: {}", "", example.shows);
        println!("{:<20} results: {}", "", example.results);
        println!();
    }
    println!(
        "Write an example's input with `weir example data NAME --out FILE` and run it with \
         `weir example run NAME --from FILE --out RESULTS`."
    );
}

fn data(args: &DataArgs) -> anyhow::Result<()> {
    let lines = (args.example.sample)(args.seed, args.records);
    let (path, partitions) = match &args.out {
        Location::File(path) => (path, None),
        Location::Log(dir) => (dir, Some(args.partitions)),
        Location::Kafka(_) => {
            bail!("sample data goes to a file or a log topic; copy it to Kafka from there")
        }
    };
    write_sample(&lines, path, partitions)?;
    println!(
        "wrote {} records of {}'s sample input -> {}",
        lines.len(),
        args.example.name,
        args.out
    );
    Ok(())
}

fn run_example(args: &RunArgs) -> anyhow::Result<()> {
    let config = args.job.config()?;
    if config.checkpoints.is_some() && matches!(args.from, Location::File(_)) {
        bail!(
            "checkpoints need a source that can resume: read records --from log:DIR/TOPIC or \
             kafka:HOST:PORT/TOPIC (`weir example data NAME --out log:DIR/TOPIC` writes one)"
        );
    }
    let input = ExampleInput {
        origin: match args.output.with_kafka_options(args.from.clone()) {
            Location::File(path) => Origin::JsonLines(path),
            Location::Log(dir) => Origin::Log(dir),
            Location::Kafka(client) => Origin::Kafka(client),
        },
        max_rate: args.max_rate,
        schema: args
            .schema
            .as_deref()
            .map(JsonSchema::from_file)
            .transpose()
            .map_err(anyhow::Error::msg)?,
    };
    let late = OutputArgs {
        out: Some(args.late.clone()),
        ..args.output.clone()
    };
    let output = ExampleOutput {
        results: args.output.destination(args.job.checkpoint_dir.as_ref()),
        late: late.destination(args.job.checkpoint_dir.as_ref()),
        changelog: args.changelog,
    };
    if let (Destination::JsonLines(late), Destination::JsonLines(results)) =
        (&output.late, &output.results)
    {
        if late == results {
            bail!("--late and --out name the same file {}", late.display());
        }
    }
    let dead_letters = args.output.dead_letter_location();
    args.output.create_topics()?;
    late.create_topics()?;
    let job = Job::new(config);
    let metrics = job.metrics();
    let build = args.example.build;
    let report = job.run(move |p| {
        build(p, &input, &output);
        route_dead_letters(p, dead_letters.as_ref());
        Ok(())
    })?;
    let wall = report.wall.as_secs_f64().max(1e-9);
    println!(
        "{}: {} records in {wall:.2} s, {} results{}",
        args.example.name,
        report.records_in,
        report.records_out,
        args.output.arrow(),
    );
    let late_records = metrics.late_records();
    if late_records > 0 {
        println!("{late_records} late records -> {}", args.late);
    }
    let rejected = metrics.dead_letters();
    if rejected > 0 {
        println!(
            "{rejected} input records were malformed -> {}",
            args.output.dead_letters
        );
    }
    Ok(())
}

/// The example-name parser: the registry's names, each with what it does in `--help`.
fn example_name() -> impl TypedValueParser<Value = &'static Example> {
    let names = EXAMPLES
        .iter()
        .map(|example| PossibleValue::new(example.name).help(example.about));
    PossibleValuesParser::new(names)
        .try_map(|name| example(&name).with_context(|| format!("no example is named {name}")))
}
