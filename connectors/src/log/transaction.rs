//! Transactions of the exactly-once log sink. The records of one epoch are staged in a file
//! beside the topic (`TOPIC/.transactions/`), made durable when the epoch ends (pre-commit),
//! and appended to the partitions once the checkpoint of that epoch is complete (commit).
//! Readers of the topic never see staged records.
//!
//! A commit can be cut short by a crash. Before appending, it records every partition's end
//! offset in a marker file; a repeated commit appends only the records past what the first
//! attempt wrote (this sink is the topic's only writer), so committing twice writes once.
//!
//! A restore may go back to an older checkpoint (a savepoint) than the newest one committed.
//! Every commit therefore appends the partitions' end offsets after it to `history`, a JSON
//! line per epoch after a first line for where the job's output began; restoring epoch `e`
//! cuts the topic back to the ends of the newest commit up to `e`, so that the restored run's
//! output follows exactly what the checkpoint had committed.
//!
//! Staged file: records `partition u32 | timestamp u64 | key length u32 | value length u32 |
//! key | value` (little-endian), then `record count u64 | CRC-32C u32` of all bytes before.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use weir_engine::time::Epoch;
use weir_engine::EventTime;

use super::record::RecordRef;
use super::topic::Producer;
use crate::durable::sync_dir;
use crate::error::ConnectorError;

const RECORD_HEADER: usize = 4 + 8 + 4 + 4;
const TRAILER: usize = 8 + 4;

/// A record as the sink staged it.
pub(crate) struct StagedRef<'a> {
    pub(crate) partition: u32,
    pub(crate) timestamp: EventTime,
    pub(crate) key: &'a [u8],
    pub(crate) value: &'a [u8],
}

/// A line of the commit history: the partitions' end offsets once `epoch` was committed
/// (`None`: before the job's first commit).
#[derive(Debug, Serialize, Deserialize)]
struct Committed {
    epoch: Option<Epoch>,
    ends: Vec<u64>,
}

/// The staging directory of one topic.
pub(crate) struct Transactions {
    dir: PathBuf,
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

impl Transactions {
    /// The staging directory of the topic in `topic_dir`, created if missing.
    pub(crate) fn open(topic_dir: &Path) -> Result<Self, ConnectorError> {
        let dir = topic_dir.join(".transactions");
        if !dir.exists() {
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            sync_dir(topic_dir)?;
        }
        Ok(Transactions { dir })
    }

    fn prepared_path(&self, epoch: Epoch) -> PathBuf {
        self.dir.join(format!("epoch-{epoch:020}.txn"))
    }

    /// Starts staging records.
    pub(crate) fn begin(&self) -> Result<OpenTransaction, ConnectorError> {
        let path = self.dir.join("current.pending");
        let file = File::create(&path).map_err(io(&path))?;
        Ok(OpenTransaction {
            path,
            file: BufWriter::with_capacity(1 << 20, file),
            crc: 0,
            count: 0,
        })
    }

    /// Makes `transaction` durable as the transaction of `epoch`.
    pub(crate) fn prepare(
        &self,
        mut transaction: OpenTransaction,
        epoch: Epoch,
    ) -> Result<PathBuf, ConnectorError> {
        let mut trailer = [0; TRAILER];
        trailer[..8].copy_from_slice(&transaction.count.to_le_bytes());
        trailer[8..].copy_from_slice(&transaction.crc.to_le_bytes());
        let path = transaction.path.clone();
        transaction.file.write_all(&trailer).map_err(io(&path))?;
        let file = transaction
            .file
            .into_inner()
            .map_err(|error| ConnectorError::io(&path, error.into_error()))?;
        file.sync_all().map_err(io(&path))?;
        weir_engine::crash_point("log_sink.prepared");
        let prepared = self.prepared_path(epoch);
        std::fs::rename(&path, &prepared).map_err(io(&prepared))?;
        sync_dir(&self.dir)?;
        Ok(prepared)
    }

