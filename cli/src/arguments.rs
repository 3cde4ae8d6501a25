//! Parsers of the command line's values: where events come from or go to, durations and
//! event times. Kept apart from the `weir` binary so that the fuzzers reach them too.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use weir::datetime;
use weir::kafka::KafkaClient;
use weir::EventTime;

/// A topic of the embedded log or of Kafka, or a JSON lines file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// `log:DIR/TOPIC`: a topic directory.
    Log(PathBuf),
    /// `kafka:HOST:PORT[,HOST:PORT...]/TOPIC`: a Kafka topic.
    Kafka(KafkaClient),
    /// Any other path: a JSON lines file.
    File(PathBuf),
}

impl FromStr for Location {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if let Some(address) = text.strip_prefix("kafka:") {
            return address.parse().map(Location::Kafka);
        }
        match text.strip_prefix("log:") {
            Some("") => Err("log: needs a topic directory, as in log:data/events".into()),
            Some(dir) => Ok(Location::Log(PathBuf::from(dir))),
            None if text.is_empty() => Err("an empty path".into()),
            None => Ok(Location::File(PathBuf::from(text))),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Log(dir) => write!(f, "log:{}", dir.display()),
            Location::Kafka(client) => write!(f, "{}", client.address()),
            Location::File(path) => write!(f, "{}", path.display()),
        }
    }
}

impl Location {
    /// Applies librdkafka `options` to a Kafka location; others are returned as they are.
    pub fn with_kafka_options(self, options: &[(String, String)]) -> Location {
        match self {
            Location::Kafka(client) => Location::Kafka(
                options
                    .iter()
                    .fold(client, |client, (key, value)| client.option(key, value)),
            ),
            other => other,
        }
    }
}

/// Parses a librdkafka option given as `key=value`.
pub fn parse_kafka_option(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!(
            "{text:?} is not key=value, as in security.protocol=SSL"
        )),
    }
}

/// Parses `500ms`, `1s`, `2m` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if text.starts_with('-') {
        return Err(format!("{text:?}: a duration cannot be negative"));
    }
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((text, "s"), |at| text.split_at(at));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 500ms, 1s or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("{text:?}: the unit must be ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|error| format!("{text:?}: {error}"))
}

/// Parses an event time given as milliseconds or as "YYYY-MM-DD HH:MM:SS.mmm".
pub fn parse_time(text: &str) -> Result<EventTime, String> {
    text.parse::<u64>()
        .map(EventTime)
        .or_else(|_| datetime::parse(text))
        .map_err(|_| format!("{text:?} is neither milliseconds nor YYYY-MM-DD HH:MM:SS.mmm"))
}
