//! Transactions of the exactly-once log sink. The records of one epoch are staged in a file
//! beside the topic (`TOPIC/.transactions/`), made durable when the epoch ends (pre-commit),
//! and appended to the partitions once the checkpoint of that epoch is complete (commit).
//! Readers of the topic never see staged records.
//!
//! Every epoch stages a transaction, an empty one too, so that a restore knows which must be
//! there: those of the epochs after the last committed one up to the restored checkpoint. One
//! that is missing (deleted, lost with a disk) fails the restore naming it, where committing
//! the others would silently leave its records out. Each transaction carries the id of the
//! output that staged it (from the first line of the history), so that one copied from
//! another output is refused.
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
//! The history keeps a line per committed epoch; once it grows past [`HISTORY_LINES`] it is
//! rewritten without the lines of epochs that appended nothing (a rewind to such an epoch
//! finds the same ends on the line before it).
//!
//! Staged files are those of [`staging`](crate::staging).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use weir_engine::checkpoint::{epoch_name, FINAL_EPOCH};
use weir_engine::time::Epoch;

use super::record::RecordRef;
use super::topic::Producer;
use crate::durable::{sync_dir, write_atomically};
use crate::error::ConnectorError;
use crate::staging::{for_each_staged, new_output_id, TRAILER};
pub(crate) use crate::staging::{OpenTransaction, StagedRef};

/// History lines past which the history is compacted.
const HISTORY_LINES: usize = 1024;

/// A line of the commit history: the partitions' end offsets once `epoch` was committed
/// (`None`: before the job's first commit, a line that also holds the output's id).
#[derive(Debug, Serialize, Deserialize)]
struct Committed {
    epoch: Option<Epoch>,
    ends: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    output: Option<u64>,
}

/// The staging directory of one topic.
pub(crate) struct Transactions {
    dir: PathBuf,
    /// The output's id, stamped into every transaction (known once the history is read).
    output: u64,
    /// Lines in the history file.
    history_lines: usize,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ConnectorError + '_ {
    move |source| ConnectorError::io(path, source)
}

/// The end offset after the newest commit, in the partition in `partition_dir`, of the
/// exactly-once sink writing its topic; `None` when no such sink has written it.
pub(crate) fn committed_end(partition_dir: &Path) -> Result<Option<u64>, ConnectorError> {
    let partition = partition_dir.file_name().and_then(|name| {
        name.to_str()?
            .strip_prefix("partition-")?
            .parse::<usize>()
            .ok()
    });
    let (Some(partition), Some(topic_dir)) = (partition, partition_dir.parent()) else {
        return Ok(None);
    };
    let transactions = Transactions {
        dir: topic_dir.join(".transactions"),
        output: 0,
        history_lines: 0,
    };
    if !transactions.history_path().exists() {
        return Ok(None);
    }
    let (_, history) = transactions.read_history()?;
    Ok(history
        .last()
        .and_then(|committed| committed.ends.get(partition).copied()))
}

impl Transactions {
    /// The staging directory of the topic in `topic_dir`, created if missing.
    pub(crate) fn open(topic_dir: &Path) -> Result<Self, ConnectorError> {
        let dir = topic_dir.join(".transactions");
        if !dir.exists() {
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            sync_dir(topic_dir)?;
        }
        Ok(Transactions {
            dir,
            output: 0,
            history_lines: 0,
        })
    }

    fn prepared_path(&self, epoch: Epoch) -> PathBuf {
        self.dir.join(format!("epoch-{epoch:020}.txn"))
    }

    /// Starts staging records.
    pub(crate) fn begin(&self) -> Result<OpenTransaction, ConnectorError> {
        OpenTransaction::create(self.dir.join("current.pending"))
    }

