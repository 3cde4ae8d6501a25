#![no_main]
//! See `weir_cli::fuzzing::arguments` for what this target asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_cli::fuzzing::arguments(data));
