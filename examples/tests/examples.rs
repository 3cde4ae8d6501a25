//! Every example job, run from the registry as `weir example run` runs it over its own sample
//! input, against a plain reference computed over the same records, on 1 and 2 workers.
//!
//! Records the job calls late are left out of the reference: each test checks that the late
//! output holds only records of the input, and that the rest give the job's results.

// Test helpers panic on purpose: a failed set-up step is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;
use weir::log::{Cleanup, LogConfig, Topic, ValueFormat};
use weir::operators::changelog::{apply, Change};
use weir::schema::JsonSchema;
use weir::{DeadLetter, Destination, Job, JobConfig, JsonLinesSink};
use weir_examples::fraud::{judge_all, Alert, Transaction};
use weir_examples::latest_state::{
    read_table, reference_table, well_formed, ChangeEvent, Customer,
};
use weir_examples::orders::{Order, Revenue, MINUTE};
use weir_examples::sensors::{in_range, Reading, Rollup};
use weir_examples::sessions::{PageView, Session, GAP};
use weir_examples::word_count::{words, Message, WindowedCount, Word, WordCount, WINDOW};
use weir_examples::{example, write_sample, ExampleInput, ExampleOutput, Origin, SampleLine};

const RECORDS: u64 = 6_000;
const SEED: u64 = 7;
/// The pace each worker reads at: a run lasts a fraction of a second.
const RECORDS_PER_SECOND: u64 = 20_000;

/// What a run of an example wrote.
struct Run<R, L> {
    results: Vec<R>,
    late: Vec<L>,
    dead_letters: Vec<DeadLetter>,
}

fn read_lines<T: DeserializeOwned>(path: &Path) -> Vec<T> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect(),
        // Left out when nothing was written.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => panic!("{}: {error}", path.display()),
    }
}

/// Runs example `name` on `workers` workers over `sample`, read from a topic of two
/// partitions at a steady pace, as a stream arrives: the watermark advances while the job
/// runs, so that some records come after it (read at full speed, a small input would be
/// read before the watermark first moves, and nothing would be late).
fn run<R: DeserializeOwned, L: DeserializeOwned>(
    name: &str,
    workers: usize,
    sample: &[SampleLine],
    changelog: bool,
) -> Run<R, L> {
    run_checked(name, workers, sample, changelog, None)
}

/// [`run`], every record checked against `schema` first.
fn run_checked<R: DeserializeOwned, L: DeserializeOwned>(
    name: &str,
    workers: usize,
    sample: &[SampleLine],
    changelog: bool,
    schema: Option<JsonSchema>,
) -> Run<R, L> {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.jsonl");
    let (late, dead_letters) = run_to(
        Destination::JsonLines(results.clone()),
        name,
        workers,
        sample,
        changelog,
        schema,
    );
    Run {
        results: read_lines(&results),
        late,
        dead_letters,
    }
}

/// [`run_checked`] with the results sent to `results`: the late records and dead letters.
fn run_to<L: DeserializeOwned>(
    results: Destination,
    name: &str,
    workers: usize,
    sample: &[SampleLine],
    changelog: bool,
    schema: Option<JsonSchema>,
) -> (Vec<L>, Vec<DeadLetter>) {
    let example = example(name).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let topic = dir.path().join("input");
    write_sample(sample, &topic, Some(2)).unwrap();
    let (late, dead) = (
        dir.path().join("late.jsonl"),
        dir.path().join("dead-letters.jsonl"),
    );
    let input = ExampleInput {
        origin: Origin::Log(topic),
        max_rate: Some(RECORDS_PER_SECOND),
        schema,
    };
    let output = ExampleOutput {
        results,
        late: Destination::JsonLines(late.clone()),
        changelog,
    };
    let dead_sink = dead.clone();
    let config = JobConfig::default()
        .workers(workers)
        .watermark_interval(Duration::from_millis(1));
    let report = Job::new(config)
        .run(move |p| {
            (example.build)(p, &input, &output);
            p.dead_letters_to(JsonLinesSink::create(&dead_sink).skip_empty());
            Ok(())
        })
        .unwrap();
    let dead_letters: Vec<DeadLetter> = read_lines(&dead);
    // Every record is read: decoded, or a dead letter.
    assert_eq!(
        report.records_in + dead_letters.len() as u64,
        sample.len() as u64,
        "{name}: records read and dead letters do not add up to the input"
    );
    (read_lines(&late), dead_letters)
}

