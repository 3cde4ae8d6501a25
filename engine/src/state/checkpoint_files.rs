//! The checkpoint files of in-memory keyed state. When an epoch completes, each keyed
//! operator writes one file: a *delta* (the entries changed and the entries removed in the
//! epoch) or, once its deltas have outgrown its last snapshot, a *snapshot* of every entry.
//! A checkpoint of epoch `e` holds, per operator, the newest snapshot up to `e` and the deltas
//! after it; restoring replays them in epoch order. Appending an epoch's changes to a file
//! costs far less than inserting them into RocksDB, and a snapshot's cost is bounded by the
//! deltas before it.
//!
//! Entries are `(store key, value)` pairs encoded as the RocksDB backend stores them
//! (`operator | key group | key`), so either backend restores from either kind of checkpoint,
//! and a restore with another worker count keeps the key groups the worker now owns.
//!
//! ```text
//! op-0000000007-000000000042.snap    operator 7's snapshot at the end of epoch 42
//! op-0000000007-000000000043.delta   operator 7's changes in epoch 43
//!
//! file   = b"WEIRSTA1" record*
//! record = 1u8 key_len:u32le key value_len:u32le value      (put)
//!        | 0u8 key_len:u32le key                            (delete)
//! ```

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{keys, StateError};
use crate::key_group::KeyGroup;
use crate::time::Epoch;

const MAGIC: &[u8; 8] = b"WEIRSTA1";
const PUT: u8 = 1;
const DELETE: u8 = 0;

/// Whether a file holds every entry or the changes of one epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum FileKind {
    Snapshot,
    Delta,
}

/// The name of a checkpoint file: whose, of which epoch, and which kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileName {
    pub(crate) operator: u32,
    pub(crate) epoch: Epoch,
    pub(crate) kind: FileKind,
}

impl FileName {
    fn extension(&self) -> &'static str {
        match self.kind {
            FileKind::Snapshot => "snap",
            FileKind::Delta => "delta",
        }
    }

    /// The file name, `op-OPERATOR-EPOCH.snap|delta`.
    pub(crate) fn render(&self) -> String {
        format!(
            "op-{:010}-{:012}.{}",
            self.operator,
            self.epoch,
            self.extension()
        )
    }

    /// Reads a name [`render`](Self::render) wrote; `None` for any other file.
    pub(crate) fn parse(name: &str) -> Option<FileName> {
        let (stem, extension) = name.strip_prefix("op-")?.rsplit_once('.')?;
        let kind = match extension {
            "snap" => FileKind::Snapshot,
            "delta" => FileKind::Delta,
            _ => return None,
        };
        let (operator, epoch) = stem.split_once('-')?;
        Some(FileName {
            operator: operator.parse().ok()?,
            epoch: epoch.parse().ok()?,
            kind,
        })
    }
}

/// The files of `dir` a checkpoint of `epoch` needs (per operator: its newest snapshot up to
/// `epoch` and the deltas after it, up to `epoch`), and the older files no later checkpoint
/// needs. Files of later epochs are in neither list.
pub(crate) fn chain_at(
    dir: &Path,
    epoch: Epoch,
) -> Result<(Vec<FileName>, Vec<FileName>), StateError> {
    let io = |source| StateError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut by_operator: BTreeMap<u32, Vec<FileName>> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        if let Some(name) = entry.file_name().to_str().and_then(FileName::parse) {
            if name.epoch <= epoch {
                by_operator.entry(name.operator).or_default().push(name);
            }
        }
    }
    let (mut needed, mut superseded) = (Vec::new(), Vec::new());
    for mut files in by_operator.into_values() {
        files.sort_by_key(|name| (name.epoch, name.kind));
        let base = files
            .iter()
            .rposition(|name| name.kind == FileKind::Snapshot)
            .unwrap_or(0);
        superseded.extend(files.drain(..base));
        needed.extend(files);
    }
    Ok((needed, superseded))
}

/// Records being encoded for a checkpoint file, in memory until written; kept from file to
/// file so that its allocation is reused.
#[derive(Default)]
pub(crate) struct FileBuffer {
    bytes: Vec<u8>,
}