    /// Makes `transaction` durable as the transaction of `epoch`.
    pub(crate) fn prepare(
        &self,
        transaction: OpenTransaction,
        epoch: Epoch,
    ) -> Result<PathBuf, ConnectorError> {
        let path = transaction.seal(self.output)?;
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

    /// A fresh start: the job's output, under a new id, begins at the topic's current ends.
    pub(crate) fn begin_history(&mut self, producer: &Producer) -> Result<(), ConnectorError> {
        self.output = new_output_id();
        let first = Committed {
            epoch: None,
            ends: producer.next_offsets(),
            output: Some(self.output),
        };
        self.write_history(&[first])
    }

    /// Replaces the history by `lines`, atomically.
    fn write_history(&mut self, lines: &[Committed]) -> Result<(), ConnectorError> {
        let path = self.history_path();
        write_atomically(&path, &encode_lines(lines, &path)?)?;
        self.history_lines = lines.len();
        Ok(())
    }

    /// The output's id and the history's lines; the last line may be torn by a crash while it
    /// was appended and is then left out.
    fn read_history(&self) -> Result<(u64, Vec<Committed>), ConnectorError> {
        let path = self.history_path();
        let text = std::fs::read_to_string(&path).map_err(|error| ConnectorError::BadLog {
            path: path.clone(),
            reason: format!(
                "the output's commit history cannot be read ({error}): the restored \
                 checkpoint wrote this topic, so its history must be there"
            ),
        })?;
        let lines: Vec<&str> = text.lines().collect();
        let mut history = Vec::with_capacity(lines.len());
        for (number, line) in lines.iter().enumerate() {
            match serde_json::from_str::<Committed>(line) {
                Ok(committed) => history.push(committed),
                Err(_) if number + 1 == lines.len() && number > 0 => {}
                Err(error) => {
                    return Err(ConnectorError::BadLog {
                        path,
                        reason: format!("line {}: {error}", number + 1),
                    })
                }
            }
        }
        match history.first() {
            Some(Committed {
                epoch: None,
                output: Some(output),
                ..
            }) => Ok((*output, history)),
            _ => Err(ConnectorError::BadLog {
                path,
                reason: "the first line is not the start of an output's history".into(),
            }),
        }
    }

    /// A restore of `restored`: cuts the topic back to the ends of the newest commit up to
    /// it, removing what later epochs (of the run the restore abandons) committed. Returns
    /// the last epoch committed after it (`None`: none yet).
    pub(crate) fn rewind(
        &mut self,
        restored: Epoch,
        producer: &mut Producer,
    ) -> Result<Option<Epoch>, ConnectorError> {
        let (output, mut history) = self.read_history()?;
        self.output = output;
        self.history_lines = history.len();
        let kept = history
            .partition_point(|committed| committed.epoch.is_none_or(|epoch| epoch <= restored));
        let Some(target) = kept.checked_sub(1).and_then(|last| history.get(last)) else {
            return Err(ConnectorError::BadLog {
                path: self.history_path(),
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
        if kept == history.len() {
            return Ok(target.epoch);
        }
        // Epochs after `restored` were committed, so every one up to it was: the history ends
        // at `restored` (its ends are those of the newest line before it).
        let ends = target.ends.clone();
        history.truncate(kept);
        if history.last().and_then(|last| last.epoch) != Some(restored) {
            history.push(Committed {
                epoch: Some(restored),
                ends,
                output: None,
            });
        }
        self.write_history(&history)?;
        Ok(Some(restored))
    }

    /// Checks that the transactions left after a restore of `restored` (from
    /// [`recover`](Self::recover)) are the ones its commits still need: one per epoch from
    /// the one after `committed` up to `restored` (for the final checkpoint of a bounded run:
    /// up to the last numbered one staged, then the final epoch's own), and none of an epoch
    /// committed already unless its commit was cut short.
    pub(crate) fn check_staged(
        &self,
        committed: Option<Epoch>,
        restored: Epoch,
        staged: &[(Epoch, PathBuf)],
    ) -> Result<(), ConnectorError> {
        let is_committed = |epoch: Epoch| committed.is_some_and(|committed| epoch <= committed);
        let mut expected = committed.map_or(Epoch(0), Epoch::next);
        for (epoch, path) in staged {
            if is_committed(*epoch) {
                // Left by a commit cut short after its history line: it has a marker, or it
                // is empty (an empty one needs none).
                let empty = std::fs::metadata(path).is_ok_and(|file| file.len() == TRAILER as u64);
                if !empty && !path.with_extension("committing").exists() {
                    return Err(ConnectorError::BadLog {
                        path: path.clone(),
                        reason: format!(
                            "a staged transaction of epoch {epoch}, which the output's history \
                             already commits: it does not belong here"
                        ),
                    });
                }
            } else if *epoch == expected && *epoch != FINAL_EPOCH {
                expected = expected.next();
            }
        }
        // A staged numbered epoch past `expected` means the one at `expected` is missing.
        let gap = staged
            .iter()
            .any(|(epoch, _)| *epoch > expected && *epoch != FINAL_EPOCH && !is_committed(*epoch));
        let missing = if restored == FINAL_EPOCH {
            let final_staged = staged.iter().any(|(epoch, _)| *epoch == FINAL_EPOCH);
            if gap || is_committed(FINAL_EPOCH) || final_staged {
                gap.then_some(expected)
            } else {
                Some(FINAL_EPOCH)
            }
        } else {
            (gap || expected <= restored).then_some(expected)
        };
        let Some(missing) = missing else {
            return Ok(());
        };
        Err(ConnectorError::BadLog {
            path: self.prepared_path(missing),
            reason: format!(
                "the staged transaction of epoch {} is missing: checkpoint {} is complete, so \
                 every epoch from {} on was staged, and the output's history commits none of \
                 them",
                epoch_name(missing),
                epoch_name(restored),
                committed.map_or(Epoch(0), Epoch::next),
            ),
        })
    }

    /// Appends to the history that `epoch` is committed, with the partitions' ends after it;
    /// compacts the history when it has grown long.
    fn record_commit(&mut self, epoch: Epoch, producer: &Producer) -> Result<(), ConnectorError> {
        if self.history_lines >= HISTORY_LINES {
            self.compact_history()?;
        }
        let path = self.history_path();
        let line = Committed {
            epoch: Some(epoch),
            ends: producer.next_offsets(),
            output: None,
        };
        let line = encode_lines(&[line], &path)?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        file.write_all(&line)
            .and_then(|()| file.sync_data())
            .map_err(io(&path))?;
        self.history_lines += 1;
        Ok(())
    }

    /// Rewrites the history without the lines whose ends equal those of the line before
    /// (epochs that appended nothing), keeping the first and the last.
    fn compact_history(&mut self) -> Result<(), ConnectorError> {
        let (_, history) = self.read_history()?;
        let last = history.len().saturating_sub(1);
        let mut kept: Vec<Committed> = Vec::with_capacity(history.len());
        for (number, line) in history.into_iter().enumerate() {
            let repeats = kept.last().is_some_and(|before| before.ends == line.ends);
            if !repeats || number == last {
                kept.push(line);
            }
        }
        self.write_history(&kept)
    }

    /// Appends the prepared transaction of `epoch` to the topic, durably, records it in the
    /// history, then deletes it. Repeating a commit that a crash cut short appends only what
    /// the first attempt did not.
    pub(crate) fn commit(
        &mut self,
        epoch: Epoch,
        prepared: &Path,
        producer: &mut Producer,
    ) -> Result<(), ConnectorError> {
        let bytes = std::fs::read(prepared).map_err(io(prepared))?;
        if bytes.len() == TRAILER {
            // An empty transaction appends nothing, so it needs no marker: checked, recorded
            // and deleted (a repeated commit records it again, which changes nothing).
            for_each_staged(prepared, &bytes, self.output, |_| Ok(()))?;
            self.record_commit(epoch, producer)?;
            std::fs::remove_file(prepared).map_err(io(prepared))?;
            return sync_dir(&self.dir);
        }
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
        for_each_staged(prepared, &bytes, self.output, |record| {
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

/// History `lines` as JSON lines, for the history file at `path`.
fn encode_lines(lines: &[Committed], path: &Path) -> Result<Vec<u8>, ConnectorError> {
    let mut text = Vec::new();
    for line in lines {
        serde_json::to_writer(&mut text, line)
            .map_err(|error| ConnectorError::io(path, error.into()))?;
        text.push(b'\n');
    }
    Ok(text)
}

/// Fuzzer entry: `data` as an output's commit history: it is refused naming the file and
/// line, or it is read, and written back it reads the same.
#[cfg(fuzzing)]
pub(crate) fn fuzz_history(data: &[u8]) {
    let scratch = weir_engine::fuzzing::scratch_dir();
    let mut transactions = Transactions::open(scratch.path()).expect("a scratch staging dir");
    std::fs::write(transactions.history_path(), data).expect("a scratch history");
    match transactions.read_history() {
        Ok((output, lines)) => {
            transactions
                .write_history(&lines)
                .expect("a scratch history");
            let (output_again, lines_again) = transactions
                .read_history()
                .expect("a history written back reads");
            assert_eq!(output, output_again);
            assert_eq!(format!("{lines:?}"), format!("{lines_again:?}"));
        }
        Err(error) => assert!(error.to_string().contains("history"), "{error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{LogConfig, Topic, ValueFormat};
    use weir_engine::EventTime;

    /// Stages and commits epochs `0..epochs`, each with one record when `with_record` says so.
    fn commit_epochs(
        transactions: &mut Transactions,
        producer: &mut Producer,
        epochs: std::ops::Range<u64>,
        with_record: impl Fn(u64) -> bool,
    ) {
        for number in epochs {
            let epoch = Epoch(number);
            let mut open = transactions.begin().unwrap();
            if with_record(number) {
                let value = epoch.to_string();
                open.append(&StagedRef {
                    partition: 0,
                    timestamp: EventTime(number),
                    key: b"",
                    value: value.as_bytes(),
                })
                .unwrap();
            }
            let prepared = transactions.prepare(open, epoch).unwrap();
            transactions.commit(epoch, &prepared, producer).unwrap();
        }
    }

    /// A long run's history is compacted, and a rewind into the epochs whose lines were
    /// dropped still finds the ends they committed.
    #[test]
    fn a_compacted_history_rewinds_to_the_ends_of_any_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let topic = Topic::create(dir.path(), 1, ValueFormat::Json, LogConfig::default()).unwrap();
        let mut producer = topic.producer().unwrap();
        let mut transactions = Transactions::open(dir.path()).unwrap();
        transactions.begin_history(&producer).unwrap();
        commit_epochs(&mut transactions, &mut producer, 0..1100, |epoch| {
            epoch % 100 == 0
        });
        assert_eq!(producer.next_offsets(), [11]);
        let lines = std::fs::read_to_string(transactions.history_path())
            .unwrap()
            .lines()
            .count();
        assert!(lines < 1024, "the history was not compacted: {lines} lines");

        // Epoch 450's line was dropped: its ends are those of epoch 400, five records.
        let committed = transactions.rewind(Epoch(450), &mut producer).unwrap();
        assert_eq!(committed, Some(Epoch(450)));
        assert_eq!(producer.next_offsets(), [5]);
        transactions
            .check_staged(committed, Epoch(450), &[])
            .unwrap();
    }

    /// A restore needs the transaction of every epoch after the last commit up to the
    /// checkpoint: one missing fails it, naming the epoch.
    #[test]
    fn a_missing_transaction_fails_the_restore_naming_its_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let transactions = Transactions::open(dir.path()).unwrap();
        // Epochs by number (`FINAL_EPOCH.0` for the final one).
        let staged = |epochs: &[u64]| -> Vec<(Epoch, PathBuf)> {
            epochs
                .iter()
                .map(|&number| (Epoch(number), transactions.prepared_path(Epoch(number))))
                .collect()
        };
        let fails_missing = |restored: Epoch, left: &[u64], missing: &str| {
            let error = transactions
                .check_staged(Some(Epoch(3)), restored, &staged(left))
                .unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains(&format!("epoch {missing} is missing")),
                "{left:?}: {error}"
            );
        };
        transactions
            .check_staged(Some(Epoch(3)), Epoch(6), &staged(&[4, 5, 6]))
            .unwrap();
        for (left, missing) in [(&[4, 6][..], "5"), (&[4, 5][..], "6"), (&[5, 6][..], "4")] {
            fails_missing(Epoch(6), left, missing);
        }
        // The final checkpoint's transaction follows the last numbered one, which may be any:
        // a bounded run killed before committing it restores the final checkpoint.
        for left in [&[FINAL_EPOCH.0][..], &[4, 5, FINAL_EPOCH.0]] {
            transactions
                .check_staged(Some(Epoch(3)), FINAL_EPOCH, &staged(left))
                .unwrap();
        }
        for (left, missing) in [(&[5, FINAL_EPOCH.0][..], "4"), (&[4, 5][..], "final")] {
            fails_missing(FINAL_EPOCH, left, missing);
        }
        // Once the final transaction is committed, nothing is left to check.
        transactions
            .check_staged(Some(FINAL_EPOCH), FINAL_EPOCH, &[])
            .unwrap();
    }
}