/// The sample's records that decode as `T` and pass `valid`; the others, counted.
fn decoded<T: DeserializeOwned>(
    sample: &[SampleLine],
    valid: fn(&T) -> Result<(), String>,
) -> (Vec<T>, usize) {
    let mut rejected = 0;
    let records = sample
        .iter()
        .filter_map(|line| {
            match serde_json::from_str::<T>(&line.text)
                .map_err(|error| error.to_string())
                .and_then(|record| valid(&record).map(|()| record))
            {
                Ok(record) => Some(record),
                Err(_) => {
                    rejected += 1;
                    None
                }
            }
        })
        .collect();
    (records, rejected)
}

fn accept<T>(_: &T) -> Result<(), String> {
    Ok(())
}

/// `all` less one copy of each record of `late`, which must all be in `all` and be few (the
/// samples make a few percent of their records late).
fn without_late<T: PartialEq + std::fmt::Debug>(mut all: Vec<T>, late: &[T]) -> Vec<T> {
    assert!(
        late.len() * 10 < all.len(),
        "{} of {} records are late",
        late.len(),
        all.len()
    );
    for record in late {
        let at = all
            .iter()
            .position(|candidate| candidate == record)
            .unwrap_or_else(|| panic!("late output holds {record:?}, which the input does not"));
        all.swap_remove(at);
    }
    all
}

fn counted<T: std::hash::Hash + Eq>(rows: impl IntoIterator<Item = T>) -> HashMap<T, usize> {
    let mut counts = HashMap::new();
    for row in rows {
        *counts.entry(row).or_default() += 1;
    }
    counts
}

fn sample(name: &str) -> Vec<SampleLine> {
    (example(name).unwrap().sample)(SEED, RECORDS)
}

#[test]
fn every_example_is_registered_once_and_has_sample_data() {
    let examples = weir_examples::EXAMPLES;
    for (index, entry) in examples.iter().enumerate() {
        assert!(
            examples[..index]
                .iter()
                .all(|other| other.name != entry.name),
            "{} is registered twice",
            entry.name
        );
        let lines = (entry.sample)(SEED, 500);
        assert_eq!(lines.len(), 500, "{}", entry.name);
        assert_eq!(
            lines,
            (entry.sample)(SEED, 500),
            "{}: a sample is seeded",
            entry.name
        );
        assert_ne!(lines, (entry.sample)(SEED + 1, 500), "{}", entry.name);
    }
    assert!(example("no-such-example").is_none());
}

#[test]
fn word_count_matches_a_plain_count() {
    let sample = sample("word-count");
    let (messages, rejected) = decoded::<Message>(&sample, accept);
    assert_eq!(rejected, 0);
    let expected = counted(
        messages
            .iter()
            .flat_map(|message| words(&message.text).collect::<Vec<_>>()),
    );
    let expected: HashSet<WordCount> = expected
        .into_iter()
        .map(|(word, count)| WordCount {
            word,
            count: count as u64,
        })
        .collect();
    for workers in [1, 2] {
        let view: Run<WordCount, Message> = run("word-count", workers, &sample, false);
        assert_eq!(
            view.results.iter().cloned().collect::<HashSet<_>>(),
            expected
        );
        assert_eq!(view.results.len(), expected.len(), "one row per word");
        let changes: Run<Change<WordCount>, Message> = run("word-count", workers, &sample, true);
        let table = apply(changes.results).unwrap();
        assert_eq!(table.keys().cloned().collect::<HashSet<_>>(), expected);
        assert!(table.values().all(|count| *count == 1));
    }
}

