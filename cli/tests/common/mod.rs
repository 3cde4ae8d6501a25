//! What the process-killing tests share: running `weir`, reading what a run committed to a
//! topic or a directory of part files, and comparing it with a reference run.
// Not every test file uses every helper.
#![allow(dead_code, clippy::unwrap_used)]

pub mod kafka;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use weir::log::Topic;
use weir_nexmark::{write_events_to_topic, GeneratorConfig};

/// Starts `weir` with `args` in `dir`, standard error captured.
pub fn weir(dir: &Path, args: &[String]) -> Child {
    command(dir, args).spawn().unwrap()
}

/// `weir` with `args` in `dir`, standard output dropped, standard error captured.
fn command(dir: &Path, args: &[String]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_weir"));
    command
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Runs `weir` with `args` and the environment `env` in `dir` to its end within `deadline`
/// (a hang fails the test, naming `what`): how it ended, and its standard error.
pub fn run_within(
    dir: &Path,
    args: &[String],
    env: &[(&str, &str)],
    deadline: Duration,
    what: &str,
) -> (ExitStatus, String) {
    let mut child = command(dir, args)
        .envs(env.iter().copied())
        .spawn()
        .unwrap();
    let status = wait_within(&mut child, deadline, what);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status, stderr)
}

/// The exactly-once sinks under test.
#[derive(Clone, Copy)]
pub enum Output {
    /// A topic of the embedded log.
    Log,
    /// A directory of JSON lines part files, one per checkpoint epoch.
    Files,
    /// A directory of partitions (q10's `dt=.../hour=...`), each a directory of part files.
    Partitions,
    /// A topic receiving a changelog (`--changelog`): replayed change by change in commit
    /// order ([`applied_in_order`]) and compared as the table it ends in, so a change written
    /// twice, lost or reordered fails where it happens.
    Changelog,
}

impl Output {
    /// The `--out` argument for the directory or topic `name`.
    pub fn location(self, name: &str) -> String {
        match self {
            Output::Log | Output::Changelog => format!("log:{name}"),
            Output::Files | Output::Partitions => name.to_owned(),
        }
    }

    /// Every result row committed to the output `dir`, counted.
    pub fn committed(self, dir: &Path) -> BTreeMap<String, usize> {
        match self {
            Output::Log => committed_to_topic(dir),
            Output::Files => committed_to_files(dir),
            Output::Partitions => committed_to_partitions(dir),
            Output::Changelog => applied_in_order(dir),
        }
    }

    /// Extra arguments of the runs.
    pub fn args(self) -> Vec<String> {
        match self {
            Output::Changelog => vec!["--changelog".to_owned()],
            Output::Log | Output::Files | Output::Partitions => Vec::new(),
        }
    }
}

/// The table that the changelog committed to the topic in `dir` (`{"op": "+"|"-", "row":
/// ...}` values, one partition) ends in, replayed change by change in commit order. Each row
/// is a member of a set (the changelogs compared here carry their upsert key in the row), so
/// an insert of a row the table already holds, or a delete of one it does not hold, panics
/// with the change's offset: a change committed twice or lost shows where it happened, not
/// only in the final table. (A replayed `+r -r` pair next to the original is the one
/// duplicate that leaves no trace in order; the epoch protocol commits whole epochs, so a
/// replay repeats every change of an epoch, and with them the deletes that no longer fit.)
pub fn applied_in_order(dir: &Path) -> BTreeMap<String, usize> {
    let topic = Topic::open(dir).unwrap();
    assert_eq!(topic.partitions(), 1, "a changelog is read in one order");
    let mut table = std::collections::BTreeSet::new();
    let mut reader = topic.reader(0, 0).unwrap();
    let mut offset = 0u64;
    while reader
        .read(4096, |record| {
            let change: serde_json::Value = serde_json::from_slice(record.value).unwrap();
            let row = change["row"].to_string();
            let fits = match change["op"].as_str() {
                Some("+") => table.insert(row.clone()),
                Some("-") => table.remove(&row),
                other => panic!("offset {offset}: not a change: {other:?}"),
            };
            assert!(
                fits,
                "{}, offset {offset}: {} of row {row}, which the table {}",
                dir.display(),
                change["op"],
                if change["op"] == "+" {
                    "already holds"
                } else {
                    "does not hold"
                }
            );
            offset += 1;
        })
        .unwrap()
        > 0
    {}
    table.into_iter().map(|row| (row, 1)).collect()
}

