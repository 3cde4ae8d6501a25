//! The `weir log` commands and `weir nexmark` reading from topics and files, as a user runs
//! them.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn weir_in(dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that fails before reading its input closes the pipe early: that is fine.
    if let Err(error) = child.stdin.take().unwrap().write_all(stdin) {
        assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe, "{error}");
    }
    child.wait_with_output().unwrap()
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "weir failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn failure(output: Output) -> String {
    assert!(
        !output.status.success(),
        "weir should have failed: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    stderr.trim().lines().last().unwrap_or_default().to_owned()
}

fn line_counts(path: &Path) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        *counts.entry(line.to_owned()).or_default() += 1;
    }
    counts
}

#[test]
fn a_query_reads_the_same_events_from_the_generator_a_topic_and_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| ok(weir_in(dir.path(), args, b""));
    run(&[
        "nexmark",
        "generate",
        "--events",
        "30000",
        "--out",
        "log:data/events",
        "--partitions",
        "4",
        "--no-progress",
    ]);
    run(&[
        "nexmark",
        "generate",
        "--events",
        "30000",
        "--out",
        "events.jsonl",
        "--no-progress",
    ]);
    let described = run(&["log", "describe", "data/events"]);
    assert!(
        described.contains("binary nexmark.Event values), 4 partitions"),
        "{described}"
    );
    let total = described
        .lines()
        .find(|line| line.trim_start().starts_with("total"))
        .unwrap();
    assert_eq!(
        total.split_whitespace().nth(1),
        Some("30000"),
        "{described}"
    );
    for query in ["q0", "q1", "q2"] {
        run(&[
            "nexmark",
            "run",
            "--query",
            query,
            "--events",
            "30000",
            "--workers",
            "2",
            "--out",
            "generated.jsonl",
            "--no-progress",
        ]);
        let summary = run(&[
            "nexmark",
            "run",
            "--query",
            query,
            "--from",
            "log:data/events",
            "--workers",
            "2",
            "--out",
            "from-log.jsonl",
            "--no-progress",
        ]);
        assert!(summary.contains("30000 events"), "{summary}");
        run(&[
            "nexmark",
            "run",
            "--query",
            query,
            "--from",
            "events.jsonl",
            "--workers",
            "3",
            "--out",
            "from-file.jsonl",
            "--no-progress",
        ]);
        let expected = line_counts(&dir.path().join("generated.jsonl"));
        assert!(!expected.is_empty());
        assert_eq!(
            line_counts(&dir.path().join("from-log.jsonl")),
            expected,
            "{query} from the log"
        );
        assert_eq!(
            line_counts(&dir.path().join("from-file.jsonl")),
            expected,
            "{query} from the file"
        );
    }
    assert!(
        !dir.path().join("dead-letters.jsonl").exists(),
        "no dead letters, no file"
    );
}

