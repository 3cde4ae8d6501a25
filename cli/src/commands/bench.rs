//! `weir bench nexmark`: the Nexmark benchmark as a user reruns it in one command.
//!
//! The events are generated once into a data directory (a log topic and a JSON lines file of
//! the same events) and reused by later runs with the same count. Each query then runs on
//! each source and worker count in a `weir nexmark run` process of its own (so one query's
//! memory never counts against the next), which writes its figures with `--report`. Runs that
//! read the log are repeated at half the rate they reached, to measure end-to-end latency under
//! a steady load rather than a backlog. With `--with-flink`, Apache Flink runs each query right
//! after weir (scripts/flink.sh), on the same JSON lines events split into one file per source
//! task, so that a change in the machine's load hits both engines. The results go to
//! `results.json`, a markdown table (`results.md`) and a bar chart (`results.svg`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use weir_nexmark::QUERIES;

use super::chart::{bar_chart, Series};
use super::run_report::{mebibytes, Latency, RunRecord};
use crate::arguments::parse_duration;

/// The `weir bench` commands.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// Runs Nexmark queries on generated, log and JSON lines input and writes the results
    /// as JSON, a markdown table and a chart.
    Nexmark(NexmarkBenchArgs),
}

/// Where a benchmark run reads its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchSource {
    /// Generated in the job, as they are read.
    Generator,
    /// A topic of the embedded log (binary events, 8 partitions).
    Log,
    /// A JSON lines file (as other engines read them).
    Jsonl,
}

/// The arguments of `weir bench nexmark`.
#[derive(Args)]
pub struct NexmarkBenchArgs {
    /// The queries, comma-separated (all of the registry's when left out).
    #[arg(long, value_delimiter = ',')]
    queries: Vec<String>,
    /// Events per run.
    #[arg(long, default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    events: u64,
    /// Worker counts, comma-separated: each query runs with each.
    #[arg(long, value_delimiter = ',', default_value = "2")]
    workers: Vec<usize>,
    /// Sources, comma-separated: each query runs on each.
    #[arg(long, value_delimiter = ',', default_value = "log,jsonl")]
    source: Vec<BenchSource>,
    /// Checkpoint every interval (`1s`) in the runs that read the log (the only source a
    /// checkpoint can resume). The latency runs then write their results exactly-once to a
    /// topic of the log, which publishes them as each checkpoint completes (without
    /// checkpoints they drop them, and only latency to emission is measured).
    #[arg(long, value_parser = parse_duration)]
    checkpoint_interval: Option<Duration>,
    /// Leave out the latency runs (the log replayed at half the rate each run reached).
    #[arg(long)]
    no_latency: bool,
    /// Runs of each configuration at full speed (weir's and Flink's in turn); the table
    /// gives the median run (of an even number, the slower of the middle two) and the range.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// Where the events are generated and kept for later runs.
    #[arg(long, default_value = "bench-data")]
    data_dir: PathBuf,
    /// Where the results go: results.json, results.md, results.svg and each run's log.
    #[arg(long, default_value = "bench-results")]
    out: PathBuf,
    /// Also run each query on Apache Flink (the ones its runner has), right after weir's runs
    /// of the query, reading the same JSON lines events split into one file per source task;
    /// needs `jsonl` among the sources, which weir's side of the comparison reads.
    #[arg(long)]
    with_flink: bool,
    /// The runner of the Flink side: called as `RUNNER run --query Q --events DIR
    /// --parallelism P --count N` (and `RUNNER run --list`), it prints its figures as JSON.
    #[arg(long, default_value = "scripts/flink.sh")]
    flink_runner: PathBuf,
    /// Do not draw a progress bar.
    #[arg(long)]
    no_progress: bool,
}

