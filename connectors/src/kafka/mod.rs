//! Kafka: a source that reads a topic's partitions spread over the workers, and a sink that
//! writes a topic exactly once (transactions) or at least once. Both go through librdkafka.
//!
//! Positions come from weir's checkpoints, never from consumer-group commits: the source
//! commits its offsets to a consumer group only after each checkpoint, so that Kafka's own
//! tools (`kafka-consumer-groups.sh --describe`) show the job's lag. The exactly-once sink is
//! described in [`sink`](KafkaSink).
//!
//! Values are JSON. Client settings (security, timeouts) pass through as librdkafka's
//! `key=value` options ([`KafkaClient::option`]).

mod sink;
mod source;

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;

use crate::error::ConnectorError;

pub use sink::KafkaSink;
pub use source::{KafkaReader, KafkaSource};

/// How long a metadata or offsets request to the brokers may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The context of weir's consumers: librdkafka's errors go to `tracing`, except the
/// end-of-partition events the source asks for (`enable.partition.eof`), which are none
/// (rdkafka hands every error event to the context as well as to `poll`); the consumer lag
/// per partition of librdkafka's statistics is kept for the source's metrics.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    lags: Mutex<HashMap<i32, u64>>,
}

impl Observed {
    /// The consumer lag of `partition` in the latest statistics.
    pub(crate) fn lag(&self, partition: i32) -> Option<u64> {
        self.lags.lock().ok()?.get(&partition).copied()
    }
}

impl ClientContext for Observed {
    fn error(&self, error: KafkaError, reason: &str) {
        let end_of_partition = matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
        );
        if !end_of_partition {
            tracing::warn!(%error, reason, "librdkafka");
        }
    }

    fn stats(&self, statistics: Statistics) {
        let Ok(mut lags) = self.lags.lock() else {
            return;
        };
        for topic in statistics.topics.values() {
            for (partition, figures) in &topic.partitions {
                // librdkafka reports -1 until it knows; partition -1 is its internal one.
                if let (true, Ok(lag)) = (*partition >= 0, u64::try_from(figures.consumer_lag)) {
                    lags.insert(*partition, lag);
                }
            }
        }
    }
}

impl ConsumerContext for Observed {}

/// A consumer of weir's.
pub(crate) type WeirConsumer = BaseConsumer<Observed>;

/// Where a topic lives: the brokers to bootstrap from, and librdkafka settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaClient {
    /// `host:port[,host:port...]`.
    pub brokers: String,
    /// The topic.
    pub topic: String,
    /// librdkafka settings passed through (`security.protocol`, `sasl.mechanisms`...).
    pub options: BTreeMap<String, String>,
}

impl KafkaClient {
    /// The topic `topic` on the brokers `brokers` (`host:port[,host:port...]`).
    pub fn new(brokers: impl Into<String>, topic: impl Into<String>) -> Self {
        KafkaClient {
            brokers: brokers.into(),
            topic: topic.into(),
            options: BTreeMap::new(),
        }
    }

