//! The `weir` command line as users run it: generate, run on threads and on two processes,
//! and clear one-line errors.

// Test helpers panic on purpose: a failed set-up step is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use weir_nexmark::{Event, Generator, GeneratorConfig};

/// Runs `weir` with `args` and `--no-progress`.
fn weir(args: &[&str]) -> Output {
    weir_as_given(&[args, &["--no-progress"]].concat())
}

/// Runs `weir` with `args` to its end, within a deadline (a command that hangs fails the test).
fn weir_as_given(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read while waiting, so that a full pipe cannot stall the command.
    let stdout = read_on_a_thread(child.stdout.take().unwrap());
    let stderr = read_on_a_thread(child.stderr.take().unwrap());
    let status = common::wait_within(&mut child, Duration::from_secs(120), &format!("{args:?}"));
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

fn read_on_a_thread(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        pipe.read_to_end(&mut bytes).unwrap();
        bytes
    })
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The lines of a file, counted: a multiset.
fn line_counts(path: &Path) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        *counts.entry(line.to_owned()).or_default() += 1;
    }
    counts
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "weir failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn generate_writes_the_generator_events_as_json_lines() {
    let dir = scratch("generate");
    let file = dir.join("events.jsonl");
    let output = weir(&[
        "nexmark",
        "generate",
        "--events",
        "5000",
        "--seed",
        "3",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_success(&output);
    let generator = Generator::new(GeneratorConfig {
        seed: 3,
        ..GeneratorConfig::default()
    });
    let text = std::fs::read_to_string(&file).unwrap();
    let mut count = 0;
    for (id, line) in text.lines().enumerate() {
        let event: Event = serde_json::from_str(line).unwrap();
        assert_eq!(event, generator.event(id as u64));
        count += 1;
    }
    assert_eq!(count, 5000);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Two ports that were free a moment ago.
fn free_ports() -> [u16; 2] {
    let listeners = [
        TcpListener::bind("127.0.0.1:0").unwrap(),
        TcpListener::bind("127.0.0.1:0").unwrap(),
    ];
    listeners.map(|listener| listener.local_addr().unwrap().port())
}

#[test]
fn one_worker_two_workers_and_two_processes_agree() {
    let dir = scratch("agree");
    for query in ["q0", "q1", "q2"] {
        let run = |name: &str, extra: &[&str]| -> PathBuf {
            let out = dir.join(format!("{query}-{name}.jsonl"));
            let mut args = vec!["nexmark", "run", "--query", query, "--events", "40000"];
            args.extend_from_slice(&["--out", out.to_str().unwrap()]);
            args.extend_from_slice(extra);
            assert_success(&weir(&args));
            out
        };
        let one = line_counts(&run("one", &["--workers", "1"]));
        let two = line_counts(&run("two", &["--workers", "2"]));
        assert!(!one.is_empty());
        assert!(one == two, "{query}: 1 and 2 workers differ");

        let hostfile = dir.join("hosts");
        let ports = free_ports();
        std::fs::write(
            &hostfile,
            format!("127.0.0.1:{}\n127.0.0.1:{}\n", ports[0], ports[1]),
        )
        .unwrap();
        let out = dir.join(format!("{query}-processes.jsonl"));
        let processes: Vec<_> = (0..2)
            .map(|index| {
                let mut command = Command::new(env!("CARGO_BIN_EXE_weir"));
                command.args(["nexmark", "run", "--query", query, "--events", "40000"]);
                command.args(["--hostfile", hostfile.to_str().unwrap()]);
                command.args(["--process", &index.to_string(), "--no-progress"]);
                command.args(["--out", out.to_str().unwrap()]);
                command.spawn().unwrap()
            })
            .collect();
        for process in processes {
            common::wait_success(process, &format!("{query} on two processes"));
        }
        assert!(
            line_counts(&out) == one,
            "{query}: 2 processes differ from 1 worker"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_input_gets_one_clear_line_and_a_failure_code() {
    let output = weir(&[
        "nexmark",
        "run",
        "--query",
        "q0",
        "--events",
        "10",
        "--workers",
        "0",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim(),
        "error: a job needs at least one worker per process"
    );

    let output = weir(&[
        "nexmark",
        "run",
        "--query",
        "q1",
        "--events",
        "1000",
        "--workers",
        "2",
        "--out",
        "/nonexistent-dir/r.jsonl",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.trim().lines().last().unwrap_or_default();
    assert!(last.starts_with("error: "), "{stderr}");
    assert!(last.contains("/nonexistent-dir/r.jsonl"), "{stderr}");

    let output = weir(&[
        "nexmark",
        "run",
        "--query",
        "q1",
        "--from",
        "/nonexistent.jsonl",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.matches("No such file").count(), 1, "{stderr}");
    assert!(stderr.contains("/nonexistent.jsonl"), "{stderr}");
}

/// A dead letter is not a result: a file whose only line cannot be decoded writes 0 output
/// rows and 1 dead letter, and the summary says so.
#[test]
fn dead_letters_are_not_counted_as_output_rows() {
    let dir = scratch("only-a-dead-letter");
    let input = dir.join("events.jsonl");
    std::fs::write(&input, "not json\n").unwrap();
    let letters = dir.join("dead-letters.jsonl");
    let output = weir(&[
        "nexmark",
        "run",
        "--query",
        "q1",
        "--from",
        input.to_str().unwrap(),
        "--dead-letters",
        letters.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(" 0 events "), "{stdout}");
    assert!(stdout.contains(" 0 output rows"), "{stdout}");
    assert!(
        stdout.contains("1 input record could not be decoded"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(&letters).unwrap().lines().count(),
        1
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// `weir checkpoints describe` names the stateful operators a checkpoint holds state for; a
/// restore into a query without them fails naming them, unless `--allow-removed-operators`.
#[test]
fn checkpoints_name_their_operators_and_restores_check_them() {
    let dir = scratch("operators");
    let topic = format!("log:{}", dir.join("events").display());
    let (checkpoints, state) = (dir.join("checkpoints"), dir.join("state"));
    let (checkpoints, state) = (checkpoints.to_str().unwrap(), state.to_str().unwrap());
    assert_success(&weir(&[
        "nexmark",
        "generate",
        "--events",
        "20000",
        "--partitions",
        "2",
        "--out",
        &topic,
    ]));
    let run = |query: &str, extra: &[&str]| {
        let mut args = vec![
            "nexmark",
            "run",
            "--query",
            query,
            "--from",
            &topic,
            "--checkpoint-dir",
            checkpoints,
            "--state-dir",
            state,
            // No dead-letter output in the working directory, which other tests share.
            "--fail-fast",
        ];
        args.extend(extra);
        weir(&args)
    };
    assert_success(&run("q5", &[]));
    let described = weir_as_given(&["checkpoints", "describe", checkpoints]);
    assert_success(&described);
    let described = String::from_utf8_lossy(&described.stdout);
    assert!(
        described.contains("operators:   window, window#2"),
        "{described}"
    );
    let refused = run("q1", &["--restore", "latest"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(r#"operators the job lacks: ["window", "window#2"]"#),
        "{stderr}"
    );
    assert_success(&run(
        "q1",
        &["--restore", "latest", "--allow-removed-operators"],
    ));
    std::fs::remove_dir_all(dir).unwrap();
}

/// A bad flag or a directory that does not fit ends the command at once, with an error whose
/// first line names the flag or the path and says what is wrong.
#[test]
fn bad_arguments_end_with_one_line_naming_what_is_wrong() {
    let dir = scratch("arguments");
    let topic = format!("log:{}", dir.join("events").display());
    assert_success(&weir(&[
        "nexmark", "generate", "--events", "2000", "--out", &topic,
    ]));
    let checkpoints = dir.join("checkpoints");
    let checkpoints = checkpoints.to_str().unwrap();
    let state = dir.join("state");
    let state = state.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "nexmark",
            "run",
            "--query",
            "q5",
            "--from",
            &topic,
            "--fail-fast",
            "--state-dir",
            state,
        ];
        args.extend(extra);
        let output = weir(&args);
        assert!(!output.status.success(), "{extra:?} ran");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        stderr.lines().next().unwrap_or_default().to_owned()
    };
    let expect = |extra: &[&str], words: &[&str]| {
        let first = run(extra);
        assert!(first.starts_with("error: "), "{extra:?}: {first}");
        for word in words {
            assert!(first.contains(word), "{extra:?}: {first:?} lacks {word:?}");
        }
    };
    expect(&["--max-rate", "-5"], &["'-5'", "--max-rate"]);
    expect(&["--max-rate", "0"], &["'0'", "--max-rate"]);
    let interval = ["--checkpoint-dir", checkpoints, "--checkpoint-interval"];
    expect(
        &[&interval[..], &["-1s"]].concat(),
        &["--checkpoint-interval", "cannot be negative"],
    );
    expect(
        &[&interval[..], &["5parsecs"]].concat(),
        &["--checkpoint-interval", "ms, s or m"],
    );
    expect(
        &[&interval[..], &["0s"]].concat(),
        &["checkpoint interval must be longer than zero"],
    );
    expect(
        &["--checkpoint-dir", checkpoints, "--restore", "/"],
        &["/ holds no complete checkpoint"],
    );
    // A port in use: this process's listening address is named.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    expect(
        &["--processes", "2", "--process", "0", "--port", &port],
        &[&format!("127.0.0.1:{port}"), "in use"],
    );
    // The checkpoint directory of another run: a fresh run refuses it, naming it.
    assert_success(&weir(&[
        "nexmark",
        "run",
        "--query",
        "q5",
        "--from",
        &topic,
        "--fail-fast",
        "--state-dir",
        state,
        "--checkpoint-dir",
        checkpoints,
        "--out",
        dir.join("out.jsonl").to_str().unwrap(),
    ]));
    expect(
        &["--checkpoint-dir", checkpoints],
        &[checkpoints, "an earlier run"],
    );
    // The message says each thing once.
    let first = run(&["--checkpoint-dir", checkpoints]);
    assert_eq!(first.matches("earlier run").count(), 1, "{first}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn query_all_runs_every_query_of_the_registry_and_tables_them() {
    let dir = scratch("all");
    let report = dir.join("report.json");
    let output = weir(&[
        "nexmark",
        "run",
        "--query",
        "all",
        "--events",
        "20000",
        "--workers",
        "2",
        "--side-input",
        dir.join("side.csv").to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_success(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let records: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(records.len(), weir_nexmark::QUERIES.len());
    for (query, record) in weir_nexmark::QUERIES.iter().zip(&records) {
        assert_eq!(record["query"], query.name);
        assert!(record["events"].as_u64().unwrap() >= 20_000, "{record}");
        assert!(record["cpu_s"].as_f64().unwrap() > 0.0, "{record}");
        assert!(
            stdout.contains(&format!("\n| {} | ", query.name)),
            "{} is not in the table:\n{stdout}",
            query.name
        );
    }
    // One job's results at a time: --out has no single place to go.
    let refused = weir(&[
        "nexmark", "run", "--query", "all", "--events", "10", "--out", "x",
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("give one --query"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The benchmark harness on a small input: each query on each source, three times, the
/// latency runs from the log, and the comparison with a stand-in Flink runner (the real one
/// needs Flink).
#[test]
fn the_benchmark_harness_measures_each_configuration_and_compares_with_flink() {
    let dir = scratch("bench");
    let runner = dir.join("fake-flink.sh");
    // Has q0 and q5, and prints a throughput of 0.1, 0.2 or 0.3 M events per second in
    // turn: the three runs of a query at one parallelism (one run at each of the two
    // parallelisms in between) print each once.
    std::fs::write(
        &runner,
        r##"#!/bin/sh
case "$*" in *--list*) echo q0 q5; exit 0;; esac
echo run >> "$0.calls"
rate=$(( ($(wc -l < "$0.calls") % 3 + 1) * 100000 ))
echo "{\"events\": 20000, \"wall_s\": 0.2, \"events_per_s\": $rate.0, \"cpu_s\": 0.4, \"peak_memory_bytes\": 1048576}"
"##,
    )
    .unwrap();
    let mut permissions = std::fs::metadata(&runner).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&runner, permissions).unwrap();
    let out = dir.join("results");
    let output = weir(&[
        "bench",
        "nexmark",
        "--events",
        "20000",
        "--queries",
        "q0,q5,q13",
        "--source",
        "log,jsonl",
        "--workers",
        "1,2",
        "--checkpoint-interval",
        "200ms",
        "--repeat",
        "3",
        "--with-flink",
        "--flink-runner",
        runner.to_str().unwrap(),
        "--data-dir",
        dir.join("data").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_success(&output);
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    let runs = results["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3 * 2 * 2);
    let sorted = |rates: &serde_json::Value| {
        let mut rates: Vec<f64> = rates
            .as_array()
            .unwrap()
            .iter()
            .map(|rate| rate.as_f64().unwrap())
            .collect();
        rates.sort_by(f64::total_cmp);
        rates
    };
    for run in runs {
        let peak = &run["peak"];
        assert!(peak["events"].as_u64().unwrap() >= 20_000, "{run}");
        // The run kept is the median of three.
        let rates = sorted(&run["repeats"]);
        assert_eq!(rates.len(), 3, "{run}");
        assert_eq!(peak["events_per_s"].as_f64().unwrap(), rates[1], "{run}");
        assert!(run["input_bytes"].as_u64().unwrap() > 0, "{run}");
        if run["source"] == "log" {
            assert!(peak["checkpoints"].as_u64().unwrap() > 0, "{run}");
            let half = &run["half_load"];
            assert!(
                half["emission_latency"]["samples"].as_u64().unwrap() > 0,
                "{run}"
            );
        } else {
            assert!(run["half_load"].is_null(), "{run}");
        }
    }
    let flink = results["flink"].as_array().unwrap();
    assert_eq!(flink.len(), 3 * 2);
    assert!(flink
        .iter()
        .filter(|run| run["query"] == "q13")
        .all(|run| run["error"].as_str().unwrap().contains("does not have")));
    for run in flink.iter().filter(|run| run["query"] != "q13") {
        assert_eq!(sorted(&run["repeats"]), [1e5, 2e5, 3e5], "{run}");
        assert_eq!(run["record"]["events_per_s"], 2e5, "{run}");
    }
    let table = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(table.contains("the median of 3 runs"), "{table}");
    assert!(table.contains("| 0.200 (0.100–0.300) |"), "{table}");
    assert!(
        table.contains("Geometric mean of weir / Flink over 4 runs"),
        "{table}"
    );
    let chart = std::fs::read_to_string(out.join("results.svg")).unwrap();
    // A bar per query, source and worker count, and one per Flink run that ran.
    assert_eq!(chart.matches("<title>").count(), 3 * 2 * 2 + 4, "{chart}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `weir schema check` says whether a new schema version is compatible, and which fields
/// break it; the command fails (exit 1) on an incompatible change.
#[test]
fn schema_check_accepts_compatible_changes_and_names_what_breaks_the_others() {
    let dir = scratch("schema-check");
    let old = dir.join("old.json");
    let new = dir.join("new.json");
    let bad = dir.join("bad.json");
    let record = |properties: &str, required: &str| {
        format!(
            r#"{{"type": "object", "properties": {properties}, "required": {required}, "additionalProperties": false}}"#
        )
    };
    std::fs::write(&old, record(r#"{"id": {"type": "integer"}}"#, r#"["id"]"#)).unwrap();
    // A closed model gains an optional field: new readers read old records.
    let optional = r#"{"id": {"type": "integer"}, "note": {"type": "string"}}"#;
    std::fs::write(&new, record(optional, r#"["id"]"#)).unwrap();
    std::fs::write(&bad, record(r#"{"id": {"type": "string"}}"#, r#"["id"]"#)).unwrap();
    let path = |p: &PathBuf| p.to_str().unwrap().to_owned();

    let ok = weir_as_given(&["schema", "check", &path(&old), &path(&new)]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("is backward compatible"));

    let forward = weir_as_given(&[
        "schema",
        "check",
        &path(&old),
        &path(&new),
        "--compatibility",
        "forward",
    ]);
    assert_eq!(forward.status.code(), Some(1));
    let listed = String::from_utf8_lossy(&forward.stdout);
    assert!(
        listed.contains("forward (old reads new): field `note`"),
        "{listed}"
    );

    let changed = weir_as_given(&[
        "schema",
        "check",
        &path(&old),
        &path(&bad),
        "--compatibility",
        "full",
    ]);
    assert_eq!(changed.status.code(), Some(1));
    let listed = String::from_utf8_lossy(&changed.stdout);
    assert!(
        listed
            .contains("backward (new reads old): field `id`: old allows integer, new only string"),
        "{listed}"
    );
    assert!(String::from_utf8_lossy(&changed.stderr).contains("is not full compatible"));

    std::fs::write(&bad, r#"{"type": "object", "patternProperties": {}}"#).unwrap();
    let unread = weir_as_given(&["schema", "check", &path(&old), &path(&bad)]);
    assert_eq!(unread.status.code(), Some(1));
    let error = String::from_utf8_lossy(&unread.stderr);
    assert!(
        error.contains("`patternProperties` is not a keyword weir checks"),
        "{error}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// `weir example run --schema` checks every record against a JSON Schema file; records that
/// break it are dead letters naming the field.
#[test]
fn example_run_with_a_schema_names_the_field_in_dead_letters() {
    let dir = scratch("example-schema");
    let input = dir.join("readings.jsonl");
    let dead = dir.join("dead.jsonl");
    let schema = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/schemas/sensors.json"
    );
    let path = |p: &PathBuf| p.to_str().unwrap().to_owned();
    let data = weir_as_given(&[
        "example",
        "data",
        "sensors",
        "--out",
        &path(&input),
        "--records",
        "2000",
    ]);
    assert!(
        data.status.success(),
        "{}",
        String::from_utf8_lossy(&data.stderr)
    );
    let run = weir_as_given(&[
        "example",
        "run",
        "sensors",
        "--from",
        &path(&input),
        "--schema",
        schema,
        "--dead-letters",
        &path(&dead),
        "--late",
        &path(&dir.join("late.jsonl")),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let letters = std::fs::read_to_string(&dead).unwrap();
    assert!(letters.contains("schema: field `celsius`"), "{letters}");
    assert!(letters.contains(r#""line":"#), "{letters}");
    std::fs::remove_dir_all(dir).unwrap();
}