impl FileBuffer {
    /// Appends a put of `key` (`prefix` followed by the encoded `key`) to `value`.
    fn put<K: Serialize, S: Serialize>(
        &mut self,
        prefix: &[u8],
        key: &K,
        value: &S,
    ) -> Result<(), StateError> {
        self.bytes.push(PUT);
        self.encoded(|bytes| {
            bytes.extend_from_slice(prefix);
            encode(key, bytes)
        })?;
        self.encoded(|bytes| encode(value, bytes))
    }

    /// Appends a put of `key` (`prefix` followed by the encoded `key`) to an empty value.
    fn put_empty<K: Serialize>(&mut self, prefix: &[u8], key: &K) -> Result<(), StateError> {
        self.bytes.push(PUT);
        self.encoded(|bytes| {
            bytes.extend_from_slice(prefix);
            encode(key, bytes)
        })?;
        self.bytes.extend_from_slice(&0u32.to_le_bytes());
        Ok(())
    }

    /// Appends a put of an already stored key and value.
    fn put_stored(&mut self, key: &[u8], value: &[u8]) -> Result<(), StateError> {
        self.bytes.push(PUT);
        for field in [key, value] {
            self.encoded(|bytes| {
                bytes.extend_from_slice(field);
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Appends a delete of `key` (`prefix` followed by the encoded `key`).
    fn delete<K: Serialize>(&mut self, prefix: &[u8], key: &K) -> Result<(), StateError> {
        self.bytes.push(DELETE);
        self.encoded(|bytes| {
            bytes.extend_from_slice(prefix);
            encode(key, bytes)
        })
    }

    /// Appends a length-prefixed field that `write` encodes.
    fn encoded(
        &mut self,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), StateError>,
    ) -> Result<(), StateError> {
        let at = self.bytes.len();
        self.bytes.extend_from_slice(&[0; 4]);
        write(&mut self.bytes)?;
        let length = u32::try_from(self.bytes.len() - at - 4)
            .map_err(|_| StateError::Encode("a state entry of 4 GiB or more".into()))?;
        self.bytes[at..at + 4].copy_from_slice(&length.to_le_bytes());
        Ok(())
    }

    /// Discards the records appended so far.
    fn clear(&mut self) {
        self.bytes.clear();
    }
}

/// The encoder of records as [`records`] reads them back, for the fuzzers' round trips.
#[cfg(fuzzing)]
impl FileBuffer {
    /// Appends `record`.
    pub(crate) fn push_record(&mut self, record: &Record<'_>) -> Result<(), StateError> {
        match record.value {
            Some(value) => self.put_stored(record.key, value),
            None => {
                self.bytes.push(DELETE);
                self.encoded(|bytes| {
                    bytes.extend_from_slice(record.key);
                    Ok(())
                })
            }
        }
    }

    /// The contents of a file holding the records appended.
    pub(crate) fn file_bytes(&self) -> Vec<u8> {
        [&MAGIC[..], &self.bytes].concat()
    }
}

/// Encoded records a file writer buffers before writing them out.
const WRITE_CHUNK: usize = 4 << 20;

/// A checkpoint file being written: records are encoded into a buffer (reused from file to
/// file) and written out in chunks.
pub(crate) struct FileWriter<'b> {
    file: std::fs::File,
    path: PathBuf,
    size: u64,
    buffer: &'b mut FileBuffer,
}

impl<'b> FileWriter<'b> {
    /// Creates `dir/name` (replacing a file a killed run left there), encoding into `buffer`.
    pub(crate) fn create(
        dir: &Path,
        name: FileName,
        buffer: &'b mut FileBuffer,
    ) -> Result<Self, StateError> {
        let path = dir.join(name.render());
        let file = std::fs::File::create(&path).map_err(|source| StateError::Io {
            path: path.clone(),
            source,
        })?;
        buffer.clear();
        buffer.bytes.extend_from_slice(MAGIC);
        Ok(FileWriter {
            file,
            path,
            size: 0,
            buffer,
        })
    }

    /// Appends a put of `key` (`prefix` followed by the encoded `key`) to `value`.
    pub(crate) fn put<K: Serialize, S: Serialize>(
        &mut self,
        prefix: &[u8],
        key: &K,
        value: &S,
    ) -> Result<(), StateError> {
        self.buffer.put(prefix, key, value)?;
        self.write_if_full()
    }

    /// Appends a put of `key` (`prefix` followed by the encoded `key`) to an empty value.
    pub(crate) fn put_empty<K: Serialize>(
        &mut self,
        prefix: &[u8],
        key: &K,
    ) -> Result<(), StateError> {
        self.buffer.put_empty(prefix, key)?;
        self.write_if_full()
    }

    /// Appends a delete of `key` (`prefix` followed by the encoded `key`).
    pub(crate) fn delete<K: Serialize>(
        &mut self,
        prefix: &[u8],
        key: &K,
    ) -> Result<(), StateError> {
        self.buffer.delete(prefix, key)?;
        self.write_if_full()
    }

    fn write_if_full(&mut self) -> Result<(), StateError> {
        if self.buffer.bytes.len() >= WRITE_CHUNK {
            self.write_out()?;
        }
        Ok(())
    }

    fn write_out(&mut self) -> Result<(), StateError> {
        std::io::Write::write_all(&mut self.file, &self.buffer.bytes).map_err(|source| {
            StateError::Io {
                path: self.path.clone(),
                source,
            }
        })?;
        self.size += self.buffer.bytes.len() as u64;
        self.buffer.clear();
        Ok(())
    }

    /// Writes what is buffered; returns the file's size. The file is not synced: the
    /// checkpoint that first includes it syncs it.
    pub(crate) fn finish(mut self) -> Result<u64, StateError> {
        self.write_out()?;
        Ok(self.size)
    }
}

fn encode<T: Serialize>(value: &T, bytes: &mut Vec<u8>) -> Result<(), StateError> {
    postcard::to_io(value, bytes)
        .map(drop)
        .map_err(|error| StateError::Encode(error.to_string()))
}

/// A stored key and its value.
pub(crate) type Stored = (Box<[u8]>, Box<[u8]>);

/// Store keys and values, as a restore into RocksDB rebuilds them.
pub(crate) type Entries = HashMap<Box<[u8]>, Box<[u8]>>;

/// One record of a checkpoint file: a put (`value` is `Some`) or a delete of a stored key.
pub(crate) struct Record<'a> {
    pub(crate) key: &'a [u8],
    pub(crate) value: Option<&'a [u8]>,
}

/// The records of a checkpoint file's contents `bytes`, read from `path`; a malformed record
/// is an error naming the file and the offset, and ends the records.
pub(crate) fn records<'a>(
    path: &'a Path,
    bytes: &'a [u8],
) -> impl Iterator<Item = Result<Record<'a>, StateError>> + 'a {
    let malformed = move |offset: usize, what: &str| {
        StateError::Decode(format!(
            "{}: malformed checkpoint file at byte {offset}: {what}",
            path.display()
        ))
    };
    let mut rest = bytes.strip_prefix(MAGIC);
    let mut failed = rest
        .is_none()
        .then(|| malformed(0, "no state file marker at its start"));
    std::iter::from_fn(move || {
        if let Some(error) = failed.take() {
            return Some(Err(error));
        }
        let records = rest.as_mut()?;
        let (&tag, after_tag) = records.split_first()?;
        let offset = bytes.len() - records.len();
        let field = |from: &'a [u8]| -> Result<(&'a [u8], &'a [u8]), StateError> {
            let (length, from) = from
                .split_first_chunk::<4>()
                .ok_or_else(|| malformed(offset, "truncated length"))?;
            let length = u32::from_le_bytes(*length) as usize;
            if from.len() < length {
                return Err(malformed(offset, "truncated field"));
            }
            Ok(from.split_at(length))
        };
        let record = field(after_tag).and_then(|(key, after_key)| match tag {
            PUT => field(after_key).map(|(value, after)| {
                (
                    Record {
                        key,
                        value: Some(value),
                    },
                    after,
                )
            }),
            DELETE => Ok((Record { key, value: None }, after_key)),
            _ => Err(malformed(offset, &format!("unknown record tag {tag}"))),
        });
        Some(match record {
            Ok((record, after)) => {
                *records = after;
                Ok(record)
            }
            Err(error) => {
                rest = None;
                Err(error)
            }
        })
    })
}

