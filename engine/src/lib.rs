//! weir's runtime, in layers: the shared run-time state of a job and its workers
//! (`engine/src/runtime/`, importing nothing above it); the drivers of sources, sinks and
//! keyed operators, with state and checkpoints, on it; and the typed pipeline API on them. Also
//! job configuration, the launcher of worker threads and processes on timely, the
//! `(epoch, watermark)` timestamp, watermark strategies and key groups.
//!
//! Users normally depend on the `weir` facade crate, which re-exports this one.

pub mod checkpoint;
mod config;
mod control;
mod crash_point;
mod dead_letter;
pub mod durable;
mod error;
#[cfg(fuzzing)]
pub mod fuzzing;
mod in_order;
mod iter_source;
mod key_group;
mod keyed;
mod launcher;
mod metrics;
#[cfg(feature = "micro-benchmarks")]
pub mod micro_benchmarks;
mod operator_names;
mod pipeline;
mod runtime;
mod sink;
mod source;
mod state;
pub mod testing;
pub mod time;
pub mod watermark;

pub use checkpoint::positions::{PartitionPosition, Positions};
pub use checkpoint::{CheckpointConfig, CheckpointError, Restore};
pub use config::{Cluster, JobConfig, RestartPolicy};
pub use crash_point::{crash_point, CRASH_POINTS};
pub use dead_letter::DeadLetter;
pub use error::{BoxError, ConfigError, EngineError};
pub use iter_source::{IterReader, IterSource};
pub use key_group::{KeyGroup, KeyGroups};
pub use keyed::{KeyedContext, KeyedProcess};
pub use launcher::{Job, JobReport};
pub use metrics::{JobMetrics, LatencyHistogram, OperatorMetrics, PartitionLag, BUCKET_BOUNDS_MS};
pub use pipeline::{KeyedOutput, KeyedStream, Pipeline, Stream};
pub use runtime::job::WorkerInfo;
pub use sink::{CollectSink, DiscardSink, Sink, SinkPlacement};
pub use source::{Source, SourcePoll, SourceReader};
pub use state::{StateBackend, StateError};
pub use time::{
    millis, wall_clock_millis, Epoch, EventTime, FlowTick, ProcessingTime, Time, Timestamped,
    END_OF_TIME, FLOW_TICK,
};

/// What a record type needs to flow through a pipeline: plain owned data that serde can
/// encode, so that it can cross threads and processes.
pub trait Data: Clone + Send + serde::Serialize + serde::de::DeserializeOwned + 'static {}

impl<T: Clone + Send + serde::Serialize + serde::de::DeserializeOwned + 'static> Data for T {}
