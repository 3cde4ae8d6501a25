//! Kafka throughput, against Apache Kafka itself on this machine: q0 and q5 reading a topic of
//! JSON events (8 partitions) on 2 workers, results discarded; then q0 writing every event
//! back to a Kafka topic with checkpoints every second, exactly-once (transactions, epochs
//! staged on disk) against at-least-once (the same checkpoints, records produced as they come).
//! Prints events/s and the ratio; checks only that every event was read.
//!
//! `scripts/kafka.sh start && cargo bench -p weir-benches --bench kafka` (`WEIR_BENCH_EVENTS`,
//! default 2 M; `WEIR_KAFKA_BROKERS`, default the script's `127.0.0.1:9092`).

use std::path::Path;
use std::time::Duration;

use weir::kafka::{KafkaClient, KafkaSink};
use weir::Destination;
use weir::{CheckpointConfig, Job, JobConfig};
use weir_nexmark::{Event, EventInput, GeneratorConfig, NexmarkSource};

const WORKERS: usize = 2;
const PARTITIONS: u32 = 8;

/// The brokers: `WEIR_KAFKA_BROKERS`, or those of `scripts/kafka.sh start`.
fn brokers() -> String {
    std::env::var("WEIR_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// A topic name no earlier run used.
fn topic(name: &str) -> String {
    format!("bench-{name}-{}", std::process::id())
}

/// Writes `events` generated events to a new topic as JSON, each stamped with its event time.
fn write_events(client: &KafkaClient, events: u64) {
    client
        .ensure_topic(PARTITIONS, &[])
        .expect("the topic is created");
    let sink_client = client.clone();
    let report = Job::new(JobConfig::default().workers(WORKERS))
        .run(move |p| {
            p.source(NexmarkSource::new(GeneratorConfig::default(), events))
                .sink(KafkaSink::new(sink_client.clone()).event_time(Event::date_time));
            Ok(())
        })
        .expect("the events are written");
    println!(
        "wrote {events} events to {} in {:.2} s",
        client.address(),
        report.wall.as_secs_f64()
    );
}

/// Runs `query` on 2 workers over the events of `input` into `sink`, with checkpoints into
/// `checkpoints` when given: events/s.
fn run(
    query: &str,
    input: &KafkaClient,
    events: u64,
    sink: Destination,
    checkpoints: Option<&Path>,
) -> f64 {
    let mut config = JobConfig::default().workers(WORKERS);
    if let Some(dir) = checkpoints {
        config = config.checkpoints(CheckpointConfig::new(dir).interval(Duration::from_secs(1)));
    }
    let input = EventInput::Kafka {
        client: input.clone(),
        disorder: Duration::ZERO,
        max_rate: None,
    };
    let report = weir_benches::run_query_into(Job::new(config), input, events, query, sink);
    events as f64 / report.wall.as_secs_f64()
}

fn main() {
    let events: u64 = std::env::var("WEIR_BENCH_EVENTS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(2_000_000);
    let brokers = brokers();
    let input = KafkaClient::new(&brokers, topic("events"));
    write_events(&input, events);

    for query in ["q0", "q5"] {
        let rate = run(query, &input, events, Destination::Discard, None);
        println!(
            "{query} from Kafka, {WORKERS} workers, results discarded: {:.2} M events/s",
            rate / 1e6
        );
    }

    let scratch = tempfile::tempdir().expect("a scratch directory");
    let mut rates = Vec::new();
    for (mode, exactly_once) in [("at-least-once", false), ("exactly-once", true)] {
        let out = KafkaClient::new(&brokers, topic(mode));
        out.ensure_topic(PARTITIONS, &[])
            .expect("the output topic is created");
        let checkpoints = scratch.path().join(mode);
        let sink = Destination::Kafka {
            client: out,
            staging: exactly_once.then(|| checkpoints.join("kafka-staging")),
        };
        let rate = run("q0", &input, events, sink, Some(&checkpoints));
        println!(
            "q0 from Kafka into Kafka, {WORKERS} workers, checkpoints every 1 s, {mode}: {:.2} M events/s",
            rate / 1e6
        );
        rates.push(rate);
    }
    println!(
        "the transactional sink runs at {:.2}x the at-least-once sink's rate",
        rates[1] / rates[0]
    );
}