/// A benchmark's results, as `results.json` holds them.
#[derive(Debug, Serialize, Deserialize)]
pub struct BenchResults {
    /// Events per run.
    pub events: u64,
    /// Runs of each configuration at full speed (`--repeat`).
    #[serde(default = "one_run")]
    pub repeat: u32,
    /// The machine: processor model and cores.
    pub machine: String,
    /// Each query on each source and worker count.
    pub runs: Vec<BenchRun>,
    /// Each query on Flink, per parallelism, when asked for.
    #[serde(default)]
    pub flink: Vec<FlinkRun>,
}

/// One query on Flink at one parallelism.
#[derive(Debug, Serialize, Deserialize)]
pub struct FlinkRun {
    /// The query.
    pub query: String,
    /// Parallel tasks (weir's workers).
    pub parallelism: usize,
    /// What the runner measured: the median of the runs by throughput.
    pub record: Option<FlinkRecord>,
    /// The throughput of every run that completed, in events per second, in the order they
    /// ran.
    #[serde(default)]
    pub repeats: Vec<f64>,
    /// Why a run failed, if one did (the configuration then has no median run).
    pub error: Option<String>,
}

/// What the Flink runner prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlinkRecord {
    /// Events read.
    pub events: u64,
    /// Wall time from the job's submission to its end, in seconds.
    pub wall_s: f64,
    /// Events per second of wall time.
    pub events_per_s: f64,
    /// Flink's own count of the job's run time, without planning and submission, in seconds.
    #[serde(default)]
    pub net_runtime_s: Option<f64>,
    /// CPU seconds of the JVM during the job.
    pub cpu_s: f64,
    /// The JVM's largest resident memory in bytes.
    pub peak_memory_bytes: Option<u64>,
}

/// One query on one source and worker count.
#[derive(Debug, Serialize, Deserialize)]
pub struct BenchRun {
    /// The query.
    pub query: String,
    /// Where it read its events.
    pub source: BenchSource,
    /// Worker threads.
    pub workers: usize,
    /// Bytes of input read (the topic's segments, the file), if any.
    pub input_bytes: Option<u64>,
    /// The run at full speed: the median of the runs by throughput.
    pub peak: Option<RunRecord>,
    /// The throughput of every run at full speed that completed, in events per second, in
    /// the order they ran.
    #[serde(default)]
    pub repeats: Vec<f64>,
    /// The run at half of the peak rate (log source only).
    pub half_load: Option<RunRecord>,
    /// Why a run failed, if one did.
    pub error: Option<String>,
}

/// Runs a `weir bench` command.
pub fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Nexmark(args) => nexmark(&args),
    }
}