    /// After a restart: deletes unprepared records and the transactions of epochs after
    /// `restored` (all of them for a fresh start), keeping the commit history; returns the
    /// prepared transactions up to `restored`, oldest first, which a commit must still apply.
    pub(crate) fn recover(
        &self,
        restored: Option<Epoch>,
    ) -> Result<Vec<(Epoch, PathBuf)>, ConnectorError> {
        let mut kept = Vec::new();
        let mut markers = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let path = entry.map_err(io(&self.dir))?.path();
            let epoch = path
                .file_stem()
                .and_then(|stem| stem.to_str())
                .and_then(|stem| stem.strip_prefix("epoch-"))
                .and_then(|digits| digits.parse::<Epoch>().ok());
            match (path.extension().and_then(|e| e.to_str()), epoch) {
                (Some("txn"), Some(epoch)) if restored.is_some_and(|r| epoch <= r) => {
                    kept.push((epoch, path));
                }
                (Some("committing"), _) => markers.push(path),
                // The commit history outlives every transaction.
                _ if path == self.history_path() => {}
                _ => std::fs::remove_file(&path).map_err(io(&path))?,
            }
        }
        for marker in markers {
            // A marker without its transaction: the commit finished but for this removal.
            if !marker.with_extension("txn").exists() {
                std::fs::remove_file(&marker).map_err(io(&marker))?;
            }
        }
        // The deletions stay deleted: a resurrected transaction of a later epoch would be
        // committed by a later restore of that epoch.
        sync_dir(&self.dir)?;
        kept.sort();
        Ok(kept)
    }

    fn history_path(&self) -> PathBuf {
        self.dir.join("history")
    }

    /// A fresh start: the job's output begins at the topic's current ends.
    pub(crate) fn begin_history(&self, producer: &Producer) -> Result<(), ConnectorError> {
        let path = self.history_path();
        let temporary = path.with_extension("tmp");
        let mut line = serde_json::to_vec(&Committed {
            epoch: None,
            ends: producer.next_offsets(),
        })
        .map_err(|error| ConnectorError::io(&path, error.into()))?;
        line.push(b'\n');
        let mut file = File::create(&temporary).map_err(io(&temporary))?;
        file.write_all(&line)
            .and_then(|()| file.sync_all())
            .map_err(io(&temporary))?;
        std::fs::rename(&temporary, &path).map_err(io(&path))?;
        sync_dir(&self.dir)
    }