#[test]
fn windowed_word_count_matches_a_plain_count_of_the_on_time_words() {
    let sample = sample("word-count-windowed");
    let (messages, _) = decoded::<Message>(&sample, accept);
    let all_words: Vec<Word> = messages
        .iter()
        .flat_map(|message| {
            words(&message.text).map(|word| Word {
                word,
                time: message.time,
            })
        })
        .collect();
    for workers in [1, 2] {
        let run: Run<WindowedCount, Word> = run("word-count-windowed", workers, &sample, false);
        assert!(!run.late.is_empty(), "the sample has late messages");
        let on_time = without_late(all_words.clone(), &run.late);
        let window = WINDOW.as_millis() as u64;
        let expected = counted(on_time.iter().map(|word| {
            let start = word.time.millis() / window * window;
            (word.word.clone(), start)
        }));
        let actual: HashMap<(String, u64), usize> = run
            .results
            .iter()
            .map(|row| {
                assert_eq!(row.end.millis() - row.start.millis(), window);
                ((row.word.clone(), row.start.millis()), row.count as usize)
            })
            .collect();
        assert_eq!(
            actual.len(),
            run.results.len(),
            "one result per word and minute"
        );
        assert_eq!(actual, expected, "{workers} workers");
    }
}

/// Sessions of `views` as the definition says: a user's views in time order, a new session
/// after a silence longer than the gap (views a gap apart touch, and merge).
fn reference_sessions(mut views: Vec<PageView>) -> HashSet<Session> {
    views.sort_by(|a, b| (&a.user, a.time).cmp(&(&b.user, b.time)));
    let mut sessions: Vec<Vec<PageView>> = Vec::new();
    for view in views {
        match sessions.last_mut() {
            Some(session)
                if session[0].user == view.user
                    && view.time.millis()
                        <= session[session.len() - 1].time.millis() + GAP.as_millis() as u64 =>
            {
                session.push(view)
            }
            _ => sessions.push(vec![view]),
        }
    }
    sessions
        .into_iter()
        .map(|views| {
            let (first, last) = (&views[0], &views[views.len() - 1]);
            Session {
                user: first.user.clone(),
                start: first.time,
                last_view: last.time,
                duration_s: (last.time.millis() - first.time.millis()) / 1000,
                pages: views.len() as u64,
                landing_page: first.url.clone(),
                bounce: views.len() == 1,
            }
        })
        .collect()
}

#[test]
fn sessions_match_a_plain_sessionization_of_the_on_time_views() {
    let sample = sample("sessions");
    let (views, _) = decoded::<PageView>(&sample, accept);
    for workers in [1, 2] {
        let run: Run<Session, PageView> = run("sessions", workers, &sample, false);
        assert!(!run.late.is_empty(), "the sample has late views");
        let expected = reference_sessions(without_late(views.clone(), &run.late));
        assert!(expected.iter().any(|session| session.bounce));
        assert!(expected.iter().any(|session| session.pages > 3));
        assert_eq!(run.results.len(), expected.len(), "{workers} workers");
        assert_eq!(run.results.into_iter().collect::<HashSet<_>>(), expected);
    }
}

#[test]
fn fraud_alerts_match_the_rule_applied_card_by_card() {
    let sample = sample("fraud");
    let (transactions, _) = decoded::<Transaction>(&sample, accept);
    for workers in [1, 2] {
        let run: Run<Alert, Transaction> = run("fraud", workers, &sample, false);
        assert!(!run.late.is_empty(), "the sample has late transactions");
        let mut expected = judge_all(without_late(transactions.clone(), &run.late));
        assert!(expected.len() >= 5, "the sample raises alerts");
        let mut actual = run.results;
        let order = |a: &Alert| (a.card.clone(), a.large_at);
        actual.sort_by_key(order);
        expected.sort_by_key(order);
        assert_eq!(actual, expected, "{workers} workers");
    }
}

