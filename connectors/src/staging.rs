//! Staged transactions of the exactly-once sinks that write records to a partitioned log (the
//! embedded log's and Kafka's): the records of one epoch are appended to a file, which is
//! sealed (a trailer with the output's id, the record count and a checksum, then fsync) when
//! the epoch ends, and replayed into the log once the epoch's checkpoint is complete.
//!
//! File: records `partition u32 | timestamp u64 | key length u32 | value length u32 | key |
//! value` (little-endian), then `output id u64 | record count u64 | CRC-32C u32` of all bytes
//! before. A sink that stages several outputs into one directory (or finds one copied from
//! elsewhere) tells them apart by the id.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use weir_engine::EventTime;

use crate::error::ConnectorError;

const RECORD_HEADER: usize = 4 + 8 + 4 + 4;
/// Bytes of a staged file's trailer: an empty transaction is this long.
pub(crate) const TRAILER: usize = 8 + 8 + 4;

/// A record as the sink staged it.
pub(crate) struct StagedRef<'a> {
    pub(crate) partition: u32,
    pub(crate) timestamp: EventTime,
    pub(crate) key: &'a [u8],
    pub(crate) value: &'a [u8],
}

/// The transaction being written: records of the current epoch.
pub(crate) struct OpenTransaction {
    path: PathBuf,
    file: BufWriter<File>,
    crc: u32,
    count: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ConnectorError + '_ {
    move |source| ConnectorError::io(path, source)
}

impl OpenTransaction {
    /// Starts staging records in a new file at `path` (replacing one left there).
    pub(crate) fn create(path: PathBuf) -> Result<Self, ConnectorError> {
        let file = File::create(&path).map_err(io(&path))?;
        Ok(OpenTransaction {
            path,
            file: BufWriter::with_capacity(1 << 20, file),
            crc: 0,
            count: 0,
        })
    }

    /// Writes the trailer stamped with `output` and makes the file durable; returns its path
    /// (the caller renames it to say which epoch it holds).
    pub(crate) fn seal(mut self, output: u64) -> Result<PathBuf, ConnectorError> {
        let mut trailer = [0; TRAILER];
        trailer[..8].copy_from_slice(&output.to_le_bytes());
        trailer[8..16].copy_from_slice(&self.count.to_le_bytes());
        let crc = crc32c::crc32c_append(self.crc, &trailer[..16]);
        trailer[16..].copy_from_slice(&crc.to_le_bytes());
        self.file.write_all(&trailer).map_err(io(&self.path))?;
        let file = self
            .file
            .into_inner()
            .map_err(|error| ConnectorError::io(&self.path, error.into_error()))?;
        file.sync_all().map_err(io(&self.path))?;
        Ok(self.path)
    }

    /// Stages one record.
    pub(crate) fn append(&mut self, record: &StagedRef<'_>) -> Result<(), ConnectorError> {
        let mut header = [0; RECORD_HEADER];
        header[..4].copy_from_slice(&record.partition.to_le_bytes());
        header[4..12].copy_from_slice(&record.timestamp.millis().to_le_bytes());
        header[12..16].copy_from_slice(&(record.key.len() as u32).to_le_bytes());
        header[16..20].copy_from_slice(&(record.value.len() as u32).to_le_bytes());
        for part in [&header[..], record.key, record.value] {
            self.crc = crc32c::crc32c_append(self.crc, part);
            self.file.write_all(part).map_err(io(&self.path))?;
        }
        self.count += 1;
        Ok(())
    }

    /// Discards the staged records.
    pub(crate) fn discard(self) {
        drop(self.file);
        // Nothing to do if it is gone already; recovery removes leftovers too.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Checks a sealed transaction's trailer (its bytes read from `path`) and calls `each` on its
/// records in order.
pub(crate) fn for_each_staged(
    path: &Path,
    bytes: &[u8],
    output: u64,
    mut each: impl FnMut(StagedRef<'_>) -> Result<(), ConnectorError>,
) -> Result<(), ConnectorError> {
    let damaged = |reason: String| ConnectorError::BadLog {
        path: path.to_owned(),
        reason: format!("damaged transaction: {reason}"),
    };
    let body_len = bytes
        .len()
        .checked_sub(TRAILER)
        .ok_or_else(|| damaged(format!("{} bytes, shorter than its trailer", bytes.len())))?;
    let (body, trailer) = bytes.split_at(body_len);
    let number = |range: std::ops::Range<usize>, of: &[u8]| -> u64 {
        of[range]
            .iter()
            .rev()
            .fold(0, |value, byte| (value << 8) | u64::from(*byte))
    };
    let (staged_by, count) = (number(0..8, trailer), number(8..16, trailer));
    let crc = number(16..20, trailer) as u32;
    if crc32c::crc32c(&bytes[..bytes.len() - 4]) != crc {
        return Err(damaged("checksum mismatch".into()));
    }
    if staged_by != output {
        return Err(damaged(format!(
            "staged by output {staged_by:016x}, not by this topic's output {output:016x}"
        )));
    }
    let mut at = 0;
    let mut seen = 0;
    while at < body.len() {
        let header = body
            .get(at..at + RECORD_HEADER)
            .ok_or_else(|| damaged(format!("record header cut at byte {at}")))?;
        let key_len = number(12..16, header) as usize;
        let value_len = number(16..20, header) as usize;
        let key_start = at + RECORD_HEADER;
        let value_start = key_start + key_len;
        let end = value_start + value_len;
        let (key, value) = match (body.get(key_start..value_start), body.get(value_start..end)) {
            (Some(key), Some(value)) => (key, value),
            _ => return Err(damaged(format!("record cut at byte {at}"))),
        };
        each(StagedRef {
            partition: number(0..4, header) as u32,
            timestamp: EventTime(number(4..12, header)),
            key,
            value,
        })?;
        at = end;
        seen += 1;
    }
    if seen != count {
        return Err(damaged(format!("{seen} records, the trailer says {count}")));
    }
    Ok(())
}

/// A new output's id: random enough that two outputs (two runs started fresh) never share it.
pub(crate) fn new_output_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// Fuzzer entry: `data` as a sealed transaction file (its trailer's checksum recomputed when
/// `fix_checksum`, so that the records behind it are reached): it is refused naming the
/// damage, or its records staged again make the same bytes.
#[cfg(fuzzing)]
pub(crate) fn fuzz_sealed(data: &[u8], fix_checksum: bool) {
    let mut bytes = data.to_vec();
    if fix_checksum && bytes.len() >= TRAILER {
        let end = bytes.len() - 4;
        let crc = crc32c::crc32c(&bytes[..end]);
        bytes[end..].copy_from_slice(&crc.to_le_bytes());
    }
    let scratch = weir_engine::fuzzing::scratch_dir();
    let output = bytes
        .len()
        .checked_sub(TRAILER)
        .and_then(|at| bytes.get(at..at + 8))
        .map_or(0, |id| {
            u64::from_le_bytes(id.try_into().expect("eight bytes"))
        });
    let path = scratch.path().join("epoch-00000000000000000001.txn");
    let mut staged =
        OpenTransaction::create(scratch.path().join("current.pending")).expect("a scratch file");
    match for_each_staged(&path, &bytes, output, |record| staged.append(&record)) {
        Ok(()) => {
            let sealed = staged.seal(output).expect("a scratch transaction");
            let again = std::fs::read(sealed).expect("the sealed transaction");
            assert_eq!(again, bytes, "a transaction changes when staged again");
        }
        Err(error) => {
            assert!(
                error.to_string().contains("epoch-00000000000000000001.txn"),
                "{error}"
            );
            staged.discard();
        }
    }
}
