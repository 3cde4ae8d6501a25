//! The Kafka connector against Apache Kafka itself (a single-node KRaft broker started by
//! `scripts/kafka.sh`): the source reads every partition once and names bad records, starts
//! where it is told, and its job's offsets show in Kafka's consumer-group tool; the
//! transactional sink survives a SIGKILL at every named step of its commit protocol, a
//! `read_committed` consumer seeing each q5 result exactly once while the records of aborted
//! transactions stay in the topic, invisible to it; a stale producer is fenced.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use common::kafka::{broker, tool, unique_topic, values};
use common::{assert_same, run_within};
use weir::kafka::{KafkaClient, KafkaSink, KafkaSource};
use weir::log::StartAt;
use weir::time::Epoch;
use weir::{CollectSink, DeadLetter, EventTime, IterSource, Job, JobConfig, Sink, WorkerInfo};

/// The longest one `weir` run may take before the test calls it hung.
const RUN_DEADLINE: Duration = Duration::from_secs(120);

/// Writes the numbers `0..count` to `client`'s topic, keyed by themselves, number `n` stamped
/// with the event time `n + 1` seconds (a Kafka timestamp of 0 means "now" to librdkafka).
fn write_numbers(client: &KafkaClient, count: u64) {
    let client = client.clone();
    Job::new(JobConfig::default())
        .run(move |p| {
            p.source(IterSource::new("numbers", 0..count)).sink(
                KafkaSink::new(client.clone())
                    .key_by(|n: &u64| n.to_string().into_bytes())
                    .event_time(|n| EventTime((n + 1) * 1000)),
            );
            Ok(())
        })
        .unwrap();
}

/// Reads the source `source` makes (one per worker) on two workers to its end: the records,
/// sorted, and the dead letters.
fn read_all(
    source: impl Fn() -> KafkaSource<u64> + Send + Sync + 'static,
) -> (Vec<u64>, Vec<DeadLetter>) {
    let records = CollectSink::new();
    let letters = CollectSink::new();
    let (read, rejected) = (records.results(), letters.results());
    Job::new(JobConfig::default().workers(2))
        .run(move |p| {
            p.source(source()).sink(records.clone());
            p.dead_letters_to(letters.clone());
            Ok(())
        })
        .unwrap();
    let mut read = read.lock().unwrap().clone();
    read.sort_unstable();
    let rejected = rejected.lock().unwrap().clone();
    (read, rejected)
}

/// A value that is not JSON, produced to partition 1 of `client`'s topic.
fn write_garbage(client: &KafkaClient) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &client.brokers)
        .create()
        .unwrap();
    producer
        .send(
            BaseRecord::<(), [u8]>::to(&client.topic)
                .payload(b"{not json")
                .partition(1),
        )
        .unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();
}

#[test]
fn the_source_reads_every_partition_once_and_names_bad_records() {
    let client = KafkaClient::new(broker(), unique_topic("numbers"));
    client.ensure_topic(3, &[]).unwrap();
    write_numbers(&client, 300);
    write_garbage(&client);

    let from = client.clone();
    let (read, rejected) = read_all(move || KafkaSource::new(from.clone()).until_end());
    assert_eq!(read, (0..300).collect::<Vec<_>>());
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    let letter = &rejected[0];
    assert_eq!(letter.source, client.address());
    assert_eq!(letter.partition, Some(1));
    assert!(letter.offset.is_some());
    assert!(letter.reason.contains("JSON"), "{}", letter.reason);
    assert_eq!(letter.raw, b"{not json");
}