#[test]
fn orders_are_charged_once_per_order_id() {
    let sample = sample("orders");
    let (deliveries, rejected) = decoded::<Order>(&sample, |order| {
        if order.amount_cents == 0 {
            Err("0 cents".into())
        } else {
            Ok(())
        }
    });
    assert!(rejected > 0, "the sample has orders of 0 cents");
    let distinct: HashSet<&str> = deliveries.iter().map(|o| o.order_id.as_str()).collect();
    assert!(
        distinct.len() < deliveries.len(),
        "the sample has duplicates"
    );
    for workers in [1, 2] {
        let run: Run<Revenue, Order> = run("orders", workers, &sample, false);
        assert_eq!(run.dead_letters.len(), rejected);
        assert!(
            run.dead_letters
                .iter()
                .all(|dead| dead.reason.contains("amount_cents is 0") && dead.offset.is_some()),
            "{:?}",
            run.dead_letters.first()
        );
        let on_time = without_late(deliveries.clone(), &run.late);
        let mut charged: HashMap<&str, &Order> = HashMap::new();
        for order in &on_time {
            charged.entry(order.order_id.as_str()).or_insert(order);
        }
        // A late copy is never charged: its order was, from an earlier copy.
        for late in &run.late {
            assert!(charged.contains_key(late.order_id.as_str()), "{late:?}");
        }
        let minute = MINUTE.as_millis() as u64;
        let mut expected: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        for order in charged.values() {
            let entry = expected
                .entry(order.ordered_at.millis() / minute * minute)
                .or_default();
            entry.0 += 1;
            entry.1 += order.amount_cents;
        }
        let actual: BTreeMap<u64, (u64, u64)> = run
            .results
            .iter()
            .map(|row| (row.start.millis(), (row.orders, row.revenue_cents)))
            .collect();
        assert_eq!(actual.len(), run.results.len(), "one row per minute");
        assert_eq!(actual, expected, "{workers} workers");
    }
}

#[test]
fn the_latest_state_view_holds_the_newest_version_of_every_row() {
    let sample = sample("latest-state");
    let (events, rejected) = decoded::<ChangeEvent>(&sample, well_formed);
    assert!(rejected > 0, "the sample has broken envelopes");
    let expected: HashSet<Customer> = reference_table(&events).into_values().collect();
    let ids: HashSet<u64> = events.iter().map(ChangeEvent::id).collect();
    assert!(expected.len() < ids.len(), "the sample deletes rows");
    for workers in [1, 2] {
        let view: Run<Customer, ChangeEvent> = run("latest-state", workers, &sample, false);
        assert_eq!(view.dead_letters.len(), rejected);
        assert!(!view.late.is_empty(), "the sample has stale changes");
        assert_eq!(view.results.len(), expected.len(), "{workers} workers");
        assert_eq!(view.results.into_iter().collect::<HashSet<_>>(), expected);
        let changes: Run<Change<Customer>, ChangeEvent> =
            run("latest-state", workers, &sample, true);
        let table = apply(changes.results).unwrap();
        assert_eq!(table.keys().cloned().collect::<HashSet<_>>(), expected);
    }
}

/// Written to a compacted topic, the latest-state view is upserts and tombstones: read from
/// the start, before and after a compaction, the topic gives the current table.
#[test]
fn the_latest_state_view_written_to_a_compacted_topic_reads_as_the_current_table() {
    let sample = sample("latest-state");
    let (events, _) = decoded::<ChangeEvent>(&sample, well_formed);
    let expected = reference_table(&events);
    for workers in [1, 2] {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 4_096,
            cleanup: Cleanup::Compact,
            ..LogConfig::default()
        };
        let topic = Topic::create(dir.path().join("table"), 2, ValueFormat::Json, config).unwrap();
        let _: (Vec<ChangeEvent>, _) = run_to(
            Destination::Log(topic.dir().to_owned()),
            "latest-state",
            workers,
            &sample,
            false,
            None,
        );
        assert_eq!(read_table(&topic).unwrap(), expected, "{workers} workers");
        topic.compact().unwrap();
        assert_eq!(
            read_table(&topic).unwrap(),
            expected,
            "{workers} workers, compacted"
        );
    }
}

