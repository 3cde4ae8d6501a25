//! Damage sweeps: every kind of damage (a flipped bit, a truncation, a zeroed run, inserted
//! garbage, a deleted file, a stale file from another run), at a spread of places, to every
//! file of a small topic and of a killed job's checkpoint directory. Each damaged copy is run
//! under a deadline; it must end with an error whose first line names the damaged file (or
//! its partition or checkpoint), or complete with exactly the output of an undamaged run.
//! Never a hang, a panic, or output that differs without a word.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::Output;
use weir_nexmark::{write_events_to_topic, GeneratorConfig};

/// The longest one run over a damaged copy may take (an undamaged one takes about a second).
const RUN_DEADLINE: Duration = Duration::from_secs(60);

/// What is done to a file.
#[derive(Clone, Copy, Debug)]
enum Damage {
    /// One bit flipped at this fraction of the file.
    Flip(f64),
    /// The file cut at this fraction of its length.
    Truncate(f64),
    /// 64 bytes zeroed from this fraction on.
    Zero(f64),
    /// 16 bytes of garbage inserted at this fraction.
    Insert(f64),
    /// The file deleted.
    Delete,
}

impl Damage {
    /// Every kind, at the start, the middle and the end of a file.
    fn all() -> Vec<Damage> {
        let mut all = vec![Damage::Delete];
        for at in [0.0, 0.5, 0.97] {
            all.extend([
                Damage::Flip(at),
                Damage::Truncate(at),
                Damage::Zero(at),
                Damage::Insert(at),
            ]);
        }
        all
    }

    fn apply(self, path: &Path) {
        let mut bytes = std::fs::read(path).unwrap();
        let at = |fraction: f64| ((bytes.len() as f64 * fraction) as usize).min(bytes.len());
        match self {
            Damage::Flip(fraction) => {
                let at = at(fraction).min(bytes.len().saturating_sub(1));
                if let Some(byte) = bytes.get_mut(at) {
                    *byte ^= 0x08;
                }
            }
            Damage::Truncate(fraction) => bytes.truncate(at(fraction)),
            Damage::Zero(fraction) => {
                let from = at(fraction);
                let to = (from + 64).min(bytes.len());
                bytes[from..to].fill(0);
            }
            Damage::Insert(fraction) => {
                let at = at(fraction);
                bytes.splice(at..at, *b"\x7f garbage \xff\x00\x01\x02\x03");
            }
            Damage::Delete => {
                std::fs::remove_file(path).unwrap();
                return;
            }
        }
        std::fs::write(path, bytes).unwrap();
    }
}

/// Every file under `dir` that holds data (not the empty lock files), sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else if std::fs::metadata(&path).unwrap().len() > 0 {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// Runs `weir` in `dir` within the deadline: whether it succeeded, and its standard error.
fn run(dir: &Path, args: &[String], what: &str) -> (bool, String) {
    let (status, stderr) = common::run_within(dir, args, &[], RUN_DEADLINE, what);
    (status.success(), stderr)
}

/// Checks one run over a damaged copy: a failure must name the damaged file (`names` holds
/// the words that do: its name, its partition or checkpoint directory), a success must give
/// the reference output.
fn judge(
    what: &str,
    (succeeded, stderr): (bool, String),
    names: &[String],
    output: impl FnOnce() -> BTreeMap<String, usize>,
    reference: &BTreeMap<String, usize>,
) -> &'static str {
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{what}: panicked: {stderr}"
    );
    if succeeded {
        let output = output();
        assert!(
            output == *reference,
            "{what}: completed with other output than the undamaged run ({} rows, {} expected) without an error: {stderr}",
            output.values().sum::<usize>(),
            reference.values().sum::<usize>()
        );
        "same output"
    } else {
        let error = stderr
            .lines()
            .find(|line| line.starts_with("error: "))
            .unwrap_or_else(|| panic!("{what}: failed without an error line: {stderr}"));
        assert!(
            names.iter().any(|name| error.contains(name.as_str())),
            "{what}: the error names none of {names:?}: {error}"
        );
        "clear error"
    }
}

/// Prints how the runs of a sweep ended.
fn report(sweep: &str, outcomes: &[&str]) {
    let mut counts = BTreeMap::new();
    for outcome in outcomes {
        *counts.entry(*outcome).or_insert(0) += 1;
    }
    println!("{sweep}: {} runs: {counts:?}", outcomes.len());
}