#[test]
fn the_source_starts_where_it_is_told() {
    let client = KafkaClient::new(broker(), unique_topic("starts"));
    client.ensure_topic(2, &[]).unwrap();
    write_numbers(&client, 100);
    let read_from = |start: StartAt| {
        let client = client.clone();
        read_all(move || {
            KafkaSource::new(client.clone())
                .start_at(start.clone())
                .until_end()
        })
        .0
    };
    assert_eq!(read_from(StartAt::Earliest).len(), 100);
    assert_eq!(read_from(StartAt::Latest), Vec::<u64>::new());
    assert_eq!(
        read_from(StartAt::Timestamp(EventTime(61_000))),
        (60..100).collect::<Vec<_>>()
    );
    let skip_ten = StartAt::Offsets(BTreeMap::from([(0, 10), (1, 10)]));
    assert_eq!(read_from(skip_ten).len(), 80);
}

/// A worker's sink on `topic`, exactly-once, staging into `staging`.
fn transactional_sink(client: &KafkaClient, staging: &Path) -> KafkaSink<u64> {
    KafkaSink::new(client.clone()).staging_dir(staging)
}

#[test]
fn a_stale_producer_is_fenced_by_its_successor() {
    let client = KafkaClient::new(broker(), unique_topic("fenced"));
    client.ensure_topic(1, &[]).unwrap();
    let staging = tempfile::tempdir().unwrap();
    let worker = WorkerInfo { index: 0, peers: 1 };

    let mut stale = transactional_sink(&client, staging.path());
    stale.open(worker).unwrap();
    stale.start_transactions(None).unwrap();
    stale.write(&[1, 2, 3]).unwrap();
    stale.pre_commit(Epoch(0)).unwrap();
    stale.commit(Epoch(0)).unwrap();

    // A successor restores the checkpoint of epoch 0 while the old instance still runs: it
    // takes the same transactional id, which fences the old producer.
    let mut successor = transactional_sink(&client, staging.path());
    successor.open(worker).unwrap();
    successor.start_transactions(Some(Epoch(0))).unwrap();
    stale.write(&[9]).unwrap();
    stale.pre_commit(Epoch(1)).unwrap();
    let error = stale.commit(Epoch(1)).unwrap_err().to_string();
    assert!(error.to_lowercase().contains("fenced"), "{error}");

    successor.write(&[4]).unwrap();
    successor.pre_commit(Epoch(1)).unwrap();
    successor.commit(Epoch(1)).unwrap();
    successor.close().unwrap();
    let committed: BTreeMap<String, usize> = ["1", "2", "3", "4"].map(|v| (v.to_owned(), 1)).into();
    assert_eq!(values(&client.topic, "read_committed"), committed);
}

/// `weir nexmark generate`: `events` events at `rate` per second of event time into a new
/// 4-partition Kafka topic `topic`.
fn generate(dir: &Path, topic: &str, events: u64, rate: u64) {
    let args = [
        "nexmark",
        "generate",
        "--events",
        &events.to_string(),
        "--rate",
        &rate.to_string(),
        "--partitions",
        "4",
        "--no-progress",
        "--out",
        &format!("kafka:{}/{topic}", broker()),
    ]
    .map(String::from);
    let (status, stderr) = run_within(dir, &args, &[], RUN_DEADLINE, "generate");
    assert!(status.success(), "{stderr}");
}

/// The q5 pipeline of the kill test: the events topic, the output topic and the checkpoint
/// directory; `restore` continues from the newest checkpoint.
fn q5_args(events: &str, out: &str, restore: bool) -> Vec<String> {
    let mut args: Vec<String> = [
        "nexmark",
        "run",
        "--query",
        "q5",
        "--from",
        &format!("kafka:{}/{events}", broker()),
        "--out",
        &format!("kafka:{}/{out}", broker()),
        "--workers",
        "2",
        "--checkpoint-dir",
        &format!("{out}-checkpoints"),
        "--checkpoint-interval",
        "50ms",
        "--state-dir",
        &format!("{out}-state"),
        "--max-rate",
        "5000",
        "--fail-fast",
        "--no-progress",
    ]
    .map(String::from)
    .to_vec();
    if restore {
        args.extend(["--restore".into(), "latest".into()]);
    }
    args
}

