//! Every query reads what its registry entry says it reads: run from a log topic and from a
//! JSON lines file with only the strings of its `reads` decoded (as the command line runs
//! it), each gives exactly the results it gives with every field decoded. A query that read
//! a string its entry leaves out would see it empty, and its results would differ.

// Test helpers panic on purpose: a failed set-up step is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use weir::{Destination, Job, JobConfig};
use weir_nexmark::queries::write_side_input;
use weir_nexmark::{
    write_events_to_topic, EventInput, Generator, GeneratorConfig, Output, Projection, Query,
    QUERIES,
};

const EVENTS: u64 = 20_000;

/// A minute of event time, so that windows close and auctions expire.
fn config() -> GeneratorConfig {
    GeneratorConfig {
        seed: 7,
        rate: 400,
        max_disorder_ms: 300,
        ..GeneratorConfig::default()
    }
}

/// The query's results, sorted, reading `input` with `projection` on one worker.
fn results(query: &Query, input: &EventInput, projection: Projection, dir: &Path) -> Vec<String> {
    let path = dir.join(format!(
        "{}-{}.jsonl",
        query.name,
        projection != Projection::ALL
    ));
    let output = Output {
        sink: Destination::JsonLines(path.clone()),
        changelog: false,
        side_table: dir.join("side.csv"),
    };
    let input = input.clone();
    let query = *query;
    let report = Job::new(JobConfig::default())
        .run(move |p| {
            let events = input.stream_projected(p, projection);
            (query.build)(p, events, &output);
            Ok(())
        })
        .unwrap();
    // Every event read (q13 reads its side table's rows too).
    assert!(report.records_in >= EVENTS, "{}", query.name);
    let mut lines = Vec::new();
    read_lines(&path, &path, &mut lines);
    lines.sort_unstable();
    lines
}

/// The lines of the file at `path`, or of every file under it (q10 writes a directory of
/// partitions), each after its file's path below `root`.
fn read_lines(root: &Path, path: &Path, lines: &mut Vec<String>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            read_lines(root, &entry.unwrap().path(), lines);
        }
    } else {
        let name = path.strip_prefix(root).unwrap().display().to_string();
        let text = std::fs::read_to_string(path).unwrap();
        lines.extend(text.lines().map(|line| format!("{name}: {line}")));
    }
}

#[test]
fn every_query_gives_the_same_results_with_only_what_it_reads_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let topic = dir.path().join("events");
    write_events_to_topic(&topic, 4, &config(), EVENTS, &AtomicU64::new(0)).unwrap();
    let file = dir.path().join("events.jsonl");
    let generator = Generator::new(config());
    let mut writer = std::fs::File::create(&file).unwrap();
    weir::write_json_lines(
        &file,
        &mut writer,
        (0..EVENTS).map(|id| generator.event(id)),
    )
    .unwrap();
    write_side_input(&dir.path().join("side.csv")).unwrap();
    let inputs = [
        EventInput::Log {
            topic,
            disorder: Duration::from_millis(300),
            max_rate: None,
        },
        EventInput::JsonLines {
            path: file,
            disorder: Duration::from_millis(300),
        },
    ];
    // q12's windows are of processing time: its results differ from run to run.
    for query in QUERIES.iter().filter(|query| query.name != "q12") {
        let projection = Projection::of(query.reads);
        for input in &inputs {
            let all = results(query, input, Projection::ALL, dir.path());
            assert!(!all.is_empty(), "{} has no results", query.name);
            let projected = results(query, input, projection, dir.path());
            assert!(
                all == projected,
                "{} reading {input:?} with {projection:?} gives other results",
                query.name
            );
        }
    }
}