/// The words that name `file` (a path under the damaged copy's root, starting with the
/// root's name) in an error: its path, its file name, and each directory between (a
/// partition, a checkpoint), as a path from the root so that a bare partition number does
/// not match any digit.
fn names_of(file: &Path) -> Vec<String> {
    let mut names = vec![file.display().to_string()];
    names.extend(
        file.file_name()
            .map(|name| name.to_string_lossy().into_owned()),
    );
    let mut dirs: Vec<&Path> = file.ancestors().skip(1).collect();
    // The root itself (and the empty path above it) names nothing in particular.
    dirs.truncate(dirs.len().saturating_sub(2));
    names.extend(dirs.iter().map(|dir| dir.display().to_string()));
    names
}

/// A topic of 4,000 events in two partitions, and `q0` over it (every event out as it
/// came in) with `--fail-fast`: every damage to every file of the topic.
#[test]
fn every_damage_to_a_topic_fails_naming_the_file_or_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let generate = |name: &str, events: u64| {
        write_events_to_topic(
            dir.path().join(name),
            2,
            &GeneratorConfig::default(),
            events,
            &Default::default(),
        )
        .unwrap()
    };
    generate("events", 4_000);
    // The same topic as it was earlier (half as many events), for stale files.
    generate("earlier", 2_000);
    let args = |topic: &Path| -> Vec<String> {
        let mut args = common::run_args("q0", "out.jsonl");
        let from = args.iter().position(|arg| arg == "--from").unwrap() + 1;
        args[from] = format!("log:{}", topic.display());
        args
    };
    let lines = |path: &Path| {
        let mut lines = BTreeMap::new();
        if let Ok(text) = std::fs::read_to_string(path) {
            for line in text.lines() {
                *lines.entry(line.to_owned()).or_insert(0) += 1;
            }
        }
        lines
    };
    let (ok, stderr) = run(dir.path(), &args(&dir.path().join("events")), "reference");
    assert!(ok, "the reference run failed: {stderr}");
    let reference = lines(&dir.path().join("out.jsonl"));
    // q0 passes the bids through: 92 % of the events.
    assert_eq!(reference.values().sum::<usize>(), 3_680);

    let original = dir.path().join("events");
    let mut outcomes = Vec::new();
    for file in files_under(&original) {
        let relative = file.strip_prefix(&original).unwrap().to_owned();
        let stale = dir.path().join("earlier").join(&relative);
        let mut damages: Vec<Option<Damage>> = Damage::all().into_iter().map(Some).collect();
        damages.push(None);
        for damage in damages {
            let case = tempfile::tempdir().unwrap();
            let copy = case.path().join("events");
            copy_dir(&original, &copy);
            match damage {
                Some(damage) => damage.apply(&copy.join(&relative)),
                // The file as it was earlier in the topic's life.
                None => {
                    std::fs::copy(&stale, copy.join(&relative)).unwrap();
                }
            }
            let what = format!("{} {damage:?}", relative.display());
            let ended = run(case.path(), &args(&copy), &what);
            outcomes.push(judge(
                &what,
                ended,
                &names_of(&Path::new("events").join(&relative)),
                || lines(&case.path().join("out.jsonl")),
                &reference,
            ));
        }
    }
    report("topic", &outcomes);
}

/// The run id in the names of a killed job's checkpoint files (`worker-0-run-ID.json`).
fn run_id(checkpoints: &Path) -> String {
    files_under(checkpoints)
        .iter()
        .find_map(|file| {
            let name = file.file_name()?.to_str()?;
            let id = name.strip_prefix("worker-0-run-")?.strip_suffix(".json")?;
            Some(id.to_owned())
        })
        .unwrap()
}

/// A job killed at a step of its commit, and what of it to damage.
struct Killed {
    /// Where the job writes (the reference run writes a topic).
    output: Output,
    /// The crash point the job is killed at, and which hit of it.
    crash_at: (&'static str, &'static str),
    /// The files to damage: those a restore reads, by the directories under the job's.
    damaged: fn(&Path) -> Vec<PathBuf>,
}