/// One kill: `point` armed to kill the run the `n`-th time it passes (or, with no point, a
/// SIGKILL from outside after `n` milliseconds), then restores until a run ends by itself.
/// A loaded machine makes fewer, longer epochs: a run that ends before its `n`-th pass is
/// repeated (into a new output) with half the count. Returns the output topic.
fn killed_and_restored(dir: &Path, events: &str, point: Option<&str>, n: usize) -> String {
    let (out, what) = match point {
        Some(point) => killed_at(dir, events, point, n),
        None => {
            let out = unique_topic("q5-out");
            KafkaClient::new(broker(), &out)
                .ensure_topic(3, &[])
                .unwrap();
            let mut child = common::weir(dir, &q5_args(events, &out, false));
            std::thread::sleep(Duration::from_millis(n as u64));
            child.kill().unwrap();
            child.wait().unwrap();
            (out, format!("q5 killed after {n} ms"))
        }
    };
    let mut restores = 0;
    loop {
        let (status, stderr) =
            run_within(dir, &q5_args(events, &out, true), &[], RUN_DEADLINE, &what);
        if status.success() {
            break;
        }
        restores += 1;
        assert!(restores < 3, "{what}: restores keep failing: {stderr}");
    }
    out
}

/// Runs q5 into a new output until `point` kills it, at its `n`-th pass or, where runs end
/// before that, an earlier one: the output, and what killed it.
fn killed_at(dir: &Path, events: &str, point: &str, mut n: usize) -> (String, String) {
    loop {
        let out = unique_topic("q5-out");
        KafkaClient::new(broker(), &out)
            .ensure_topic(3, &[])
            .unwrap();
        let what = format!("q5 killed at {point} #{n}");
        let env = [
            ("WEIR_CRASH_POINT", point),
            ("WEIR_CRASH_AT", &n.to_string()),
        ];
        let (status, stderr) = run_within(
            dir,
            &q5_args(events, &out, false),
            &env,
            RUN_DEADLINE,
            &what,
        );
        if status.signal() == Some(9) {
            assert!(
                stderr.contains(&format!("crash point {point}")),
                "{what}: {stderr}"
            );
            return (out, what);
        }
        assert!(
            status.success() && n > 1,
            "{what}: neither killed nor ended well: {stderr}"
        );
        n /= 2;
    }
}

