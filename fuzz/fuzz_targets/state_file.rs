#![no_main]
//! See `weir_engine::fuzzing::state_file` for what this target asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_engine::fuzzing::state_file(data));
