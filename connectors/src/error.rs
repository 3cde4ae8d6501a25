//! The connectors' error type.

use std::path::PathBuf;

/// A failure reading or writing external data, naming the file and the place in it.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// An I/O error on a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A record could not be encoded as JSON.
    #[error("{path}: cannot encode a record as JSON: {source}")]
    Encode {
        /// The file being written.
        path: PathBuf,
        /// The encoder's error.
        source: serde_json::Error,
    },
    /// A file's content or a record's shape does not fit its format.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What does not fit.
        reason: String,
    },
    /// A log directory or file that is not what it should be (missing topic, bad name,
    /// a second writer, a record over the size limit).
    #[error("{path}: {reason}")]
    BadLog {
        /// The topic, partition or file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The output of an exactly-once file sink that is not what the restored checkpoint
    /// needs (a staged part missing or damaged, its ledger lost).
    #[error("{path}: {reason}")]
    BadOutput {
        /// The part file or the sink's ledger.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A damaged record in a log segment (not a torn tail, which is repaired on open).
    #[error("{path}: corrupt record at offset {offset}: {reason}")]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// The offset of the damaged record.
        offset: u64,
        /// What is wrong, with the byte position.
        reason: String,
    },
    /// A read asked for an offset the partition does not hold.
    #[error("{path}: offset {offset} is outside the partition's offsets {start}..{end}")]
    OffsetOutOfRange {
        /// The partition directory.
        path: PathBuf,
        /// The offset asked for.
        offset: u64,
        /// The first offset kept (older ones were deleted by retention).
        start: u64,
        /// The next offset to be written.
        end: u64,
    },
    /// A Kafka client call failed.
    #[cfg(feature = "kafka")]
    #[error("{address}: {what}: {source}")]
    Kafka {
        /// The brokers and topic, as `kafka:HOST:PORT/TOPIC`.
        address: String,
        /// What the client was doing.
        what: String,
        /// The client's error (boxed: it is large, and rare).
        source: Box<rdkafka::error::KafkaError>,
    },
    /// A Kafka topic, setting or output that cannot work as asked (a missing topic, a bad
    /// option, a transactional output a restore cannot continue).
    #[cfg(feature = "kafka")]
    #[error("{address}: {reason}")]
    BadKafka {
        /// The brokers and topic, as `kafka:HOST:PORT/TOPIC`.
        address: String,
        /// What is wrong.
        reason: String,
    },
}

impl ConnectorError {
    /// Wraps an I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ConnectorError::Io {
            path: path.into(),
            source,
        }
    }
}