#[test]
fn q5_into_a_transactional_topic_survives_kills_at_every_commit_step() {
    let dir = tempfile::tempdir().unwrap();
    let events = unique_topic("events");
    generate(dir.path(), &events, 20_000, 200);

    let reference_args = [
        "nexmark",
        "run",
        "--query",
        "q5",
        "--from",
        &format!("kafka:{}/{events}", broker()),
        "--out",
        "reference.jsonl",
        "--workers",
        "2",
        "--fail-fast",
        "--no-progress",
    ]
    .map(String::from);
    let (status, stderr) = run_within(dir.path(), &reference_args, &[], RUN_DEADLINE, "reference");
    assert!(status.success(), "{stderr}");
    let mut reference = BTreeMap::new();
    for line in std::fs::read_to_string(dir.path().join("reference.jsonl"))
        .unwrap()
        .lines()
    {
        *reference.entry(line.to_owned()).or_insert(0) += 1;
    }
    assert!(reference.len() > 10, "q5 gave too few results to test with");

    // How often an unbroken run passes each crash point: the kills below are placed at
    // fractions of it, so that each lands where the run has output to lose or repeat.
    let log = dir.path().join("crash-points.log");
    let out = unique_topic("q5-counted");
    KafkaClient::new(broker(), &out)
        .ensure_topic(3, &[])
        .unwrap();
    let env = [("WEIR_CRASH_LOG", log.to_str().unwrap())];
    let (status, stderr) = run_within(
        dir.path(),
        &q5_args(&events, &out, false),
        &env,
        RUN_DEADLINE,
        "counted run",
    );
    assert!(status.success(), "{stderr}");
    let log = std::fs::read_to_string(&log).unwrap();
    let passes = |point: &str| log.lines().filter(|line| *line == point).count();
    let at = |point: &'static str, fraction: f64| {
        let n = (passes(point) as f64 * fraction).ceil().max(1.0) as usize;
        (Some(point), n)
    };
    let kills = [
        at("sink.pre_commit", 0.3),
        at("kafka_sink.prepared", 0.5),
        at("checkpoint.job_manifest", 0.3),
        at("sink.commit", 0.5),
        at("kafka_sink.produced", 0.5),
        at("kafka_sink.produced_records", 0.25),
        at("kafka_sink.produced_records", 0.5),
        at("kafka_sink.produced_records", 0.75),
        at("kafka_sink.committed", 0.5),
        (None, 700),
    ];
    for (point, n) in &kills {
        let out = killed_and_restored(dir.path(), &events, *point, *n);
        let what = format!("killed at {point:?} #{n}");
        let committed = values(&out, "read_committed");
        assert_same(&reference, &committed, &what);
        if *point == Some("kafka_sink.produced_records") {
            // The killed transaction's records are in the topic, aborted: only a consumer
            // that reads uncommitted records sees them.
            let all: usize = values(&out, "read_uncommitted").values().sum();
            let visible: usize = committed.values().sum();
            assert!(all > visible, "{what}: no aborted records in the topic");
        }
    }

    // The source committed its offsets to its consumer group after checkpoints: Kafka's own
    // tool shows the job's group with its lag per partition.
    let described = tool(
        "consumer-groups",
        &["--describe", "--group", &format!("weir-{events}")],
    );
    assert!(described.contains("LAG"), "{described}");
    assert_eq!(
        described
            .lines()
            .filter(|line| line.contains(&events))
            .count(),
        4,
        "{described}"
    );
}

/// The samples of a Prometheus text exposition, by name with labels (`name{labels}`).
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (name, value) = line.rsplit_once(' ').unwrap();
            (name.to_owned(), value.parse().unwrap())
        })
        .collect()
}

/// `GET http://addr/metrics`: the body.
fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.") && head.contains(" 200 "),
        "{head}"
    );
    body.to_owned()
}

