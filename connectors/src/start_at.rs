//! Where a source of a partitioned log (the embedded log, Kafka) starts reading.

use std::collections::BTreeMap;

use weir_engine::EventTime;

/// Where a source starts reading each partition (when it does not resume from a checkpoint).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum StartAt {
    /// The first record retention kept.
    #[default]
    Earliest,
    /// After the last record written when the job starts.
    Latest,
    /// The given offset per partition; partitions not named start at the earliest.
    Offsets(BTreeMap<u32, u64>),
    /// The first record whose timestamp is at least this event time.
    Timestamp(EventTime),
}