#[test]
fn topics_are_created_filled_read_and_described_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let weir = |args: &[&str], stdin: &[u8]| weir_in(dir.path(), args, stdin);
    ok(weir(
        &["log", "create", "data/orders", "--partitions", "3"],
        b"",
    ));
    let input: String = (0..90)
        .map(|n| {
            format!(
                "{{\"customer\": \"c{}\", \"amount\": {n}, \"at\": {}}}\n",
                n % 7,
                1000 + n
            )
        })
        .collect();
    let produced = ok(weir(
        &[
            "log",
            "produce",
            "data/orders",
            "--key",
            "customer",
            "--timestamp",
            "at",
        ],
        input.as_bytes(),
    ));
    assert!(produced.contains("produced 90 records"), "{produced}");

    // A log returns what was written: the same bytes, key order and spacing included.
    let plain = ok(weir(&["log", "consume", "data/orders"], b""));
    let mut given: Vec<&str> = input.lines().collect();
    let mut returned: Vec<&str> = plain.lines().collect();
    given.sort_unstable();
    returned.sort_unstable();
    assert_eq!(returned, given);

    let consumed = ok(weir(&["log", "consume", "data/orders", "--metadata"], b""));
    let records: Vec<serde_json::Value> = consumed
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(records.len(), 90);
    // One customer, one partition; timestamps taken from the field.
    let mut partition_of = HashMap::new();
    for record in &records {
        let customer = record["value"]["customer"].as_str().unwrap().to_owned();
        let partition = record["partition"].as_u64().unwrap();
        assert_eq!(
            *partition_of.entry(customer).or_insert(partition),
            partition
        );
        assert_eq!(
            record["timestamp"].as_u64().unwrap(),
            1000 + record["value"]["amount"].as_u64().unwrap()
        );
    }
    assert!(
        partition_of
            .values()
            .collect::<std::collections::HashSet<_>>()
            .len()
            > 1
    );

    let limited = ok(weir(
        &[
            "log",
            "consume",
            "data/orders",
            "--partition",
            "1",
            "--from-offset",
            "2",
            "--limit",
            "3",
            "--metadata",
        ],
        b"",
    ));
    let offsets: Vec<u64> = limited
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["offset"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(offsets, vec![2, 3, 4]);
    let late = ok(weir(
        &["log", "consume", "data/orders", "--from-time", "1085"],
        b"",
    ));
    assert_eq!(late.lines().count(), 5);

    let described = ok(weir(&["log", "describe", "data/orders"], b""));
    assert!(described.contains("1970-01-01 00:00:01.000"), "{described}");

    // Bad input names its line; binary topics refuse JSON.
    let error = failure(weir(
        &["log", "produce", "data/orders"],
        b"{\"ok\": 1}\n{not json\n",
    ));
    assert!(
        error.contains("line 2: not JSON") && error.contains("1 records before it were produced"),
        "{error}"
    );
    ok(weir(
        &["log", "create", "data/binary", "--format", "binary"],
        b"",
    ));
    let error = failure(weir(&["log", "produce", "data/binary"], b"{}\n"));
    assert!(error.contains("binary nexmark.Event values"), "{error}");
    let error = failure(weir(
        &["log", "consume", "data/orders", "--from-offset", "1:99"],
        b"",
    ));
    assert!(error.contains("offset 99 is outside"), "{error}");
    let error = failure(weir(&["log", "describe", "data/none"], b""));
    assert!(error.contains("weir log create"), "{error}");
}

#[test]
fn undecodable_events_go_to_the_dead_letter_file_or_stop_a_fail_fast_run() {
    let dir = tempfile::tempdir().unwrap();
    let weir = |args: &[&str]| weir_in(dir.path(), args, b"");
    ok(weir(&[
        "nexmark",
        "generate",
        "--events",
        "500",
        "--out",
        "good.jsonl",
        "--no-progress",
    ]));
    let good = std::fs::read_to_string(dir.path().join("good.jsonl")).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    let mut bad = String::new();
    for (index, line) in lines.iter().enumerate() {
        bad.push_str(line);
        bad.push('\n');
        if index % 100 == 50 {
            bad.push_str("{\"bid\": {\"auction\": \"not a number\"}}\n");
        }
    }
    std::fs::write(dir.path().join("bad.jsonl"), &bad).unwrap();
    let summary = ok(weir(&[
        "nexmark",
        "run",
        "--query",
        "q0",
        "--from",
        "bad.jsonl",
        "--workers",
        "2",
        "--out",
        "q0.jsonl",
        "--no-progress",
    ]));
    assert!(summary.contains("500 events"), "{summary}");
    assert!(
        summary.contains("5 input records could not be decoded -> dead-letters.jsonl"),
        "{summary}"
    );
    let letters: Vec<serde_json::Value> =
        std::fs::read_to_string(dir.path().join("dead-letters.jsonl"))
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
    let mut line_numbers: Vec<u64> = letters
        .iter()
        .map(|l| l["line"].as_u64().unwrap())
        .collect();
    line_numbers.sort_unstable();
    assert_eq!(line_numbers, vec![52, 153, 254, 355, 456]);
    assert!(letters
        .iter()
        .all(|l| l["source"] == "bad.jsonl"
            && l["raw"] == "{\"bid\": {\"auction\": \"not a number\"}}"));

    let error = failure(weir(&[
        "nexmark",
        "run",
        "--query",
        "q0",
        "--from",
        "bad.jsonl",
        "--fail-fast",
        "--no-progress",
    ]));
    assert!(
        error.starts_with("error: rejected input: bad.jsonl, line 52: JSON decode"),
        "{error}"
    );
}

