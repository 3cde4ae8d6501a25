//! `weir nexmark ...`: generate the benchmark's events, run its queries.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, Subcommand};
use weir::kafka::{KafkaClient, KafkaSink};
use weir::{write_json_lines, Job, JobConfig, JobMetrics, JobReport};
use weir_nexmark::queries::write_side_input;
use weir_nexmark::{
    query, write_events_to_topic, Event, EventInput, Generator, GeneratorConfig, Input,
    NexmarkSource, Output, Projection, Query, DEFAULT_BASE_TIME, DEFAULT_SIDE_TABLE, QUERIES,
};

use crate::arguments::{parse_kafka_option, Location};

use super::job_args::{route_dead_letters, JobArgs, OutputArgs};

use super::run_report::{summary_table, RunRecord};
use super::{metrics_endpoint, progress, resources};

/// The `weir nexmark` commands.
#[derive(Subcommand)]
pub enum NexmarkCommand {
    /// Writes generated events to a JSON lines file or a log topic.
    #[command(allow_negative_numbers = true)]
    Generate(GenerateArgs),
    /// Runs a query over generated events, a log topic or a JSON lines file.
    #[command(allow_negative_numbers = true)]
    Run(Box<RunArgs>),
}

#[derive(Args, Clone)]
struct GeneratorArgs {
    /// Number of events to generate.
    #[arg(long)]
    events: Option<u64>,
    /// Seed of the generator.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Events per second of event time.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    rate: u64,
    /// Largest lag of an event's time behind its in-order time, in milliseconds (also the
    /// out-of-orderness the watermark allows when reading events back).
    #[arg(long, default_value_t = 0)]
    max_disorder_ms: u64,
}

impl GeneratorArgs {
    fn config(&self) -> GeneratorConfig {
        GeneratorConfig {
            seed: self.seed,
            rate: self.rate,
            base_time: DEFAULT_BASE_TIME,
            max_disorder_ms: self.max_disorder_ms,
        }
    }

    fn events(&self) -> anyhow::Result<u64> {
        self.events
            .context("give the number of events to generate with --events N")
    }
}

/// The arguments of `weir nexmark generate`.
#[derive(Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    generator: GeneratorArgs,
    /// Where to write: a JSON lines file, `log:DIR/TOPIC` for a new topic of the embedded
    /// log (binary-encoded events), or `kafka:HOST:PORT/TOPIC` (JSON events, as other
    /// engines read them; the topic is created if missing).
    #[arg(long)]
    out: Location,
    /// Partitions of a new topic.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    partitions: u32,
    /// A librdkafka setting for Kafka clients, as `key=value` (repeatable), e.g.
    /// `security.protocol=SASL_SSL`.
    #[arg(long = "kafka-option", value_parser = parse_kafka_option)]
    kafka_options: Vec<(String, String)>,
    /// Do not draw a progress bar.
    #[arg(long)]
    no_progress: bool,
}

/// The arguments of `weir nexmark run`.
#[derive(Args, Clone)]
pub struct RunArgs {
    /// The query to run, or `all` to run every query one after the other (each with its own
    /// job, results counted and dropped) and print a table of them.
    #[arg(long, value_parser = query_name())]
    query: Queries,
    /// Read events from `log:DIR/TOPIC`, `kafka:HOST:PORT/TOPIC` (JSON events, up to the
    /// topic's ends when the job first started) or a JSON lines file instead of generating
    /// them.
    #[arg(long)]
    from: Option<Location>,
    #[command(flatten)]
    generator: GeneratorArgs,
    #[command(flatten)]
    job: JobArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// Read at most this many events per second per worker from a topic of the log or Kafka
    /// (to replay a topic at a steady pace).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_rate: Option<u64>,
    /// For the queries whose results update (q3, q4, q9, q20): write the changelog, each
    /// result as `{"op":"+"|"-","row":{...}}`, instead of the final view written when the
    /// input ends. Results that are only counted and dropped (no `--out`) are always the
    /// changes: nobody reads a view of them.
    #[arg(long)]
    changelog: bool,
    /// q13's side table: a CSV file of `key,value` rows (written with the standard 10,000
    /// keys if missing).
    #[arg(long, default_value = DEFAULT_SIDE_TABLE)]
    side_input: PathBuf,
    /// Serve the job's metrics (records, source lag, watermarks, latency, checkpoints) in the
    /// Prometheus text format at `http://ADDR/metrics` while it runs, as `127.0.0.1:9898`
    /// (port 0: any free port, printed at the start).
    #[arg(long)]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Do not draw a progress bar.
    #[arg(long)]
    no_progress: bool,
    /// Write what the run measured (wall and CPU time, peak memory, checkpoints, latency) to
    /// this JSON file: an array with one object per query.
    #[arg(long)]
    report: Option<PathBuf>,
}

