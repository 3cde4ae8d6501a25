//! Dedupe: one record per key per span of event time, the first or the last.
//!
//! Event time is cut into spans of `within` (tumbling windows); of each key's records in a
//! span, dedupe keeps the one with the smallest ([`Keep::First`]) or largest ([`Keep::Last`])
//! event time and emits it when the watermark passes the span's end. Records later than that
//! go to the late output, as for windows.
//!
//! ```
//! use std::time::Duration;
//! use weir_engine::{CollectSink, EventTime, IterSource, Job, JobConfig, Timestamped};
//! use weir_operators::dedupe::{DedupeExt, Keep};
//!
//! #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
//! struct Order { id: u32, at: EventTime }
//! impl Timestamped for Order {
//!     fn event_time(&self) -> EventTime { self.at }
//! }
//!
//! let sink = CollectSink::new();
//! let kept = sink.results();
//! Job::new(JobConfig::default()).run(move |p| {
//!     let orders = [(7, 100), (7, 300), (8, 200), (7, 50)].map(|(id, at)| Order { id, at: EventTime(at) });
//!     p.source(IterSource::new("orders", orders))
//!         .key_by(|order| order.id)
//!         .dedupe(Keep::First, Duration::from_secs(60))
//!         .results
//!         .sink(sink.clone());
//!     Ok(())
//! })?;
//! let mut kept = kept.lock().unwrap().clone();
//! kept.sort_by_key(|order| order.id);
//! assert_eq!(kept, vec![Order { id: 7, at: EventTime(50) }, Order { id: 8, at: EventTime(200) }]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::hash::Hash;
use std::time::Duration;

use weir_engine::{Data, KeyedOutput, KeyedStream, Timestamped};

use crate::aggregate::{First, Last};
use crate::window::{tumbling, WindowExt};

/// Which record of a key's span dedupe keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// The one with the smallest event time (of equal times, the first to arrive).
    First,
    /// The one with the largest event time (of equal times, the last to arrive).
    Last,
}

/// The outputs of a dedupe: one record per key and span, and the records that came after
/// their span was emitted.
pub type Deduped<'s, T> = KeyedOutput<'s, T, T>;

/// Adds `dedupe` to keyed streams.
pub trait DedupeExt<'s, K, T> {
    /// Keeps one record per key per `within` of event time.
    fn dedupe(self, keep: Keep, within: Duration) -> Deduped<'s, T>;
}

impl<'s, K: Data + Hash + Eq, T: Data + Timestamped> DedupeExt<'s, K, T> for KeyedStream<'s, K, T> {
    fn dedupe(self, keep: Keep, within: Duration) -> Deduped<'s, T> {
        let windowed = self.window(tumbling(within));
        let output = match keep {
            Keep::First => windowed.aggregate(First),
            Keep::Last => windowed.aggregate(Last),
        };
        KeyedOutput {
            // Every window holds at least one record, so the value is always there.
            results: output.results.flat_map(|kept| kept.value),
            late: output.late,
        }
    }
}
