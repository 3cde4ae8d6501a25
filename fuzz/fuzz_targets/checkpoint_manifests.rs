#![no_main]
//! See `weir_engine::fuzzing::checkpoint_manifests` for what this target asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_engine::fuzzing::checkpoint_manifests(data));