fn nexmark(args: &NexmarkBenchArgs) -> anyhow::Result<()> {
    let queries = chosen_queries(&args.queries)?;
    if args.workers.is_empty() || args.workers.contains(&0) {
        bail!("--workers needs counts of at least 1");
    }
    if args.with_flink && !args.source.contains(&BenchSource::Jsonl) {
        bail!("--with-flink compares both engines on the JSON lines events: add jsonl to --source");
    }
    let flink_queries = if args.with_flink {
        flink_queries(&args.flink_runner)?
    } else {
        Vec::new()
    };
    let weir = std::env::current_exe().context("cannot find the weir executable")?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let data = Inputs::prepare(&weir, args)?;
    let latency_runs = !args.no_latency && args.source.contains(&BenchSource::Log);
    let repeat = args.repeat as usize;
    let flink_parallelisms: &[usize] = if args.with_flink { &args.workers } else { &[] };
    let per_query = args.workers.len() * args.source.len() * repeat
        + args.workers.len() * usize::from(latency_runs)
        + flink_parallelisms.len() * repeat;
    let bar = super::progress::steps((queries.len() * per_query) as u64, args.no_progress);
    bar.set_message("reading the inputs into the page cache");
    data.warm(&args.source, flink_parallelisms)?;
    let mut results = BenchResults {
        events: args.events,
        repeat: args.repeat,
        machine: machine(),
        runs: Vec::new(),
        flink: Vec::new(),
    };
    // Query by query, and each configuration's repeats in turn with the others' (Flink's
    // included), so that a change in the machine's load hits every configuration alike.
    for query in &queries {
        let configurations: Vec<Run> = args
            .source
            .iter()
            .flat_map(|&source| args.workers.iter().map(move |&workers| (source, workers)))
            .map(|(source, workers)| Run {
                weir: &weir,
                args,
                data: &data,
                query,
                source,
                workers,
            })
            .collect();
        let on_flink = flink_queries.contains(query);
        let mut weir_runs: Vec<Repeats<RunRecord>> =
            configurations.iter().map(|_| Repeats::default()).collect();
        let mut flink_runs: Vec<Repeats<FlinkRecord>> = flink_parallelisms
            .iter()
            .map(|_| Repeats::default())
            .collect();
        for round in 1..=repeat {
            let kind = if repeat == 1 {
                "peak".to_owned()
            } else {
                format!("peak-{round}")
            };
            for (run, runs) in configurations.iter().zip(&mut weir_runs) {
                bar.set_message(format!(
                    "{query} {:?} {}w, run {round} of {repeat}",
                    run.source, run.workers
                ));
                if runs.error.is_none() {
                    runs.push(run.once(&kind, None));
                }
                bar.inc(1);
            }
            for (&parallelism, runs) in flink_parallelisms.iter().zip(&mut flink_runs) {
                bar.set_message(format!(
                    "{query} on Flink, parallelism {parallelism}, run {round} of {repeat}"
                ));
                if runs.error.is_none() {
                    runs.push(if on_flink {
                        flink_once(args, &data, query, parallelism, &kind)
                    } else {
                        Err(anyhow::anyhow!("the Flink runner does not have this query"))
                    });
                }
                bar.inc(1);
            }
        }
        for (run, runs) in configurations.iter().zip(weir_runs) {
            let half_load = latency_runs && run.source == BenchSource::Log;
            let result = run.result(runs, half_load, &bar);
            if let Some(error) = &result.error {
                bar.println(format!(
                    "{query} {:?} {} workers: {error}",
                    run.source, run.workers
                ));
            }
            results.runs.push(result);
        }
        for (&parallelism, runs) in flink_parallelisms.iter().zip(flink_runs) {
            let (record, repeats, error) = runs.median(|record| record.events_per_s);
            results.flink.push(FlinkRun {
                query: query.clone(),
                parallelism,
                record,
                repeats,
                error,
            });
        }
        // After every query, so that an interrupted benchmark keeps the queries it finished.
        write_results(&args.out, &results)?;
    }
    bar.finish_and_clear();
    print!("{}", markdown(&results));
    println!("results in {}", args.out.display());
    let failed = results
        .runs
        .iter()
        .filter(|run| run.error.is_some())
        .count();
    if failed > 0 {
        bail!(
            "{failed} of {} runs failed (see the table)",
            results.runs.len()
        );
    }
    Ok(())
}

/// The registry's names of `asked`, or every query's when none is asked.
fn chosen_queries(asked: &[String]) -> anyhow::Result<Vec<String>> {
    if asked.is_empty() {
        return Ok(QUERIES.iter().map(|query| query.name.to_owned()).collect());
    }
    for name in asked {
        if weir_nexmark::query(name).is_none() {
            let known: Vec<_> = QUERIES.iter().map(|query| query.name).collect();
            bail!(
                "--queries: no query is named {name:?} (known: {})",
                known.join(", ")
            );
        }
    }
    Ok(asked.to_vec())
}

/// The events of a benchmark, generated once per event count.
struct Inputs {
    dir: PathBuf,
    events: u64,
}

