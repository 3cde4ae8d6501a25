//! Where a source reader stands in each of its partitions, as a checkpoint records it.

use std::collections::BTreeMap;

use crate::time::EventTime;

/// Where a reader stands in one partition, as a checkpoint records it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(from = "PositionRecord")]
pub struct PartitionPosition {
    /// The next offset to read: every record before it has been read.
    pub next_offset: u64,
    /// For a bounded read, the offset it ends at, fixed when the job first started so that a
    /// restored run reads the same records (not those appended since).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_offset: Option<u64>,
    /// The greatest event time read from the partition, from which its watermark is rebuilt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_event_time: Option<EventTime>,
}

impl PartitionPosition {
    /// A position that records only the next offset.
    pub fn at(next_offset: u64) -> Self {
        PartitionPosition {
            next_offset,
            ..PartitionPosition::default()
        }
    }
}

/// A partition's position as manifests store it: checkpoints written before positions had
/// more than an offset hold the offset alone.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum PositionRecord {
    Offset(u64),
    Full {
        next_offset: u64,
        #[serde(default)]
        end_offset: Option<u64>,
        #[serde(default)]
        max_event_time: Option<EventTime>,
    },
}

impl From<PositionRecord> for PartitionPosition {
    fn from(record: PositionRecord) -> Self {
        match record {
            PositionRecord::Offset(next_offset) => PartitionPosition::at(next_offset),
            PositionRecord::Full {
                next_offset,
                end_offset,
                max_event_time,
            } => PartitionPosition {
                next_offset,
                end_offset,
                max_event_time,
            },
        }
    }
}

/// Partition → position: where a source reader stands.
pub type Positions = BTreeMap<u32, PartitionPosition>;
