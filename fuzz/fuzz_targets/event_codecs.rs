#![no_main]
//! See `weir_nexmark::fuzzing::event_codecs` for what this target asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_nexmark::fuzzing::event_codecs(data));