impl Inputs {
    /// Generates what the chosen sources read, unless an earlier run left it complete.
    fn prepare(weir: &Path, args: &NexmarkBenchArgs) -> anyhow::Result<Self> {
        let inputs = Inputs {
            dir: args.data_dir.join(format!("events-{}", args.events)),
            events: args.events,
        };
        let mut generate = Vec::new();
        if args.source.contains(&BenchSource::Log) {
            generate.push((inputs.topic(), format!("log:{}", inputs.topic().display())));
        }
        if args.source.contains(&BenchSource::Jsonl) {
            generate.push((
                inputs.json_lines(),
                inputs.json_lines().display().to_string(),
            ));
        }
        for (path, out) in generate {
            let done = path.with_extension("complete");
            if done.exists() {
                continue;
            }
            if path.is_dir() {
                std::fs::remove_dir_all(&path)
                    .with_context(|| format!("cannot remove the incomplete {}", path.display()))?;
            }
            std::fs::create_dir_all(&inputs.dir)
                .with_context(|| format!("cannot create {}", inputs.dir.display()))?;
            eprintln!("generating {} events into {out} ...", args.events);
            let events = args.events.to_string();
            let mut command = Command::new(weir);
            command.args(["nexmark", "generate", "--events", &events, "--out", &out]);
            if args.no_progress {
                command.arg("--no-progress");
            }
            let status = command
                .status()
                .context("cannot start weir nexmark generate")?;
            if !status.success() {
                bail!("generating {out} failed ({status})");
            }
            std::fs::write(&done, b"")
                .with_context(|| format!("cannot write {}", done.display()))?;
        }
        if args.with_flink {
            for &parts in &args.workers {
                inputs.split(parts)?;
            }
        }
        Ok(inputs)
    }

