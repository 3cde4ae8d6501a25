//! weir: a stream-processing dataflow engine.
