//! `weir`: the command line of the weir stream engine.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use weir::nexmark::{Generator, GeneratorConfig, NexmarkSource, DEFAULT_BASE_TIME};
use weir::{
    write_json_lines, Cluster, Data, DiscardSink, Job, JobConfig, JobMetrics, JsonLinesSink, Stream,
};
use weir_examples::nexmark::{q0, q1, q2, Query};

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
}

#[derive(Subcommand)]
enum NexmarkCommand {
    /// Writes generated events as JSON lines.
    Generate {
        #[command(flatten)]
        generator: GeneratorArgs,
        /// The JSON lines file to write.
        #[arg(long)]
        out: PathBuf,
        /// Do not draw a progress bar.
        #[arg(long)]
        no_progress: bool,
    },
    /// Runs a query over generated events.
    Run(RunArgs),
}

#[derive(Args)]
struct GeneratorArgs {
    /// Number of events.
    #[arg(long)]
    events: u64,
    /// Seed of the generator.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Events per second of event time.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    rate: u64,
    /// Largest lag of an event's time behind its in-order time, in milliseconds.
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
}

#[derive(Args)]
struct RunArgs {
    /// The query to run.
    #[arg(long, value_enum)]
    query: Query,
    #[command(flatten)]
    generator: GeneratorArgs,
    /// Worker threads per process.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Write the results as JSON lines to this file (otherwise they are counted and dropped).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Number of processes in the job (each started with its own --process), listening on
    /// 127.0.0.1 from --port up.
    #[arg(long, default_value_t = 1, conflicts_with = "hostfile")]
    processes: usize,
    /// This process's index, 0 to processes - 1.
    #[arg(long, default_value_t = 0)]
    process: usize,
    /// A file of `host:port` lines, one per process, instead of --processes.
    #[arg(long)]
    hostfile: Option<PathBuf>,
    /// The first port of a single-machine cluster.
    #[arg(long, default_value_t = 2101)]
    port: u16,
    /// Do not draw a progress bar.
    #[arg(long)]
    no_progress: bool,
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Nexmark(NexmarkCommand::Generate {
            generator,
            out,
            no_progress,
        }) => generate(&generator, &out, no_progress),
        Command::Nexmark(NexmarkCommand::Run(args)) => run(&args),
    };
    if let Err(error) = result {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn generate(args: &GeneratorArgs, out: &Path, no_progress: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let generator = Generator::new(args.config());
    let file =
        std::fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
    let bar = progress_bar(args.events, no_progress);
    const CHUNK: u64 = 64 * 1024;
    for start in (0..args.events).step_by(CHUNK as usize) {
        let end = (start + CHUNK).min(args.events);
        write_json_lines(out, &mut writer, (start..end).map(|id| generator.event(id)))?;
        bar.set_position(end);
    }
    std::io::Write::flush(&mut writer)
        .with_context(|| format!("cannot write {}", out.display()))?;
    bar.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    println!(
        "generated {} events in {wall:.2} s ({:.2} M events/s) -> {}",
        args.events,
        args.events as f64 / wall / 1e6,
        out.display()
    );
    Ok(())
}

fn run(args: &RunArgs) -> anyhow::Result<()> {
    let mut config = JobConfig::default().workers(args.workers);
    if args.processes > 1 || args.hostfile.is_some() {
        let cluster = match &args.hostfile {
            Some(path) => Cluster::from_host_file(path, args.process)?,
            None => Cluster::localhost(args.processes, args.process, args.port),
        };
        config = config.cluster(cluster);
    }
    config.validate()?;
    if config.cluster.is_none() && args.process != 0 {
        bail!(
            "--process {} needs a cluster: give --processes or --hostfile",
            args.process
        );
    }
    let processes = config.processes();
    let job = Job::new(config.clone());
    // This process reads its workers' share of the events.
    let expected = args.generator.events * config.workers as u64 / config.total_workers() as u64;
    let bar = progress_bar(expected, args.no_progress);
    let watcher = watch_progress(job.metrics(), bar.clone());

    let query = args.query;
    let generator = args.generator.config();
    let events = args.generator.events;
    let out = args.out.clone();
    let report = job.run(move |p| {
        let events = p.source(NexmarkSource::new(generator.clone(), events));
        match query {
            Query::Q0 => write_results(q0(events), out.as_deref()),
            Query::Q1 => write_results(q1(events), out.as_deref()),
            Query::Q2 => write_results(q2(events), out.as_deref()),
        }
        Ok(())
    });
    bar.finish_and_clear();
    drop(watcher);
    let report = report?;
    let wall = report.wall.as_secs_f64();
    let scope = if processes > 1 {
        format!(" (process {} of {processes})", args.process)
    } else {
        String::new()
    };
    println!(
        "{query:?}{scope}: {} events in {wall:.2} s, {:.2} M events/s, {} output rows{}",
        report.records_in,
        report.records_in as f64 / wall / 1e6,
        report.records_out,
        args.out
            .as_ref()
            .map(|path| format!(" -> {}", path.display()))
            .unwrap_or_default(),
    );
    if report.records_in == 0 && events > 0 {
        bail!("no events were read");
    }
    Ok(())
}

/// Writes a query's results to a JSON lines file, or counts them if there is no file.
fn write_results<T: Data>(results: Stream<'_, T>, out: Option<&Path>) {
    match out {
        Some(path) => results.sink(JsonLinesSink::create(path)),
        None => results.sink(DiscardSink),
    }
}

fn progress_bar(length: u64, hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(length);
    if let Ok(style) = ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] {human_pos}/{human_len} events ({per_sec}, eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Moves the bar to the job's input count until dropped.
struct ProgressWatcher {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn watch_progress(metrics: Arc<JobMetrics>, bar: ProgressBar) -> ProgressWatcher {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let thread = std::thread::spawn(move || {
        while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
            bar.set_position(metrics.records_in());
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    ProgressWatcher {
        stop,
        thread: Some(thread),
    }
}

impl Drop for ProgressWatcher {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