    /// The JSON lines events as `parts` files of consecutive lines (one per Flink source
    /// task), written unless an earlier run left them complete.
    fn split(&self, parts: usize) -> anyhow::Result<PathBuf> {
        use std::io::{BufRead, Write};
        let dir = self.split_dir(parts);
        let done = dir.with_extension("complete");
        if done.exists() {
            return Ok(dir);
        }
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot remove the incomplete {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let source = self.json_lines();
        let open = std::fs::File::open(&source)
            .with_context(|| format!("cannot read {}", source.display()))?;
        let per_part = self.events.div_ceil(parts as u64);
        let mut lines = std::io::BufReader::with_capacity(1 << 20, open).split(b'\n');
        for part in 0..parts {
            let path = dir.join(format!("part-{part}.jsonl"));
            let file = std::fs::File::create(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
            for line in lines.by_ref().take(per_part as usize) {
                let line = line.with_context(|| format!("cannot read {}", source.display()))?;
                out.write_all(&line)
                    .and_then(|()| out.write_all(b"\n"))
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            out.flush()
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        std::fs::write(&done, b"").with_context(|| format!("cannot write {}", done.display()))?;
        Ok(dir)
    }

    fn split_dir(&self, parts: usize) -> PathBuf {
        self.dir.join(format!("split-{parts}"))
    }

    /// Reads every file that the runs read once, so that the first run finds them in the
    /// page cache as the later ones do, rather than measuring the disk (or whatever ran
    /// before the benchmark and pushed them out).
    fn warm(&self, sources: &[BenchSource], flink_parallelisms: &[usize]) -> anyhow::Result<()> {
        let mut paths = Vec::new();
        for source in sources {
            match source {
                BenchSource::Generator => {}
                BenchSource::Log => paths.push(self.topic()),
                BenchSource::Jsonl => paths.push(self.json_lines()),
            }
        }
        paths.extend(
            flink_parallelisms
                .iter()
                .map(|&parts| self.split_dir(parts)),
        );
        paths.iter().try_for_each(|path| read_through(path))
    }

    fn topic(&self) -> PathBuf {
        self.dir.join("topic")
    }

    fn json_lines(&self) -> PathBuf {
        self.dir.join("events.jsonl")
    }

    /// The side table q13 reads.
    fn side_table(&self) -> PathBuf {
        self.dir.join("side-input.csv")
    }

    /// Bytes a source reads: the topic's files or the JSON lines file.
    fn bytes(&self, source: BenchSource) -> Option<u64> {
        match source {
            BenchSource::Generator => None,
            BenchSource::Log => directory_bytes(&self.topic()),
            BenchSource::Jsonl => std::fs::metadata(self.json_lines())
                .ok()
                .map(|meta| meta.len()),
        }
    }
}

/// Reads the file at `path`, or every file under it, to the end.
fn read_through(path: &Path) -> anyhow::Result<()> {
    if path.is_dir() {
        let entries =
            std::fs::read_dir(path).with_context(|| format!("cannot list {}", path.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {}", path.display()))?;
            read_through(&entry.path())?;
        }
        return Ok(());
    }
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    std::io::copy(&mut file, &mut std::io::sink())
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(())
}

/// The bytes of every file under `dir`.
fn directory_bytes(dir: &Path) -> Option<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).ok()? {
        let entry = entry.ok()?;
        let meta = entry.metadata().ok()?;
        total += if meta.is_dir() {
            directory_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Some(total)
}

/// One configuration of a query.
struct Run<'a> {
    weir: &'a Path,
    args: &'a NexmarkBenchArgs,
    data: &'a Inputs,
    query: &'a str,
    source: BenchSource,
    workers: usize,
}

impl Run<'_> {
    /// The configuration's result from its runs at full speed and, with `half_load`, one
    /// more at half the median run's rate; moves `bar` one step for that run.
    fn result(
        &self,
        runs: Repeats<RunRecord>,
        half_load: bool,
        bar: &indicatif::ProgressBar,
    ) -> BenchRun {
        let (query, source, workers) = (self.query, self.source, self.workers);
        let (peak, repeats, mut error) = runs.median(|record| record.events_per_s);
        let mut half = None;
        if half_load {
            if let Some(peak) = &peak {
                bar.set_message(format!("{query} {source:?} {workers}w at half load"));
                let rate = (peak.events_per_s / 2.0 / workers as f64).max(1.0) as u64;
                match self.once("half-load", Some(rate)) {
                    Ok(run) => half = Some(run),
                    Err(failed) => {
                        error.get_or_insert_with(|| format!("{failed:#}"));
                    }
                }
            }
            bar.inc(1);
        }
        BenchRun {
            query: query.to_owned(),
            source,
            workers,
            input_bytes: self.data.bytes(source),
            peak,
            repeats,
            half_load: half,
            error,
        }
    }

    /// Runs the query in a process of its own, at most `max_rate` events per second per
    /// worker, and reads back its report. `kind` names the run's files.
    fn once(&self, kind: &str, max_rate: Option<u64>) -> anyhow::Result<RunRecord> {
        let name =
            format!("{}-{:?}-{}w-{kind}", self.query, self.source, self.workers).to_lowercase();
        let scratch = self.args.out.join("scratch").join(&name);
        if scratch.exists() {
            std::fs::remove_dir_all(&scratch)
                .with_context(|| format!("cannot empty {}", scratch.display()))?;
        }
        std::fs::create_dir_all(&scratch)
            .with_context(|| format!("cannot create {}", scratch.display()))?;
        let report = scratch.join("report.json");
        let mut command = Command::new(self.weir);
        command
            .args(["nexmark", "run", "--no-progress", "--query", self.query])
            .args(["--workers", &self.workers.to_string()])
            .arg("--report")
            .arg(&report)
            .arg("--state-dir")
            .arg(scratch.join("state"))
            .arg("--dead-letters")
            .arg(scratch.join("dead-letters.jsonl"))
            .arg("--side-input")
            .arg(self.data.side_table());
        match self.source {
            BenchSource::Generator => {
                command.args(["--events", &self.data.events.to_string()]);
            }
            BenchSource::Log => {
                command
                    .arg("--from")
                    .arg(format!("log:{}", self.data.topic().display()));
                if let Some(interval) = self.args.checkpoint_interval {
                    command
                        .arg("--checkpoint-dir")
                        .arg(scratch.join("checkpoints"))
                        .args([
                            "--checkpoint-interval",
                            &format!("{}ms", interval.as_millis()),
                        ]);
                }
                if max_rate.is_some() && self.args.checkpoint_interval.is_some() {
                    // The latency run writes its results exactly-once to a topic, so that
                    // latency to commit is measured too.
                    command
                        .arg("--out")
                        .arg(format!("log:{}", scratch.join("results").display()));
                }
            }
            BenchSource::Jsonl => {
                command.arg("--from").arg(self.data.json_lines());
            }
        }
        if let Some(rate) = max_rate {
            command.args(["--max-rate", &rate.to_string()]);
        }
        let log = self.args.out.join(format!("{name}.log"));
        let output = command
            .output()
            .with_context(|| format!("cannot start {}", self.weir.display()))?;
        std::fs::write(
            &log,
            [output.stdout.as_slice(), output.stderr.as_slice()].concat(),
        )
        .with_context(|| format!("cannot write {}", log.display()))?;
        if !output.status.success() {
            let last = String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or_default()
                .to_owned();
            bail!("{} ({}; log in {})", last, output.status, log.display());
        }
        let text = std::fs::read(&report)
            .with_context(|| format!("the run wrote no report {}", report.display()))?;
        let records: Vec<RunRecord> = serde_json::from_slice(&text)
            .with_context(|| format!("cannot read the report {}", report.display()))?;
        // The results and state are only there to be measured.
        std::fs::remove_dir_all(&scratch)
            .with_context(|| format!("cannot remove {}", scratch.display()))?;
        records
            .into_iter()
            .next()
            .with_context(|| format!("the report {} is empty", report.display()))
    }
}

/// The queries the Flink runner has (`RUNNER run --list`).
fn flink_queries(runner: &Path) -> anyhow::Result<Vec<String>> {
    let output = Command::new(runner)
        .args(["run", "--list"])
        .output()
        .with_context(|| format!("cannot start the Flink runner {}", runner.display()))?;
    if !output.status.success() {
        bail!(
            "the Flink runner {} failed ({}): {}",
            runner.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let listed = String::from_utf8_lossy(&output.stdout);
    Ok(listed
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect())
}

/// Runs `query` on Flink at `parallelism` over the split JSON lines events; `kind` names the
/// run's log.
fn flink_once(
    args: &NexmarkBenchArgs,
    data: &Inputs,
    query: &str,
    parallelism: usize,
    kind: &str,
) -> anyhow::Result<FlinkRecord> {
    let split = data.split(parallelism)?;
    let output = Command::new(&args.flink_runner)
        .args(["run", "--query", query, "--events"])
        .arg(&split)
        .args(["--parallelism", &parallelism.to_string()])
        .args(["--count", &data.events.to_string()])
        .output()
        .with_context(|| format!("cannot start {}", args.flink_runner.display()))?;
    let log = args
        .out
        .join(format!("{query}-flink-{parallelism}-{kind}.log"));
    std::fs::write(
        &log,
        [output.stdout.as_slice(), output.stderr.as_slice()].concat(),
    )
    .with_context(|| format!("cannot write {}", log.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().rev().find(|line| line.starts_with('{'));
    match last {
        Some(line) if output.status.success() => serde_json::from_str(line).with_context(|| {
            format!(
                "the Flink runner printed {line:?} (log in {})",
                log.display()
            )
        }),
        _ => bail!("Flink failed ({}; log in {})", output.status, log.display()),
    }
}

/// The runs of one configuration at full speed, and the first failure among them (after
/// which the configuration is not run again: it is reported failed whatever follows).
struct Repeats<T> {
    runs: Vec<T>,
    error: Option<String>,
}

impl<T> Default for Repeats<T> {
    fn default() -> Self {
        Repeats {
            runs: Vec::new(),
            error: None,
        }
    }
}

impl<T> Repeats<T> {
    fn push(&mut self, run: anyhow::Result<T>) {
        match run {
            Ok(run) => self.runs.push(run),
            Err(error) => {
                self.error.get_or_insert_with(|| format!("{error:#}"));
            }
        }
    }

    /// The median run by `rate` (of an even number, the slower of the middle two), every
    /// completed run's rate in the order they ran, and the first failure. A configuration
    /// with a failed run has no median: the others alone would pass for all of them.
    fn median(mut self, rate: impl Fn(&T) -> f64) -> (Option<T>, Vec<f64>, Option<String>) {
        let rates: Vec<f64> = self.runs.iter().map(&rate).collect();
        if self.error.is_some() {
            return (None, rates, self.error);
        }
        self.runs.sort_by(|a, b| rate(a).total_cmp(&rate(b)));
        let middle = self.runs.len().saturating_sub(1) / 2;
        let median = (!self.runs.is_empty()).then(|| self.runs.swap_remove(middle));
        (median, rates, self.error)
    }
}

/// One run per configuration, for results written before `--repeat`.
fn one_run() -> u32 {
    1
}

/// The processor's model name and the number of cores.
fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown processor".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    format!("{model}, {cores} cores")
}

fn write_results(dir: &Path, results: &BenchResults) -> anyhow::Result<()> {
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
    };
    write("results.json", &serde_json::to_vec_pretty(results)?)?;
    write("results.md", markdown(results).as_bytes())?;
    write("results.svg", chart(results).as_bytes())
}

/// The results as a markdown table, one row per run.
pub fn markdown(results: &BenchResults) -> String {
    let mut table = format!(
        "{} events per run on {}.\n\n",
        results.events, results.machine
    );
    if results.repeat > 1 {
        let _ = writeln!(
            table,
            "Throughput is the median of {} runs, their range in brackets.\n",
            results.repeat
        );
    }
    table.push_str(
        "| query | source | workers | M events/s | MB/s | CPU (s) | peak memory (MiB) | \
         state (MiB) | checkpoint (ms) | latency to emission p50 / p99 (ms) | \
         latency to commit p50 / p99 (ms) |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for run in &results.runs {
        let Some(peak) = &run.peak else {
            let _ = writeln!(
                table,
                "| {} | {:?} | {} | failed: {} | | | | | | | |",
                run.query,
                run.source,
                run.workers,
                run.error.as_deref().unwrap_or_default().replace('|', "/")
            );
            continue;
        };
        let megabytes = run.input_bytes.filter(|_| peak.wall_s > 0.0).map_or_else(
            || "-".into(),
            |bytes| format!("{:.0}", bytes as f64 / 1e6 / peak.wall_s),
        );
        let half = run.half_load.as_ref();
        let _ = writeln!(
            table,
            "| {} | {:?} | {} | {} | {megabytes} | {:.1} | {} | {} | {} | {} | {} |",
            run.query,
            run.source,
            run.workers,
            millions(peak.events_per_s, &run.repeats, 2),
            peak.cpu_s,
            mebibytes(peak.peak_memory_bytes),
            mebibytes(peak.state_bytes),
            peak.checkpoint_mean_ms
                .map_or_else(|| "-".into(), |ms| format!("{ms:.0}")),
            quantiles(half.and_then(|half| half.emission_latency)),
            quantiles(half.and_then(|half| half.commit_latency)),
        );
    }
    if !results.flink.is_empty() {
        table.push_str(&flink_comparison(results));
    }
    table
}

/// The comparison with Flink: per query and parallelism, both engines' throughput on the
/// same JSON lines events and their ratio, then the geometric mean of the ratios.
fn flink_comparison(results: &BenchResults) -> String {
    let mut table = String::from(
        "\nweir and Flink on the same JSON lines events:\n\n\
         | query | workers | weir M events/s | Flink M events/s | weir / Flink | \
         weir CPU (s) | Flink CPU (s) | weir peak (MiB) | Flink peak (MiB) |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let mut ratios = Vec::new();
    for flink in &results.flink {
        let weir = results
            .runs
            .iter()
            .find(|run| {
                run.query == flink.query
                    && run.source == BenchSource::Jsonl
                    && run.workers == flink.parallelism
            })
            .and_then(|run| Some((run, run.peak.as_ref()?)));
        match (weir, &flink.record) {
            (Some((run, weir)), Some(record)) => {
                let ratio = weir.events_per_s / record.events_per_s;
                ratios.push(ratio);
                let _ = writeln!(
                    table,
                    "| {} | {} | {} | {} | {ratio:.1}× | {:.1} | {:.1} | {} | {} |",
                    flink.query,
                    flink.parallelism,
                    millions(weir.events_per_s, &run.repeats, 2),
                    millions(record.events_per_s, &flink.repeats, 3),
                    weir.cpu_s,
                    record.cpu_s,
                    mebibytes(weir.peak_memory_bytes),
                    mebibytes(record.peak_memory_bytes),
                );
            }
            _ => {
                let why = flink.error.as_deref().unwrap_or("weir's run failed");
                let _ = writeln!(
                    table,
                    "| {} | {} | | | {} | | | | |",
                    flink.query,
                    flink.parallelism,
                    why.replace('|', "/")
                );
            }
        }
    }
    if !ratios.is_empty() {
        let mean = (ratios.iter().map(|ratio| ratio.ln()).sum::<f64>() / ratios.len() as f64).exp();
        let lowest = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let _ = writeln!(
            table,
            "\nGeometric mean of weir / Flink over {} runs: {mean:.1}× (lowest {lowest:.1}×).",
            ratios.len()
        );
    }
    table
}

/// A throughput in millions of events per second with `decimals`, followed by the range of
/// the runs when there were several.
fn millions(median: f64, repeats: &[f64], decimals: usize) -> String {
    let mut cell = format!("{:.*}", decimals, median / 1e6);
    if repeats.len() > 1 {
        let low = repeats.iter().copied().fold(f64::INFINITY, f64::min);
        let high = repeats.iter().copied().fold(0.0, f64::max);
        let _ = write!(
            cell,
            " ({:.*}–{:.*})",
            decimals,
            low / 1e6,
            decimals,
            high / 1e6
        );
    }
    cell
}

/// `p50 / p99` of a latency, `-` when not measured.
fn quantiles(latency: Option<Latency>) -> String {
    let largest = weir::BUCKET_BOUNDS_MS.last().copied().unwrap_or_default();
    let bound = |ms: Option<u64>| ms.map_or_else(|| format!("> {largest}"), |ms| format!("≤ {ms}"));
    latency.map_or_else(
        || "-".into(),
        |latency| format!("{} / {}", bound(latency.p50_ms), bound(latency.p99_ms)),
    )
}

/// The throughput of every run as a bar chart: a group per query, a bar per source and
/// worker count, and one per Flink parallelism.
fn chart(results: &BenchResults) -> String {
    let mut queries: Vec<&str> = Vec::new();
    let mut series: Vec<Series> = Vec::new();
    let mut add = |query: &str, name: String, value: Option<f64>| {
        let index = match series.iter().position(|series| series.name == name) {
            Some(index) => index,
            None => {
                series.push(Series {
                    name,
                    values: Vec::new(),
                });
                series.len() - 1
            }
        };
        series[index].values.push((query.to_owned(), value));
    };
    for run in &results.runs {
        if !queries.contains(&run.query.as_str()) {
            queries.push(&run.query);
        }
        let name = format!("weir, {:?}, {} workers", run.source, run.workers).to_lowercase();
        add(
            &run.query,
            name,
            run.peak.as_ref().map(|peak| peak.events_per_s),
        );
    }
    for run in &results.flink {
        let name = format!("flink, jsonl, {} workers", run.parallelism);
        add(
            &run.query,
            name,
            run.record.as_ref().map(|record| record.events_per_s),
        );
    }
    bar_chart(
        &format!(
            "Nexmark throughput, {} events ({})",
            results.events, results.machine
        ),
        "events/s",
        &queries,
        &series,
    )
}
