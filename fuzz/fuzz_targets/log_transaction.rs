#![no_main]
//! See `weir_connectors::fuzzing::log_transaction` for what this target asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_connectors::fuzzing::log_transaction(data));