    /// A restore of `restored`: cuts the topic back to the ends of the newest commit up to
    /// it, removing what later epochs (of the run the restore abandons) committed. A topic
    /// without a history (written before histories were kept) is left as it is.
    pub(crate) fn rewind(
        &self,
        restored: Epoch,
        producer: &mut Producer,
    ) -> Result<(), ConnectorError> {
        let path = self.history_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(ConnectorError::io(&path, error)),
        };
        let lines: Vec<&str> = text.lines().collect();
        let mut history = Vec::with_capacity(lines.len());
        for (number, line) in lines.iter().enumerate() {
            match serde_json::from_str::<Committed>(line) {
                Ok(committed) => history.push((committed, *line)),
                // The last line may be torn by a crash while it was appended.
                Err(_) if number + 1 == lines.len() => {}
                Err(error) => {
                    return Err(ConnectorError::BadLog {
                        path,
                        reason: format!("line {}: {error}", number + 1),
                    })
                }
            }
        }
        let kept = history.partition_point(|(committed, _)| {
            committed.epoch.is_none_or(|epoch| epoch <= restored)
        });
        let Some((target, _)) = kept.checked_sub(1).and_then(|last| history.get(last)) else {
            return Err(ConnectorError::BadLog {
                path,
                reason: format!("no commit up to epoch {restored}: cannot rewind the topic to it"),
            });
        };
        let ahead = producer
            .next_offsets()
            .iter()
            .zip(&target.ends)
            .any(|(end, target)| end > target);
        if ahead {
            producer.truncate(&target.ends)?;
        }
        if kept < history.len() {
            let mut rest = String::new();
            for (_, line) in &history[..kept] {
                rest.push_str(line);
                rest.push('\n');
            }
            let temporary = path.with_extension("tmp");
            let mut file = File::create(&temporary).map_err(io(&temporary))?;
            file.write_all(rest.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(io(&temporary))?;
            std::fs::rename(&temporary, &path).map_err(io(&path))?;
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Appends to the history that `epoch` is committed, with the partitions' ends after it.
    fn record_commit(&self, epoch: Epoch, producer: &Producer) -> Result<(), ConnectorError> {
        let path = self.history_path();
        let mut line = serde_json::to_vec(&Committed {
            epoch: Some(epoch),
            ends: producer.next_offsets(),
        })
        .map_err(|error| ConnectorError::io(&path, error.into()))?;
        line.push(b'\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        file.write_all(&line)
            .and_then(|()| file.sync_data())
            .map_err(io(&path))
    }

    /// Appends the prepared transaction of `epoch` to the topic, durably, records it in the
    /// history, then deletes it. Repeating a commit that a crash cut short appends only what
    /// the first attempt did not.
    pub(crate) fn commit(
        &self,
        epoch: Epoch,
        prepared: &Path,
        producer: &mut Producer,
    ) -> Result<(), ConnectorError> {
        let marker = prepared.with_extension("committing");
        let starts: Vec<u64> = if marker.exists() {
            let bytes = std::fs::read(&marker).map_err(io(&marker))?;
            serde_json::from_slice(&bytes).map_err(|error| ConnectorError::BadLog {
                path: marker.clone(),
                reason: error.to_string(),
            })?
        } else {
            let starts = producer.next_offsets();
            let temporary = marker.with_extension("tmp");
            let bytes = serde_json::to_vec(&starts).map_err(|error| ConnectorError::BadLog {
                path: marker.clone(),
                reason: error.to_string(),
            })?;
            let mut file = File::create(&temporary).map_err(io(&temporary))?;
            file.write_all(&bytes)
                .and_then(|()| file.sync_all())
                .map_err(io(&temporary))?;
            std::fs::rename(&temporary, &marker).map_err(io(&marker))?;
            sync_dir(&self.dir)?;
            weir_engine::crash_point("log_sink.commit_marked");
            starts
        };
        let mut already: Vec<u64> = producer
            .next_offsets()
            .iter()
            .zip(starts.iter().chain(std::iter::repeat(&0)))
            .map(|(end, start)| end.saturating_sub(*start))
            .collect();
        let bytes = std::fs::read(prepared).map_err(io(prepared))?;
        for_each_staged(prepared, &bytes, |record| {
            let skip = already
                .get_mut(record.partition as usize)
                .filter(|left| **left > 0);
            match skip {
                Some(left) => *left -= 1,
                None => {
                    producer.send_to(
                        record.partition,
                        &RecordRef {
                            key: record.key,
                            value: record.value,
                            timestamp: record.timestamp,
                            headers: &[],
                        },
                    )?;
                }
            }
            Ok(())
        })?;
        producer.sync()?;
        self.record_commit(epoch, producer)?;
        weir_engine::crash_point("log_sink.commit_appended");
        // The transaction first: a marker alone means "done", a transaction alone "to do".
        std::fs::remove_file(prepared).map_err(io(prepared))?;
        sync_dir(&self.dir)?;
        std::fs::remove_file(&marker).map_err(io(&marker))?;
        Ok(())
    }
}

impl OpenTransaction {
    /// Stages one record.
    pub(crate) fn append(&mut self, record: &StagedRef<'_>) -> Result<(), ConnectorError> {
        let mut header = [0; RECORD_HEADER];
        header[..4].copy_from_slice(&record.partition.to_le_bytes());
        header[4..12].copy_from_slice(&record.timestamp.to_le_bytes());
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

/// Checks a prepared transaction's trailer and calls `each` on its records in order.
fn for_each_staged(
    path: &Path,
    bytes: &[u8],
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
    let (count, crc) = (number(0..8, trailer), number(8..12, trailer) as u32);
    if crc32c::crc32c(body) != crc {
        return Err(damaged("checksum mismatch".into()));
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
            timestamp: number(4..12, header),
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
