#![no_main]
//! See `weir_examples::fuzzing::arguments` for what this target asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_examples::fuzzing::arguments(data));
