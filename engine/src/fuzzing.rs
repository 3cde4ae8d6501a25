//! Entry points of the coverage-guided fuzzers (`fuzz/`) into the engine's decoders of bytes
//! read from disk: checkpoint manifests, the checkpoint files of keyed state, and stored state
//! keys. Each takes arbitrary bytes and asserts what must hold for any input: no panic, and a
//! decode that succeeds encodes back to the same bytes (or value, for JSON). Compiled only by
//! `cargo fuzz`, which sets `cfg(fuzzing)`; see `fuzz/README.md`.
//!
//! [`parts`], [`scratch_dir`], [`write_file`] and [`read_source`] are shared with the other crates' entry points.

use std::path::{Path, PathBuf};

use crate::checkpoint::layout::{self, JobManifest, WorkerManifest};
use crate::state::checkpoint_files::{self, FileBuffer, FileName, RestoredFiles};
use crate::state::keys;
use crate::{DeadLetter, Source, SourcePoll, SourceReader, WorkerInfo};

/// Polls that a reader of a small input may take before it counts as hung.
pub const POLL_LIMIT: usize = 100_000;

/// Splits fuzzer input into `n` parts: each but the last is prefixed by its length as a
/// little-endian `u16` (cut short where the input ends); the last part is what remains.
pub fn parts(mut data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut parts = Vec::with_capacity(n);
    for _ in 1..n {
        let (length, rest) = match data {
            [low, high, rest @ ..] => (usize::from(u16::from_le_bytes([*low, *high])), rest),
            _ => (0, &[][..]),
        };
        let (part, rest) = rest.split_at(length.min(rest.len()));
        parts.push(part);
        data = rest;
    }
    parts.push(data);
    parts
}

/// A new, empty directory for one fuzz input (in memory where `/dev/shm` exists), removed
/// when dropped.
pub fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let made = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    };
    made.expect("a scratch directory can be created")
}

/// Writes `bytes` to `name` under `dir`, creating the folders on the way.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("scratch folders can be created");
    }
    std::fs::write(&path, bytes).expect("scratch files can be written");
    path
}

/// JSON that decodes as `T` encodes to JSON that decodes to the same encoding again.
fn json_round_trips<T: serde::Serialize + serde::de::DeserializeOwned>(bytes: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<T>(bytes) {
        let encoded = serde_json::to_vec(&value).expect("a decoded manifest encodes");
        let again: T = serde_json::from_slice(&encoded).expect("an encoded manifest decodes");
        let encoded_again = serde_json::to_vec(&again).expect("a decoded manifest encodes");
        assert_eq!(encoded, encoded_again, "a manifest changes when re-encoded");
    }
}

/// A checkpoint directory whose job manifest and two worker manifests are the input's three
/// parts: listing it ends in an error or a listing, and each manifest that decodes alone
/// re-encodes to itself.
pub fn checkpoint_manifests(data: &[u8]) {
    let [job, worker_0, worker_1] = parts(data, 3)[..] else {
        unreachable!("parts returns as many parts as asked");
    };
    json_round_trips::<JobManifest>(job);
    json_round_trips::<WorkerManifest>(worker_0);
    json_round_trips::<WorkerManifest>(worker_1);
    let scratch = scratch_dir();
    let checkpoint = layout::checkpoint_path(scratch.path(), crate::Epoch(7));
    let run = serde_json::from_slice::<JobManifest>(job).map_or(0, |job| job.run);
    std::fs::create_dir_all(&checkpoint).expect("scratch folders can be created");
    std::fs::write(checkpoint.join(layout::JOB_MANIFEST), job).expect("scratch files");
    for (worker, bytes) in [worker_0, worker_1].into_iter().enumerate() {
        std::fs::write(
            layout::worker_manifest_path(&checkpoint, worker, run),
            bytes,
        )
        .expect("scratch files");
    }
    if let Ok(listed) = layout::list_checkpoints(scratch.path()) {
        assert_eq!(
            listed.len(),
            1,
            "one checkpoint was written, {listed:?} listed"
        );
    }
}

/// A checkpoint file of keyed state: its records decode up to the first malformed one, and a
/// file that decodes whole is re-encoded to the same bytes; a replay of it with a second file
/// (the rest of the input) applies every record or fails naming the file.
pub fn state_file(data: &[u8]) {
    let [first, second] = parts(data, 2)[..] else {
        unreachable!("parts returns as many parts as asked");
    };
    let path = Path::new("op-0000000001-000000000002.delta");
    let mut buffer = FileBuffer::default();
    let mut whole = true;
    for record in checkpoint_files::records(path, first) {
        match record {
            Ok(record) => {
                let _ = (
                    keys::operator_of(record.key),
                    keys::key_group_of(record.key),
                );
                let _ = keys::decode_state_key::<(u64, String)>(record.key);
                let _ = keys::decode_timer::<u64>(record.key);
                buffer
                    .push_record(&record)
                    .expect("a decoded record encodes");
            }
            Err(error) => {
                assert!(error.to_string().contains("op-0000000001"), "{error}");
                whole = false;
            }
        }
    }
    if whole {
        assert_eq!(
            buffer.file_bytes(),
            first,
            "a state file changes when re-encoded"
        );
    }
    let mut restored = RestoredFiles::new(0..u32::MAX);
    restored.chains.push(vec![
        (path.to_owned(), first.to_vec()),
        (path.with_extension("snap"), second.to_vec()),
    ]);
    let _ = checkpoint_files::replay_all([&restored]);
    if let Ok(name) = std::str::from_utf8(second) {
        if let Some(parsed) = FileName::parse(name) {
            assert_eq!(FileName::parse(&parsed.render()), Some(parsed));
        }
    }
}

/// What a file source read: its records and the line numbers of its dead letters.
pub struct SourceRead<T> {
    /// The records, worker after worker.
    pub records: Vec<T>,
    /// The line numbers of the dead letters, worker after worker.
    pub dead_lines: Vec<u64>,
}

/// Reads every worker's share of a source, worker after worker.
pub fn read_source<S: Source>(open: impl Fn() -> S, peers: usize) -> SourceRead<S::Item> {
    let mut read = SourceRead {
        records: Vec::new(),
        dead_lines: Vec::new(),
    };
    for index in 0..peers {
        let mut reader = open()
            .open(WorkerInfo { index, peers })
            .expect("a scratch file opens");
        let mut dead = Vec::<DeadLetter>::new();
        let mut finished = false;
        for _ in 0..POLL_LIMIT {
            let poll = reader.poll(&mut read.records, 64).expect("a file reads");
            reader.drain_dead_letters(&mut dead);
            if poll == SourcePoll::Finished {
                finished = true;
                break;
            }
        }
        assert!(finished, "a reader of a small file never finished");
        read.dead_lines.extend(
            dead.iter()
                .map(|letter| letter.line.expect("a line number")),
        );
    }
    read
}