/// A file's path (for errors) and contents.
type FileContents = (PathBuf, Vec<u8>);

/// The checkpoint files one operator restores from, and the key groups whose entries it
/// keeps. A chain is one old worker's files, in the order to replay them: its state is that
/// of every file replayed in turn, its timers those of its last file.
pub(crate) struct RestoredFiles {
    pub(crate) chains: Vec<Vec<FileContents>>,
    pub(crate) keep: Range<KeyGroup>,
}

impl RestoredFiles {
    /// No files yet; entries of the key groups `keep` are kept.
    pub(crate) fn new(keep: Range<KeyGroup>) -> Self {
        RestoredFiles {
            chains: Vec::new(),
            keep,
        }
    }

    /// The records to replay, in order, of the key groups kept: state records of every file,
    /// timer records of each chain's last file.
    pub(crate) fn records(&self) -> impl Iterator<Item = Result<Record<'_>, StateError>> {
        self.chains.iter().flat_map(move |chain| {
            chain
                .iter()
                .enumerate()
                .flat_map(move |(index, (path, bytes))| {
                    let last = index + 1 == chain.len();
                    records(path, bytes).filter(move |record| {
                        record.as_ref().map_or(true, |record| {
                            let timer =
                                keys::operator_of(record.key).is_some_and(|(_, timer)| timer);
                            (last || !timer)
                                && keys::key_group_of(record.key)
                                    .is_some_and(|group| self.keep.contains(&group))
                        })
                    })
                })
        })
    }
}

