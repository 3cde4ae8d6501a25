#![no_main]
//! See `weir_connectors::fuzzing::log_partition` for what this target asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_connectors::fuzzing::log_partition(data));
