//! The run-time state that the drivers of sources, sinks and keyed operators, and the pipeline
//! API above them, are built on. It imports nothing from those layers: `job` holds what one
//! process's workers share, `watermarks` the source workers' watermarks, `flow` how far the
//! sinks are behind the sources (backpressure), `clock` processing time, `context` what every
//! operator of a worker's pipeline is built with.

pub(crate) mod clock;
pub(crate) mod context;
pub(crate) mod flow;
pub(crate) mod job;
pub(crate) mod watermarks;