/// q5 with checkpoints every 50 ms, killed at `job.crash_at`; every damage to every file that
/// `--restore latest` reads (`job.damaged`), and each such file replaced by its namesake from
/// another run of the same job killed at the same step (a stale file of another run).
fn sweep_a_killed_job(sweep: &str, job: Killed) {
    let dir = tempfile::tempdir().unwrap();
    let events = common::write_events(dir.path(), 20_000);
    let events = events.dir().to_owned();
    let args = |output: Option<Output>| -> Vec<String> {
        let out = match output {
            Some(output) => output.location("out"),
            None => Output::Log.location("reference"),
        };
        let mut args = common::run_args("q5", &out);
        let from = args.iter().position(|arg| arg == "--from").unwrap() + 1;
        args[from] = format!("log:{}", events.display());
        if output.is_some() {
            args.extend(common::checkpoint_args("checkpoints", "50ms", 5_000));
        }
        args
    };
    let (ok, stderr) = run(dir.path(), &args(None), "reference");
    assert!(ok, "the reference run failed: {stderr}");
    let reference = common::committed_to_topic(&dir.path().join("reference"));
    assert!(!reference.is_empty(), "q5 produced no results");

    // Two runs killed at the same step: the one damaged, and another whose files are stale.
    for name in ["killed", "other"] {
        let path = dir.path().join(name);
        std::fs::create_dir(&path).unwrap();
        let crash = [
            ("WEIR_CRASH_POINT", job.crash_at.0),
            ("WEIR_CRASH_AT", job.crash_at.1),
        ];
        let (status, _) = common::run_within(
            &path,
            &args(Some(job.output)),
            &crash,
            RUN_DEADLINE,
            "a run to be killed",
        );
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "the run was not killed at its crash point"
        );
    }
    let killed = dir.path().join("killed");
    let other = dir.path().join("other");
    let ids = (
        run_id(&killed.join("checkpoints")),
        run_id(&other.join("checkpoints")),
    );
    let restore = {
        let mut restore = args(Some(job.output));
        let rate = restore.iter().position(|arg| arg == "--max-rate").unwrap();
        restore.drain(rate..rate + 2);
        restore.extend(["--restore".into(), "latest".into()]);
        restore
    };
    // The undamaged restore must itself give the reference.
    let case = tempfile::tempdir().unwrap();
    copy_dir(&killed, case.path());
    let (ok, stderr) = run(case.path(), &restore, "undamaged restore");
    assert!(ok, "the undamaged restore failed: {stderr}");
    common::assert_same(
        &reference,
        &job.output.committed(&case.path().join("out")),
        "undamaged restore",
    );

    let mut outcomes = Vec::new();
    let mut stale_files = 0;
    for file in (job.damaged)(&killed) {
        let relative = file.strip_prefix(&killed).unwrap().to_owned();
        let stale = other.join(relative.display().to_string().replace(&ids.0, &ids.1));
        let mut damages: Vec<Option<Damage>> = Damage::all().into_iter().map(Some).collect();
        if stale.exists() {
            damages.push(None);
            stale_files += 1;
        }
        for damage in damages {
            let case = tempfile::tempdir().unwrap();
            copy_dir(&killed, case.path());
            match damage {
                Some(damage) => damage.apply(&case.path().join(&relative)),
                None => {
                    std::fs::copy(&stale, case.path().join(&relative)).unwrap();
                }
            }
            let what = format!("{} {damage:?}", relative.display());
            let ended = run(case.path(), &restore, &what);
            outcomes.push(judge(
                &what,
                ended,
                &names_of(&relative),
                || job.output.committed(&case.path().join("out")),
                &reference,
            ));
        }
    }
    report(sweep, &outcomes);
    println!("{sweep}: {stale_files} files replaced by their namesakes of another run");
    assert!(
        stale_files > 0,
        "the other run left no namesakes to make stale files of"
    );
}

/// The log sink killed in the middle of a commit (it has marked an epoch's transaction
/// committed but not appended it): the checkpoints and the output topic's staged
/// transactions.
#[test]
fn every_damage_to_a_killed_jobs_checkpoints_fails_naming_the_file_or_restores_exactly_once() {
    sweep_a_killed_job(
        "checkpoints",
        Killed {
            output: Output::Log,
            crash_at: ("log_sink.commit_marked", "3"),
            damaged: |job| {
                let mut files = files_under(&job.join("checkpoints"));
                files.extend(files_under(&job.join("out/.transactions")));
                files
            },
        },
    );
}

/// The file sink killed before a commit, with staged parts pending: its ledger and pending
/// parts (the hidden files of its output directory; the published parts are its readers').
#[test]
fn every_damage_to_a_killed_file_sinks_staged_parts_fails_naming_the_file_or_restores_exactly_once()
{
    sweep_a_killed_job(
        "part files",
        Killed {
            output: Output::Files,
            crash_at: ("sink.commit", "3"),
            damaged: |job| {
                files_under(&job.join("out"))
                    .into_iter()
                    .filter(|file| {
                        file.file_name()
                            .is_some_and(|name| name.as_encoded_bytes().starts_with(b"."))
                    })
                    .collect()
            },
        },
    );
}
