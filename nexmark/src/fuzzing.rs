//! Entry points of the coverage-guided fuzzers (`fuzz/`) that decode Nexmark's events from
//! outside bytes: the binary and JSON codecs and the JSON lines reader. Compiled only by
//! `cargo fuzz`, which sets `cfg(fuzzing)`; see `fuzz/README.md`.

use weir::fuzzing::{read_source, scratch_dir, write_file, SourceRead};
use weir::{Codec, JsonLinesSource};

use crate::Event;

/// An event value in either codec: one that decodes encodes to a value that decodes to the
/// same event, and in the binary codec to at most the bytes it was decoded from (no trailing
/// bytes are accepted; a varint may have been written longer than it needs). The hand-written
/// decoder gives serde's verdict on it, under every projection.
pub fn event_codecs(data: &[u8]) {
    crate::decode::check_against_serde(data);
    for codec in [Codec::Binary, Codec::Json] {
        let Ok(event) = codec.decode::<Event>(data) else {
            continue;
        };
        let mut encoded = Vec::new();
        codec
            .encode(&event, &mut encoded)
            .expect("a decoded event encodes");
        assert_eq!(codec.decode::<Event>(&encoded).as_ref(), Ok(&event));
        if codec == Codec::Binary {
            assert!(
                encoded.len() <= data.len(),
                "a binary event grows when re-encoded"
            );
        }
    }
}

/// A JSON lines file of events: split over one to three workers, the readers return each
/// non-blank line once, as its event or as a dead letter with its line number, in order.
pub fn json_lines(data: &[u8]) {
    let mut expected = SourceRead {
        records: Vec::new(),
        dead_lines: Vec::new(),
    };
    for (number, line) in data.split(|byte| *byte == b'\n').enumerate() {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        match std::str::from_utf8(line).map(serde_json::from_str::<Event>) {
            Ok(Ok(event)) => expected.records.push(event),
            _ => expected.dead_lines.push(number as u64 + 1),
        }
    }
    let scratch = scratch_dir();
    let path = write_file(scratch.path(), "events.jsonl", data);
    for peers in 1..=3 {
        let read = read_source(|| JsonLinesSource::<Event>::new(&path), peers);
        assert_eq!(
            read.records, expected.records,
            "records read by {peers} workers"
        );
        assert_eq!(
            read.dead_lines, expected.dead_lines,
            "dead letters of {peers} workers"
        );
    }
}