/// The queries a run covers.
#[derive(Clone, Copy)]
enum Queries {
    /// One query of the registry.
    One(&'static Query),
    /// Every query of the registry, one after the other.
    All,
}

/// Runs a `weir nexmark` command.
pub fn run(command: NexmarkCommand) -> anyhow::Result<()> {
    match command {
        NexmarkCommand::Generate(args) => generate(&args),
        NexmarkCommand::Run(args) => run_queries(&args),
    }
}

fn generate(args: &GenerateArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let events = args.generator.events()?;
    let config = args.generator.config();
    let bar = progress::bar(events, args.no_progress);
    match args.out.clone().with_kafka_options(&args.kafka_options) {
        Location::File(path) => generate_json_lines(&config, events, &path, &bar)?,
        Location::Kafka(client) => {
            generate_to_kafka(config, events, client, args.partitions, &bar)?
        }
        Location::Log(dir) => {
            let written = Arc::new(AtomicU64::new(0));
            let watcher = progress::watch_counter(bar.clone(), Arc::clone(&written));
            let result = write_events_to_topic(&dir, args.partitions, &config, events, &written);
            drop(watcher);
            result?;
        }
    }
    bar.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    println!(
        "generated {events} events in {wall:.2} s ({:.2} M events/s) -> {}",
        events as f64 / wall / 1e6,
        args.out
    );
    Ok(())
}

fn generate_json_lines(
    config: &GeneratorConfig,
    events: u64,
    out: &Path,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<()> {
    const CHUNK: u64 = 64 * 1024;
    let generator = Generator::new(config.clone());
    let file =
        std::fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
    for start in (0..events).step_by(CHUNK as usize) {
        let end = (start + CHUNK).min(events);
        write_json_lines(out, &mut writer, (start..end).map(|id| generator.event(id)))?;
        bar.set_position(end);
    }
    std::io::Write::flush(&mut writer).with_context(|| format!("cannot write {}", out.display()))
}

/// Writes generated events to a Kafka topic as JSON, created with `partitions` if missing;
/// each record's timestamp is its event's time.
fn generate_to_kafka(
    config: GeneratorConfig,
    events: u64,
    client: KafkaClient,
    partitions: u32,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<()> {
    // The events' timestamps are their event times, years ago: time-based retention would
    // delete them at once.
    client.ensure_topic(partitions, &[("retention.ms", "-1")])?;
    let job = Job::new(JobConfig::default());
    let metrics = job.metrics();
    let watcher = progress::watch(bar.clone(), move || metrics.records_in());
    let result = job.run(move |p| {
        p.source(NexmarkSource::new(config.clone(), events))
            .sink(KafkaSink::new(client.clone()).event_time(Event::date_time));
        Ok(())
    });
    drop(watcher);
    result?;
    Ok(())
}

/// A latency histogram's bucket bound, as `20 ms` or `over 300 s`.
fn bucket_bound(bound: Duration) -> String {
    match bound {
        Duration::MAX => format!(
            "over {} s",
            weir::BUCKET_BOUNDS_MS.last().copied().unwrap_or_default() / 1000
        ),
        bound if bound < Duration::from_secs(1) => format!("{} ms", bound.as_millis()),
        bound => format!("{} s", bound.as_secs()),
    }
}

/// The `--query` parser: the registry's names, each with what it computes in `--help`, and
/// `all`.
fn query_name() -> impl TypedValueParser<Value = Queries> {
    let names = QUERIES
        .iter()
        .map(|query| PossibleValue::new(query.name).help(query.about))
        .chain([PossibleValue::new(ALL).help("Every query, one after the other, with a table.")]);
    PossibleValuesParser::new(names).try_map(|name| match name.as_str() {
        ALL => Ok(Queries::All),
        name => query(name)
            .map(Queries::One)
            .ok_or_else(|| format!("no query is named {name}")),
    })
}

/// `--query all`.
const ALL: &str = "all";

/// The events a run reads: `events` from the generator, or those of `--from`.
fn event_input(args: &RunArgs, events: u64) -> EventInput {
    let disorder = Duration::from_millis(args.generator.max_disorder_ms);
    let from = args
        .from
        .clone()
        .map(|from| from.with_kafka_options(&args.output.kafka_options));
    match from {
        None => EventInput::Generated {
            config: args.generator.config(),
            events,
        },
        Some(Location::Log(topic)) => EventInput::Log {
            topic,
            disorder,
            max_rate: args.max_rate,
        },
        Some(Location::Kafka(client)) => EventInput::Kafka {
            client,
            disorder,
            max_rate: args.max_rate,
        },
        Some(Location::File(path)) => EventInput::JsonLines { path, disorder },
    }
}

/// Where a run's results go.
fn output(args: &RunArgs) -> Output {
    Output {
        sink: args.output.destination(args.job.checkpoint_dir.as_ref()),
        changelog: args.changelog,
        side_table: args.side_input.clone(),
    }
}

fn run_queries(args: &RunArgs) -> anyhow::Result<()> {
    let (records, failed) = match args.query {
        Queries::One(query) => (vec![run_query(args, query)?], Vec::new()),
        Queries::All => run_all(args)?,
    };
    if let Some(path) = &args.report {
        let json = serde_json::to_vec_pretty(&records)?;
        std::fs::write(path, json)
            .with_context(|| format!("cannot write the report {}", path.display()))?;
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} queries failed: {}",
            failed.len(),
            QUERIES.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

/// Runs every query of the registry, each in its own job, and prints a table of them;
/// returns the records of those that ran and the names of those that failed.
fn run_all(args: &RunArgs) -> anyhow::Result<(Vec<RunRecord>, Vec<&'static str>)> {
    if args.output.out.is_some() {
        bail!("--query all counts and drops the results: give one --query to write them to --out");
    }
    if args.job.restore.is_some() {
        bail!("--restore resumes the job of one query: give its --query");
    }
    if args.job.processes > 1 || args.job.hostfile.is_some() {
        bail!("--query all runs in one process: give one --query to run it on a cluster");
    }
    if args.metrics_addr.is_some() {
        bail!("--metrics-addr serves the metrics of one job: give one --query");
    }
    let (mut records, mut failed) = (Vec::new(), Vec::new());
    for query in QUERIES {
        let mut one = args.clone();
        // Each query checkpoints into a directory of its own.
        one.job.checkpoint_dir = args
            .job
            .checkpoint_dir
            .as_ref()
            .map(|dir| dir.join(query.name));
        match run_query(&one, query) {
            Ok(record) => records.push(record),
            Err(error) => {
                eprintln!("{} failed: {error:#}", query.name);
                failed.push(query.name);
            }
        }
    }
    println!();
    print!("{}", summary_table(&records));
    println!(
        "\nThe queries ran one after the other in this process: a query's peak memory includes \
         what the allocator kept from those before it (`weir bench nexmark` runs each query in \
         a process of its own)."
    );
    Ok((records, failed))
}

fn run_query(args: &RunArgs, query: &'static Query) -> anyhow::Result<RunRecord> {
    let config = args.job.config()?;
    let events = match &args.from {
        None => args.generator.events()?,
        Some(_) if args.generator.events.is_some() => {
            bail!("--events counts generated events; a run --from a topic or file reads it all")
        }
        Some(_) => 0,
    };
    if config.checkpoints.is_some()
        && !matches!(args.from, Some(Location::Log(_) | Location::Kafka(_)))
    {
        bail!(
            "checkpoints need a source that can resume: read events --from log:DIR/TOPIC or \
             kafka:HOST:PORT/TOPIC"
        );
    }
    let dead_letters = args.output.dead_letter_location();
    args.output.create_topics()?;
    let job = Job::new(config.clone());
    let metrics = job.metrics();
    if let Some(addr) = args.metrics_addr {
        let bound = metrics_endpoint::serve(addr, Arc::clone(&metrics))?;
        eprintln!("metrics at http://{bound}/metrics");
    }
    // Where the peak cannot be reset, it would include earlier queries of `--query all`.
    let peak_is_this_runs = resources::reset_peak_memory();
    let cpu_before = resources::cpu_time();
    let report = run_job(args, query, job, events, dead_letters)?;
    let record = RunRecord::new(
        query.name,
        &report,
        &metrics,
        resources::cpu_time().saturating_sub(cpu_before),
        resources::peak_memory().filter(|_| peak_is_this_runs),
        config.checkpoints.is_some(),
    );
    summarize(args, query, &config, events, (report, metrics))?;
    Ok(record)
}

fn run_job(
    args: &RunArgs,
    query: &'static Query,
    job: Job,
    events: u64,
    dead_letters: Option<Location>,
) -> anyhow::Result<JobReport> {
    let config = job.config().clone();
    let metrics = job.metrics();
    // This process reads its workers' share of the generated events.
    let expected = events * config.workers as u64 / config.total_workers() as u64;
    let bar = progress::bar(expected, args.no_progress || args.from.is_some());
    let watcher = progress::watch(bar.clone(), move || metrics.records_in());
    let input = event_input(args, events);
    let output = output(args);
    if query.reads.contains(&Input::SideTable) && !output.side_table.exists() {
        let path = &output.side_table;
        write_side_input(path)
            .with_context(|| format!("cannot write the side input {}", path.display()))?;
        eprintln!("wrote the standard side input to {}", path.display());
    }
    // Strings the query never reads are not decoded.
    let projection = Projection::of(query.reads);
    let report = job.run(move |p| {
        let events = input.stream_projected(p, projection);
        (query.build)(p, events, &output);
        route_dead_letters(p, dead_letters.as_ref());
        Ok(())
    });
    bar.finish_and_clear();
    drop(watcher);
    Ok(report?)
}

fn summarize(
    args: &RunArgs,
    query: &Query,
    config: &JobConfig,
    events: u64,
    (report, metrics): (JobReport, Arc<JobMetrics>),
) -> anyhow::Result<()> {
    let wall = report.wall.as_secs_f64();
    let processes = config.processes();
    let scope = if processes > 1 {
        format!(" (process {} of {processes})", args.job.process)
    } else {
        String::new()
    };
    let input = args
        .from
        .as_ref()
        .map(|from| format!(" from {from}"))
        .unwrap_or_default();
    println!(
        "{}{scope}{input}: {} events in {wall:.2} s, {:.2} M events/s, {} output rows{}",
        query.name,
        report.records_in,
        report.records_in as f64 / wall / 1e6,
        report.records_out,
        args.output.arrow(),
    );
    if config.checkpoints.is_some() {
        println!(
            "checkpoints: {} completed, mean {:.1} ms per worker, {:.1} MiB of state at the last",
            metrics.checkpoints_completed(),
            metrics.mean_checkpoint_duration().as_secs_f64() * 1e3,
            metrics.checkpoint_bytes() as f64 / f64::from(1 << 20),
        );
        let restore = metrics.restore_duration();
        if !restore.is_zero() {
            println!("restored state in {:.1} ms", restore.as_secs_f64() * 1e3);
        }
        if report.restarts > 0 {
            println!(
                "restarted {} times from the latest checkpoint (events read again are counted again)",
                report.restarts
            );
        }
    }
    for (to, histogram) in [
        ("emission", metrics.emission_latency()),
        ("commit", metrics.commit_latency()),
    ] {
        if let (Some(p50), Some(p99)) = (histogram.quantile(0.5), histogram.quantile(0.99)) {
            println!(
                "latency from ingestion to {to}: p50 <= {}, p99 <= {} ({} samples)",
                bucket_bound(p50),
                bucket_bound(p99),
                histogram.count()
            );
        }
    }
    let rejected = metrics.dead_letters();
    if rejected > 0 {
        let records = if rejected == 1 { "record" } else { "records" };
        println!(
            "{rejected} input {records} could not be decoded -> {}",
            args.output.dead_letters
        );
    }
    if report.records_in == 0 && events > 0 {
        bail!("no events were read");
    }
    Ok(())
}