    /// Sets a librdkafka option for every client this connector opens; it wins over weir's
    /// own settings.
    pub fn option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.insert(key.into(), value.into());
        self
    }

    /// The address as errors and metrics name it: `kafka:BROKERS/TOPIC`.
    pub fn address(&self) -> String {
        format!("kafka:{}/{}", self.brokers, self.topic)
    }

    /// A client configuration with `settings` (weir's), then the user's options over them.
    fn config(&self, settings: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in settings {
            config.set(*key, *value);
        }
        for (key, value) in &self.options {
            config.set(key, value);
        }
        config
    }

    /// Wraps a client error with this address and what was being done.
    fn error(&self, what: impl Into<String>) -> impl FnOnce(KafkaError) -> ConnectorError + '_ {
        let what = what.into();
        move |source| ConnectorError::Kafka {
            address: self.address(),
            what,
            source: Box::new(source),
        }
    }

    fn bad(&self, reason: impl Into<String>) -> ConnectorError {
        ConnectorError::BadKafka {
            address: self.address(),
            reason: reason.into(),
        }
    }

    /// The number of partitions of the topic; an error naming it when it does not exist.
    pub fn partitions(&self) -> Result<u32, ConnectorError> {
        let consumer = self.consumer(&[])?;
        self.partitions_seen_by(&consumer)
    }

    /// A consumer with `settings` (and the user's options over them).
    fn consumer(&self, settings: &[(&str, &str)]) -> Result<WeirConsumer, ConnectorError> {
        self.config(settings)
            .create_with_context(Observed::default())
            .map_err(self.error("creating a consumer"))
    }

    /// The topic's partition count. A topic created a moment ago may be unknown to the broker
    /// that answers for a while: an unknown topic is asked about again for up to
    /// [`REQUEST_TIMEOUT`].
    fn partitions_seen_by(&self, consumer: &WeirConsumer) -> Result<u32, ConnectorError> {
        let started = std::time::Instant::now();
        loop {
            let metadata = consumer
                .fetch_metadata(Some(&self.topic), REQUEST_TIMEOUT)
                .map_err(self.error("reading the topic's metadata"))?;
            let topic = metadata
                .topics()
                .iter()
                .find(|topic| topic.name() == self.topic)
                .ok_or_else(|| self.bad("the brokers returned no metadata for the topic"))?;
            match topic.error().map(RDKafkaErrorCode::from) {
                None if !topic.partitions().is_empty() => {
                    return Ok(topic.partitions().len() as u32)
                }
                None => return Err(self.bad("the topic has no partitions")),
                Some(RDKafkaErrorCode::UnknownTopicOrPartition)
                    if started.elapsed() < REQUEST_TIMEOUT =>
                {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Some(code) => return Err(self.bad(format!("the topic cannot be read: {code}"))),
            }
        }
    }

    /// Creates the topic with `partitions` partitions (one replica each unless the options say
    /// `replication.factor`) and the topic settings `config` (as `retention.ms`) if it does
    /// not exist yet.
    pub fn ensure_topic(
        &self,
        partitions: u32,
        config: &[(&str, &str)],
    ) -> Result<(), ConnectorError> {
        let admin: AdminClient<DefaultClientContext> = self
            .config(&[])
            .create()
            .map_err(self.error("creating an admin client"))?;
        let replication = self
            .options
            .get("replication.factor")
            .and_then(|factor| i32::from_str(factor).ok())
            .unwrap_or(1);
        let topic = config.iter().fold(
            NewTopic::new(
                &self.topic,
                partitions as i32,
                TopicReplication::Fixed(replication),
            ),
            |topic, (key, value)| topic.set(key, value),
        );
        let options = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
        let results = futures_executor::block_on(admin.create_topics([&topic], &options))
            .map_err(self.error("creating the topic"))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => {
                    return Err(self.bad(format!("the topic cannot be created: {code}")))
                }
            }
        }
        Ok(())
    }
}

impl FromStr for KafkaClient {
    type Err = String;

    /// Parses `HOST:PORT[,HOST:PORT...]/TOPIC` (the part after `kafka:`).
    fn from_str(text: &str) -> Result<Self, String> {
        let (brokers, topic) = text.rsplit_once('/').ok_or_else(|| {
            format!("{text:?}: give the brokers and the topic, as kafka:127.0.0.1:9092/events")
        })?;
        if brokers.is_empty() || topic.is_empty() {
            return Err(format!(
                "{text:?}: the brokers and the topic must not be empty, as in \
                 kafka:127.0.0.1:9092/events"
            ));
        }
        Ok(KafkaClient::new(brokers, topic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_names_brokers_and_topic() {
        let client: KafkaClient = "a:9092,b:9092/bids".parse().unwrap();
        assert_eq!(client.brokers, "a:9092,b:9092");
        assert_eq!(client.topic, "bids");
        assert_eq!(client.address(), "kafka:a:9092,b:9092/bids");
        for bad in ["a:9092", "/bids", "a:9092/"] {
            assert!(bad.parse::<KafkaClient>().is_err(), "{bad}");
        }
    }
}
