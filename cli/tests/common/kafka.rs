//! The Kafka tests' broker and readers: Apache Kafka itself, started once per test process by
//! `scripts/kafka.sh` and stopped when the process exits.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// How long reading a topic to its end may take.
const READ_DEADLINE: Duration = Duration::from_secs(60);

/// The bootstrap address of the tests' broker, started on the first call (port
/// `WEIR_KAFKA_TEST_PORT`, 19092 by default, so that a broker of the user's on 9092 is left
/// alone).
pub fn broker() -> &'static str {
    static BROKER: OnceLock<String> = OnceLock::new();
    BROKER.get_or_init(|| {
        let port = std::env::var("WEIR_KAFKA_TEST_PORT").unwrap_or_else(|_| "19092".into());
        let output = Command::new("bash")
            .arg(script())
            .args(["start", "--until-exit-of", &std::process::id().to_string()])
            .env("WEIR_KAFKA_PORT", port)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "scripts/kafka.sh start failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let address = String::from_utf8(output.stdout).unwrap();
        address.lines().last().unwrap().trim().to_owned()
    })
}

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/kafka.sh")
}

/// Runs one of Kafka's tools against the broker (`scripts/kafka.sh tool NAME ARGS`): its
/// standard output.
pub fn tool(name: &str, args: &[&str]) -> String {
    let output = Command::new("bash")
        .arg(script())
        .args(["tool", name, "--bootstrap-server", broker()])
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "kafka-{name} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A topic name of its own for each use: the broker lives as long as the test process.
pub fn unique_topic(name: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{name}-{}-{n}", std::process::id())
}

/// Every record value of `topic`, counted, as a consumer with `isolation.level` sees it
/// (`read_committed`: what committed transactions hold; `read_uncommitted`: aborted ones too).
pub fn values(topic: &str, isolation: &str) -> BTreeMap<String, usize> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker())
        .set("group.id", format!("reader-{topic}"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", isolation)
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .unwrap();
    let partitions = metadata.topics()[0].partitions().len();
    assert!(partitions > 0, "topic {topic} has no partitions");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions as i32 {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut values = BTreeMap::new();
    let mut at_end = std::collections::BTreeSet::new();
    let started = Instant::now();
    while at_end.len() < partitions {
        assert!(
            started.elapsed() < READ_DEADLINE,
            "reading {topic} took over {READ_DEADLINE:?}"
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let value = String::from_utf8(message.payload().unwrap().to_vec()).unwrap();
                *values.entry(value).or_insert(0) += 1;
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                at_end.insert(partition);
            }
            Some(Err(error)) => panic!("reading {topic}: {error}"),
            None => {}
        }
    }
    values
}