/// Every line of the published part files in `dir` (hidden pending and partial files are
/// not published), counted.
pub fn committed_to_files(dir: &Path) -> BTreeMap<String, usize> {
    let mut lines = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        assert!(name.starts_with("part-"), "unexpected file {name}");
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            *lines.entry(line.to_owned()).or_insert(0) += 1;
        }
    }
    lines
}

/// Every line of the published part files of every partition under `dir` (a directory with
/// a sink ledger), counted.
pub fn committed_to_partitions(dir: &Path) -> BTreeMap<String, usize> {
    let mut lines = BTreeMap::new();
    let mut partitions = 0;
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        if dir.join(".ledger.json").exists() {
            partitions += 1;
            for (line, count) in committed_to_files(&dir) {
                *lines.entry(line).or_insert(0) += count;
            }
            continue;
        }
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            // The sink's list of its partitions.
            if path.file_name().unwrap().to_string_lossy().starts_with('.') {
                continue;
            }
            assert!(path.is_dir(), "unexpected file {}", path.display());
            pending.push(path);
        }
    }
    assert!(partitions > 0, "{} holds no partition", dir.display());
    lines
}

/// Every record value committed to the topic in `dir` (JSON, as the file sink writes it),
/// counted.
pub fn committed_to_topic(dir: &Path) -> BTreeMap<String, usize> {
    let topic = Topic::open(dir).unwrap();
    let mut values = BTreeMap::new();
    for partition in 0..topic.partitions() {
        let mut reader = topic.reader(partition, 0).unwrap();
        while reader
            .read(4096, |record| {
                let value = String::from_utf8(record.value.to_vec()).unwrap();
                *values.entry(value).or_insert(0) += 1;
            })
            .unwrap()
            > 0
        {}
    }
    values
}