/// The upper bound, in seconds, of the bucket holding the `q` quantile of a histogram's
/// samples `{to="to"}`.
fn quantile(samples: &BTreeMap<String, f64>, to: &str, q: f64) -> f64 {
    let count = samples[&format!("weir_latency_seconds_count{{to=\"{to}\"}}")];
    let prefix = format!("weir_latency_seconds_bucket{{to=\"{to}\",le=\"");
    let mut buckets: Vec<(f64, f64)> = samples
        .iter()
        .filter_map(|(name, value)| {
            let le = name.strip_prefix(&prefix)?.strip_suffix("\"}")?;
            Some((le.parse().unwrap_or(f64::INFINITY), *value))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
        .into_iter()
        .find(|(_, cumulative)| *cumulative >= q * count)
        .unwrap()
        .0
}

#[test]
fn a_running_job_serves_lag_watermarks_latency_and_checkpoints_to_prometheus() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let events = unique_topic("scraped");
    let brokers = broker();
    generate(dir.path(), &events, 100_000, 100_000);

    // 100,000 events at 10,000 per second on each of two workers: about five seconds.
    let run = [
        "nexmark",
        "run",
        "--query",
        "q5",
        "--from",
        &format!("kafka:{brokers}/{events}"),
        "--out",
        &format!("kafka:{brokers}/{events}-out"),
        "--workers",
        "2",
        "--checkpoint-dir",
        "checkpoints",
        "--checkpoint-interval",
        "200ms",
        "--max-rate",
        "10000",
        "--metrics-addr",
        "127.0.0.1:0",
        "--no-progress",
    ]
    .map(String::from);
    let mut child = common::weir(dir.path(), &run);
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    let addr = first
        .trim()
        .strip_prefix("metrics at http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("no metrics address in {first:?}"))
        .to_owned();

    let lag_key = |unit: &str, partition: u32| {
        format!(
            "weir_source_lag_{unit}{{source=\"kafka:{brokers}/{events}\",partition=\"{partition}\"}}"
        )
    };
    // Scraped once two fifths of the events are read and every partition's lag is reported
    // (however slowly the machine starts), then 2.5 s later: lag figures are refreshed every
    // second, from librdkafka's statistics of every second.
    let started = std::time::Instant::now();
    let during = loop {
        let now = samples(&scrape(&addr));
        let lag_reported = (0..4).all(|partition| {
            ["records", "seconds"]
                .iter()
                .all(|unit| now.contains_key(&lag_key(unit, partition)))
        });
        if lag_reported
            && now
                .get("weir_records_read_total")
                .is_some_and(|read| *read >= 40_000.0)
        {
            break now;
        }
        assert!(
            started.elapsed() < RUN_DEADLINE,
            "the run read too little: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(2500));
    let later = samples(&scrape(&addr));
    let status = common::wait_within(&mut child, RUN_DEADLINE, "the scraped run");
    assert!(status.success());

    // Lag: the reader is held at its rate, so records are left, and fewer later.
    let lag_of = |samples: &BTreeMap<String, f64>, unit: &str| -> Vec<f64> {
        (0..4)
            .map(|partition| samples[&lag_key(unit, partition)])
            .collect()
    };
    let behind: f64 = lag_of(&during, "records").iter().sum();
    let behind_later: f64 = lag_of(&later, "records").iter().sum();
    assert!(
        behind > 0.0 && behind < 100_000.0,
        "records behind: {behind}"
    );
    assert!(
        behind_later < behind,
        "{behind_later} records behind a second later, not fewer than {behind}"
    );
    // The events' timestamps are their event times, years ago: where records are left,
    // the seconds behind say so; a partition read to its end is not behind.
    let seconds = lag_of(&during, "seconds");
    for (records, seconds) in lag_of(&during, "records").iter().zip(&seconds) {
        assert_eq!(
            *records > 0.0,
            *seconds > 3e8,
            "{records} records, {seconds} s behind"
        );
    }
    // The watermark follows the events' times (2015), years behind the wall clock.
    let source = format!("{{source=\"kafka:{brokers}/{events}\"}}");
    let watermark = during[&format!("weir_watermark_milliseconds{source}")];
    assert!(
        watermark > 1.4e12 && watermark < 1.5e12,
        "watermark {watermark}"
    );
    assert!(during[&format!("weir_watermark_lag_seconds{source}")] > 3e8);
    // Checkpoints every 200 ms: several done, the last one recent.
    assert!(
        during["weir_checkpoints_completed_total"] >= 3.0,
        "{during:?}"
    );
    assert!(later["weir_checkpoints_completed_total"] > during["weir_checkpoints_completed_total"]);
    assert!(during["weir_checkpoint_age_seconds"] < 2.0, "{during:?}");
    // Latency: results are written within a second of ingestion, and committed within
    // a few checkpoint intervals.
    assert!(
        later["weir_latency_seconds_count{to=\"emission\"}"] > 10.0,
        "{later:?}"
    );
    assert!(quantile(&later, "emission", 0.99) <= 1.0, "{later:?}");
    assert!(
        later["weir_latency_seconds_count{to=\"commit\"}"] > 3.0,
        "{later:?}"
    );
    let commit_p50 = quantile(&later, "commit", 0.5);
    assert!(
        (0.1..=2.0).contains(&commit_p50),
        "commit p50 {commit_p50}: {later:?}"
    );
    // Every operator counts what passed it.
    assert!(
        later[&format!(
            "weir_operator_records_out_total{{operator=\"source kafka:{brokers}/{events}\"}}"
        )] > 40_000.0
    );
}
