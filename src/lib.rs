//! weir: a stream-processing dataflow engine.
//!
//! A pipeline is a closure that builds a dataflow from sources, transformations and sinks; a
//! [`Job`] runs it on worker threads (and processes), each worker reading its share of the input.
//!
//! ```
//! use weir::prelude::*;
//!
//! let sink = CollectSink::new();
//! let squares = sink.results();
//! Job::new(JobConfig::default().workers(2))
//!     .run(move |p| {
//!         p.source(IterSource::new("numbers", 0..10_000u64))
//!             .filter(|n| n % 1_000 == 0)
//!             .map(|n| (n, n * n))
//!             .sink(sink.clone());
//!         Ok(())
//!     })
//!     .unwrap();
//! assert_eq!(squares.lock().unwrap().len(), 10);
//! ```
//!
//! The Nexmark benchmark's events, generator and queries are in the `weir-nexmark` crate.

#[cfg(feature = "kafka")]
pub use weir_connectors::kafka;
pub use weir_connectors::{
    datetime, decode_with_serde, files, log, schema, write_json_lines, CheckRecords, Checks, Codec,
    ConnectorError, CsvSink, CsvSource, Decode, Destination, Encoded, JsonLinesSink,
    JsonLinesSource, ParquetSink,
};
pub use weir_engine::*;
pub use weir_operators as operators;

/// The names most pipelines use.
pub mod prelude {
    #[cfg(feature = "kafka")]
    pub use weir_connectors::kafka::{KafkaClient, KafkaSink, KafkaSource};
    pub use weir_connectors::log::{LogSink, LogSource, StartAt};
    pub use weir_connectors::{
        CheckRecords, CsvSink, CsvSource, JsonLinesSink, JsonLinesSource, ParquetSink,
    };
    pub use weir_engine::watermark::Watermarks;
    pub use weir_engine::{
        CollectSink, DeadLetter, DiscardSink, IterSource, Job, JobConfig, KeyedStream, Pipeline,
        Stream,
    };
}