#[test]
fn sensor_rollups_match_plain_sums_of_the_readings_not_late_nor_malformed() {
    let sample = sample("sensors");
    let (readings, rejected) = decoded::<Reading>(&sample, in_range);
    assert!(rejected > 0, "the sample has malformed readings");
    for workers in [1, 2] {
        let run: Run<Rollup, Reading> = run("sensors", workers, &sample, false);
        assert_eq!(run.dead_letters.len(), rejected);
        for reason in [
            "JSON decode",
            "missing field `device`",
            "outside the sensor's range",
        ] {
            assert!(
                run.dead_letters
                    .iter()
                    .any(|dead| dead.reason.contains(reason)),
                "no dead letter says {reason:?}"
            );
        }
        assert!(
            !run.late.is_empty(),
            "the sample has readings later than allowed"
        );
        assert!(
            run.results.iter().any(|rollup| rollup.updated),
            "no late update"
        );
        // The newest rollup of each minute: updates only add readings.
        let mut newest: HashMap<(String, u64), &Rollup> = HashMap::new();
        for rollup in &run.results {
            let kept = newest
                .entry((rollup.device.clone(), rollup.start.millis()))
                .or_insert(rollup);
            if rollup.readings > kept.readings {
                *kept = rollup;
            }
        }
        let mut expected: HashMap<(String, u64), Vec<i64>> = HashMap::new();
        for reading in without_late(readings.clone(), &run.late) {
            let start = reading.time.millis() / 60_000 * 60_000;
            expected
                .entry((reading.device.clone(), start))
                .or_default()
                .push(reading.millidegrees());
        }
        assert_eq!(newest.len(), expected.len(), "{workers} workers");
        for (window, values) in &expected {
            let rollup = newest[window];
            let sum: i64 = values.iter().sum();
            assert_eq!(rollup.readings, values.len() as u64, "{window:?}");
            let mean = (sum as f64 / values.len() as f64 * 1000.0).round() / 1e6;
            assert_eq!(rollup.mean_celsius, mean, "{window:?}");
            let min = *values.iter().min().unwrap() as f64 / 1000.0;
            let max = *values.iter().max().unwrap() as f64 / 1000.0;
            assert_eq!((rollup.min_celsius, rollup.max_celsius), (min, max));
        }
    }
}

/// The sensors' schema file (`examples/schemas/sensors.json`) declares what the Rust type and
/// its check say: with it, the same readings are dead letters, each reason naming the field
/// the schema found wrong, and the rollups do not change.
#[test]
fn a_declared_schema_sends_records_that_break_it_to_dead_letters_naming_the_field() {
    let sample = sample("sensors");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/sensors.json");
    let schema = JsonSchema::from_file(Path::new(path)).unwrap();
    let plain: Run<Rollup, Reading> = run("sensors", 1, &sample, false);
    let checked: Run<Rollup, Reading> = run_checked("sensors", 1, &sample, false, Some(schema));
    assert_eq!(checked.dead_letters.len(), plain.dead_letters.len());
    for reason in [
        "schema: field `celsius`: expected number, found string \"n/a\"",
        "schema: field `celsius`: 999 is above the maximum 125",
        "schema: field `device`: missing",
        "JSON decode: EOF while parsing",
    ] {
        assert!(
            checked
                .dead_letters
                .iter()
                .any(|dead| dead.reason.starts_with(reason)),
            "no dead letter says {reason:?}: {:?}",
            checked
                .dead_letters
                .iter()
                .map(|dead| &dead.reason)
                .collect::<Vec<_>>()
        );
    }
    // Every reading the schema lets through is counted in its minute's newest rollup or late.
    let (valid, _) = decoded::<Reading>(&sample, in_range);
    let mut newest: HashMap<(String, u64), u64> = HashMap::new();
    for rollup in &checked.results {
        let readings = newest
            .entry((rollup.device.clone(), rollup.start.millis()))
            .or_default();
        *readings = (*readings).max(rollup.readings);
    }
    assert_eq!(
        newest.values().sum::<u64>() as usize + checked.late.len(),
        valid.len()
    );
}
