#![no_main]
//! See `weir_connectors::fuzzing::record_frames` for what this target asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_connectors::fuzzing::record_frames(data));