/// Adds the files `names` of `dir` (one old worker's) as a chain to the files each operator
/// restores from, their contents read (and checked) by `read`; an operator new to `restored`
/// keeps the key groups `keep`.
pub(crate) fn add_files<E: From<StateError>>(
    restored: &mut HashMap<u32, RestoredFiles>,
    dir: &Path,
    names: &[FileName],
    keep: &Range<KeyGroup>,
    read: impl Fn(&Path) -> Result<Vec<u8>, E>,
) -> Result<(), E> {
    let mut chains: BTreeMap<u32, Vec<FileName>> = BTreeMap::new();
    for name in names {
        chains.entry(name.operator).or_default().push(*name);
    }
    for (operator, mut chain) in chains {
        chain.sort_by_key(|name| (name.epoch, name.kind));
        let contents = chain
            .iter()
            .map(|name| {
                let path = dir.join(name.render());
                read(&path).map(|bytes| (path, bytes))
            })
            .collect::<Result<_, _>>()?;
        restored
            .entry(operator)
            .or_insert_with(|| RestoredFiles::new(keep.clone()))
            .chains
            .push(contents);
    }
    Ok(())
}

/// Replays restored files into stored keys and values.
pub(crate) fn replay_all<'r>(
    restored: impl IntoIterator<Item = &'r RestoredFiles>,
) -> Result<Entries, StateError> {
    let mut entries = Entries::default();
    for record in restored.into_iter().flat_map(RestoredFiles::records) {
        let record = record?;
        match record.value {
            Some(value) => entries.insert(record.key.into(), value.into()),
            None => entries.remove(record.key),
        };
    }
    Ok(entries)
}

