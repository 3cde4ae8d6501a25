//! weir: a stream-processing dataflow engine.
//!
//! A pipeline is a closure that builds a dataflow from sources, transformations and sinks; a
//! [`Job`] runs it on worker threads (and processes), each worker reading its share of the input.
//!
//! ```
//! use weir::prelude::*;
//! use weir::nexmark::{Event, GeneratorConfig, NexmarkSource};
//!
//! let sink = CollectSink::new();
//! let expensive = sink.results();
//! Job::new(JobConfig::default().workers(2))
//!     .run(move |p| {
//!         p.source(NexmarkSource::new(GeneratorConfig::default(), 10_000))
//!             .flat_map(|event| match event {
//!                 Event::Bid(bid) => Some(bid),
//!                 _ => None,
//!             })
//!             .filter(|bid| bid.price > 1_000_000)
//!             .map(|bid| (bid.auction, bid.price))
//!             .sink(sink.clone());
//!         Ok(())
//!     })
//!     .unwrap();
//! assert!(!expensive.lock().unwrap().is_empty());
//! ```

pub use weir_connectors::{
    datetime, files, log, nexmark, write_json_lines, Codec, ConnectorError, CsvSink, CsvSource,
    JsonLinesSink, JsonLinesSource, ParquetSink,
};
pub use weir_engine::*;
pub use weir_operators as operators;

/// The names most pipelines use.
pub mod prelude {
    pub use weir_connectors::log::{LogSink, LogSource, StartAt};
    pub use weir_connectors::{CsvSink, CsvSource, JsonLinesSink, JsonLinesSource, ParquetSink};
    pub use weir_engine::{
        CollectSink, DeadLetter, DiscardSink, IterSource, Job, JobConfig, KeyedStream, Pipeline,
        Stream,
    };
    pub use weir_operators::watermark::Watermarks;
}

/// The README's example compiles (as a doctest).
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The operator guide's examples compile and run (as doctests).
#[doc = include_str!("../docs/operators.md")]
#[cfg(doctest)]
pub struct OperatorGuideDoctests;