/// Waits for `child` to end within `deadline`; kills it and panics, naming `what`, if it
/// does not.
pub fn wait_within(child: &mut Child, deadline: Duration, what: &str) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > deadline {
            child.kill().unwrap();
            panic!("{what} hung for {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits for `child` to succeed, within a deadline.
pub fn wait_success(mut child: Child, what: &str) {
    wait_within(&mut child, Duration::from_secs(120), what);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Fails, naming `what`, unless `actual` holds every row of `expected` as often: nothing
/// missing, nothing twice.
pub fn assert_same(
    expected: &BTreeMap<String, usize>,
    actual: &BTreeMap<String, usize>,
    what: &str,
) {
    let missing: Vec<_> = expected
        .iter()
        .filter(|(row, count)| actual.get(*row) < Some(count))
        .take(3)
        .collect();
    let extra = extra_rows(expected, actual);
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: missing or short {missing:?}, extra or repeated {extra:?}"
    );
}

/// Up to three rows of `actual` that `expected` lacks or holds fewer times.
fn extra_rows<'a>(
    expected: &BTreeMap<String, usize>,
    actual: &'a BTreeMap<String, usize>,
) -> Vec<(&'a String, &'a usize)> {
    actual
        .iter()
        .filter(|(row, count)| expected.get(*row) < Some(count))
        .take(3)
        .collect()
}

/// Fails unless every row of `actual` is a row of `expected`, none more often: what a failed
/// run committed is whole results, none twice.
pub fn assert_part_of(expected: &BTreeMap<String, usize>, actual: &BTreeMap<String, usize>) {
    let extra = extra_rows(expected, actual);
    assert!(
        extra.is_empty(),
        "committed rows not in the reference, or repeated: {extra:?}"
    );
}

/// `weir nexmark run` of `query` from the topic `events` into `out` on two workers, stopping
/// at the first record it cannot decode.
pub fn run_args(query: &str, out: &str) -> Vec<String> {
    [
        "nexmark",
        "run",
        "--query",
        query,
        "--from",
        "log:events",
        "--workers",
        "2",
        "--out",
        out,
        "--no-progress",
        "--fail-fast",
    ]
    .map(String::from)
    .to_vec()
}

/// The arguments that turn checkpoints on: into `dir` every `interval`, state beside it, the
/// input read at `rate` events per second per worker so that a run spans several epochs.
pub fn checkpoint_args(dir: &str, interval: &str, rate: u64) -> Vec<String> {
    [
        "--checkpoint-dir",
        dir,
        "--checkpoint-interval",
        interval,
        "--state-dir",
        &format!("{dir}-state"),
        "--max-rate",
        &rate.to_string(),
    ]
    .map(String::from)
    .to_vec()
}

/// Writes `events` Nexmark events to a new 4-partition topic `dir/events`, 2,000 events per
/// second of event time (so windows and sessions open and close throughout).
pub fn write_events(dir: &Path, events: u64) -> Topic {
    write_events_at(dir, events, 2_000)
}

/// Writes `events` Nexmark events to a new 4-partition topic `dir/events`, `rate` events per
/// second of event time.
pub fn write_events_at(dir: &Path, events: u64, rate: u64) -> Topic {
    write_events_to_topic(
        dir.join("events"),
        4,
        &GeneratorConfig {
            rate,
            ..GeneratorConfig::default()
        },
        events,
        &Default::default(),
    )
    .unwrap()
}

/// xorshift64*: the kill moments, reproducible from the seed.
pub struct Moments(pub u64);

impl Moments {
    /// A number of milliseconds below `below`.
    pub fn next_ms(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % below
    }
}

/// Kills per test: `WEIR_KILL_POINTS`, 10 unless set (1,000 for a long run).
pub fn kill_points() -> usize {
    std::env::var("WEIR_KILL_POINTS")
        .map(|points| points.parse().unwrap())
        .unwrap_or(10)
}

/// The seed of the kill moments: `WEIR_KILL_SEED`, or the clock (tests print it).
pub fn kill_seed() -> u64 {
    std::env::var("WEIR_KILL_SEED")
        .map(|seed| seed.parse().unwrap())
        .unwrap_or_else(|_| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
        | 1
}

/// The longest one run may take before a kill test calls it hung (runs take a few seconds).
const RUN_DEADLINE: Duration = Duration::from_secs(120);

/// Runs `weir args` in `dir` until a run ends by itself: up to `kills` times, SIGKILLs it at
/// a moment within `window` of its start and starts it again with `--restore latest`.
/// Returns how many kills it took; a failed or hung run fails the test, naming `what`.
pub fn run_with_kills(
    dir: &Path,
    mut args: Vec<String>,
    kills: usize,
    moments: &mut Moments,
    window: Duration,
    what: &str,
) -> usize {
    let mut killed = 0;
    loop {
        let mut child = weir(dir, &args);
        let at = Instant::now() + Duration::from_millis(moments.next_ms(window.as_millis() as u64));
        let started = Instant::now();
        let finished = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if killed < kills && Instant::now() >= at {
                break None;
            }
            if started.elapsed() > RUN_DEADLINE {
                child.kill().unwrap();
                panic!("{what}: a run hung for {RUN_DEADLINE:?} (after {killed} kills)");
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        match finished {
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                killed += 1;
            }
            Some(status) => {
                let mut stderr = String::new();
                std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr)
                    .unwrap();
                assert!(
                    status.success(),
                    "{what}: run after {killed} kills failed: {stderr}"
                );
                return killed;
            }
        }
        if !args.iter().any(|arg| arg == "--restore") {
            args.extend(["--restore".to_owned(), "latest".to_owned()]);
        }
    }
}