/// Entries read from a RocksDB checkpoint (at `path`), as the files each operator restores
/// from: one snapshot per operator.
pub(crate) fn as_snapshots(
    path: &Path,
    entries: impl IntoIterator<Item = Stored>,
    keep: Range<KeyGroup>,
) -> Result<HashMap<u32, RestoredFiles>, StateError> {
    let mut buffers: HashMap<u32, FileBuffer> = HashMap::new();
    for (key, value) in entries {
        let (operator, _) = keys::operator_of(&key)
            .ok_or_else(|| StateError::Decode(format!("malformed stored key {key:02x?}")))?;
        let buffer = buffers.entry(operator).or_default();
        buffer.put_stored(&key, &value)?;
    }
    Ok(buffers
        .into_iter()
        .map(|(operator, buffer)| {
            let mut restored = RestoredFiles::new(keep.clone());
            let contents = [&MAGIC[..], &buffer.bytes].concat();
            restored.chains.push(vec![(path.to_owned(), contents)]);
            (operator, restored)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_other_files_are_not_ours() {
        let name = FileName {
            operator: 7,
            epoch: Epoch(42),
            kind: FileKind::Delta,
        };
        assert_eq!(name.render(), "op-0000000007-000000000042.delta");
        assert_eq!(FileName::parse(&name.render()), Some(name));
        for other in [
            "000012.sst",
            "op-7.snap",
            "op-x-1.delta",
            "op-1-2.tmp",
            "MANIFEST",
        ] {
            assert_eq!(FileName::parse(other), None, "{other}");
        }
    }

    fn write(
        dir: &Path,
        operator: u32,
        epoch: u64,
        kind: FileKind,
        puts: &[(u8, u8)],
        deletes: &[u8],
    ) {
        // Each operator's keys in the key group of its number.
        let prefix = keys::state_prefix(operator, operator);
        let name = FileName {
            operator,
            epoch: Epoch(epoch),
            kind,
        };
        let mut buffer = FileBuffer::default();
        let mut file = FileWriter::create(dir, name, &mut buffer).unwrap();
        for (key, value) in puts {
            file.put(&prefix, key, value).unwrap();
        }
        for key in deletes {
            file.delete(&prefix, key).unwrap();
        }
        file.finish().unwrap();
    }

    #[test]
    fn a_chain_is_the_newest_snapshot_and_the_deltas_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let (snap, delta) = (FileKind::Snapshot, FileKind::Delta);
        write(dir.path(), 1, 1, snap, &[(1, 10), (2, 20)], &[]);
        write(dir.path(), 1, 2, delta, &[(3, 30)], &[1]);
        write(dir.path(), 1, 3, snap, &[(2, 21), (3, 30)], &[]);
        write(dir.path(), 1, 4, delta, &[(2, 22)], &[3]);
        write(dir.path(), 1, 5, delta, &[(9, 90)], &[]);
        write(dir.path(), 2, 2, snap, &[(5, 50)], &[]);
        let (needed, superseded) = chain_at(dir.path(), Epoch(4)).unwrap();
        let epochs = |names: &[FileName]| {
            names
                .iter()
                .map(|name| (name.operator, name.epoch.0))
                .collect::<Vec<_>>()
        };
        assert_eq!(epochs(&needed), [(1, 3), (1, 4), (2, 2)]);
        assert_eq!(epochs(&superseded), [(1, 1), (1, 2)]);
        let replayed = |names: &[FileName], keep: Range<KeyGroup>| {
            let mut restored = HashMap::new();
            let read = |path: &Path| Ok::<_, StateError>(std::fs::read(path).unwrap());
            add_files(&mut restored, dir.path(), names, &keep, read).unwrap();
            replay_all(restored.values()).unwrap()
        };
        let decoded = |entries: Entries| {
            entries
                .iter()
                .map(|(key, value)| (key[8], value[0]))
                .collect::<BTreeMap<u8, u8>>()
        };
        let entries = replayed(&needed, 0..u32::MAX);
        assert_eq!(decoded(entries.clone()), BTreeMap::from([(2, 22), (5, 50)]));
        // Replaying the whole history gives the same entries.
        let all: Vec<FileName> = needed.iter().chain(&superseded).copied().collect();
        assert_eq!(replayed(&all, 0..u32::MAX), entries);
        // Only the key groups kept: operator 1's keys are in key group 1.
        assert_eq!(decoded(replayed(&needed, 1..2)), BTreeMap::from([(2, 22)]));
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it_and_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 1, 1, FileKind::Snapshot, &[(1, 10)], &[]);
        let path = dir.path().join("op-0000000001-000000000001.snap");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 1);
        let error = records(&path, &bytes)
            .find_map(Result::err)
            .expect("an error");
        let message = error.to_string();
        assert!(
            message.contains("op-0000000001-000000000001.snap"),
            "{message}"
        );
        assert!(message.contains("at byte 8: truncated field"), "{message}");
    }
}