/// A topic whose segment was cut in half, as a user meets it: `describe`, `consume` and a
/// query each fail at once with one line naming the segment and the first offset lost (a
/// query over it once waited for ever). A segment that lost only part of its last record
/// (a torn append) is read up to the whole records before it, and the tear is reported.
#[test]
fn a_cut_segment_fails_every_command_naming_it_and_a_torn_tail_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| ok(weir_in(dir.path(), args, b""));
    run(&[
        "nexmark",
        "generate",
        "--events",
        "20000",
        "--partitions",
        "2",
        "--out",
        "log:events",
        "--no-progress",
    ]);
    let cut = |partition: u32, keep: fn(u64) -> u64| {
        let segment = format!("events/partition-{partition}/00000000000000000000.log");
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join(&segment))
            .unwrap();
        file.set_len(keep(file.metadata().unwrap().len())).unwrap();
        segment
    };
    let query = || {
        let mut query = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["nexmark", "run", "--query", "q0", "--from", "log:events"])
            .args(["--workers", "2", "--no-progress", "--fail-fast"])
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        common::wait_within(
            &mut query,
            std::time::Duration::from_secs(60),
            "the query over the cut topic",
        );
        query.wait_with_output().unwrap()
    };

    // Partition 1 loses its last 3 bytes.
    let torn = cut(1, |len| len - 3);
    let described = run(&["log", "describe", "events"]);
    assert!(
        described.contains(&format!("partition 1: {torn}"))
            && described.contains("are not a whole record"),
        "{described}"
    );
    let consumed = weir_in(dir.path(), &["log", "consume", "events"], b"");
    let stderr = String::from_utf8_lossy(&consumed.stderr).into_owned();
    let lines = ok(consumed).lines().count();
    assert_eq!(lines, 19_999);
    assert!(
        stderr.contains("partition 1: stopped at offset "),
        "{stderr}"
    );
    let summary = ok(query());
    assert!(summary.contains("19999 events in"), "{summary}");

    // Partition 0 loses half its bytes, records its index still lists among them.
    let segment = cut(0, |len| len / 2);
    let names_the_cut = |line: String| {
        assert!(
            line.starts_with("error: ") && line.contains(&segment) && line.contains("were cut off"),
            "{line}"
        );
    };
    names_the_cut(failure(weir_in(
        dir.path(),
        &["log", "describe", "events"],
        b"",
    )));
    names_the_cut(failure(weir_in(
        dir.path(),
        &["log", "consume", "events"],
        b"",
    )));
    names_the_cut(failure(query()));
}

#[test]
fn a_compacted_topic_keeps_the_newest_record_per_key_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let weir = |args: &[&str], stdin: &[u8]| weir_in(dir.path(), args, stdin);
    ok(weir(
        &[
            "log",
            "create",
            "data/prices",
            "--cleanup",
            "compact",
            "--segment-bytes",
            "512",
        ],
        b"",
    ));
    let input: String = (0..300)
        .map(|n| format!("{{\"item\": \"i{}\", \"price\": {n}}}\n", n % 5))
        .collect();
    ok(weir(
        &["log", "produce", "data/prices", "--key", "item"],
        input.as_bytes(),
    ));
    let compacted = ok(weir(&["log", "compact", "data/prices"], b""));
    assert!(compacted.contains("partition 0:"), "{compacted}");
    let consumed = ok(weir(&["log", "consume", "data/prices"], b""));
    let mut newest = HashMap::new();
    for line in consumed.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        newest.insert(
            record["item"].to_string(),
            record["price"].as_u64().unwrap(),
        );
    }
    let expected: HashMap<String, u64> =
        (295..300).map(|n| (format!("\"i{}\"", n % 5), n)).collect();
    assert_eq!(newest, expected);
    // Closed segments keep one record per key: a handful of lines, not 300.
    assert!(consumed.lines().count() < 40, "{consumed}");
    let described = ok(weir(&["log", "describe", "data/prices"], b""));
    assert!(described.contains("compacted"), "{described}");

    // A record without the key field has no key, which a compacted topic refuses.
    let error = failure(weir(
        &["log", "produce", "data/prices", "--key", "item"],
        b"{\"price\": 1}\n",
    ));
    assert!(error.contains("has no key"), "{error}");
    ok(weir(&["log", "create", "data/plain"], b""));
    let error = failure(weir(&["log", "compact", "data/plain"], b""));
    assert!(error.contains("not compacted"), "{error}");
}
