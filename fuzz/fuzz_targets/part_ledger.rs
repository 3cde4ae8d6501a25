#![no_main]
//! See `weir_connectors::fuzzing::part_ledger` for what this target asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_connectors::fuzzing::part_ledger(data));
