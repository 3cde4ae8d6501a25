#![no_main]
//! See `weir_connectors::fuzzing::commit_history` for what this target asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_connectors::fuzzing::commit_history(data));
