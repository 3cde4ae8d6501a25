#![no_main]
//! See `weir_connectors::fuzzing::csv` for what this target asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_connectors::fuzzing::csv(data));
