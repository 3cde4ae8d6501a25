//! The output of a file sink in a job with checkpoints: a directory with one part file per
//! checkpoint epoch with records, `part-EPOCH.EXT` (`part-final.EXT` for the records after a
//! bounded run's last numbered epoch), published by its commit.
//!
//! Records of the running epoch go to a hidden partial file. When the epoch ends (pre-commit)
//! the file is completed, synced and renamed to a hidden pending name, and the sink's
//! [ledger](super::part_ledger) records the epoch with the part's length and checksum; once
//! the checkpoint of the epoch is complete (commit) the pending file is renamed to its part
//! name. Renames are atomic, so a reader listing the directory sees whole parts of committed
//! epochs only, and committing again after a crash finds the part already in place.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use weir_engine::checkpoint::{epoch_name, FINAL_EPOCH};
use weir_engine::time::Epoch;

use super::part_ledger::{Ledger, StagedPart, LEDGER_FILE};
use super::staged_file::StagedFile;
use crate::durable::create_dir_all;
use crate::error::ConnectorError;

const PART_PREFIX: &str = "part-";
const PENDING_PREFIX: &str = ".part-";
const PENDING_SUFFIX: &str = ".pending";
/// The final epoch's part, `part-final.EXT`, sorts after every numbered one.
const FINAL_NAME: &str = "final";

/// The part files of one sink's output directory.
#[derive(Debug)]
pub(crate) struct PartFiles {
    dir: PathBuf,
    /// The parts' file name extension with its dot (`.jsonl`), or empty.
    extension: String,
    /// What the ledger on disk records, with the commits since its last write.
    ledger: Ledger,
}

/// What a file name in the output directory is.
enum Entry {
    Part(Epoch),
    Pending(Epoch),
    Partial,
    Other,
}

impl PartFiles {
    /// Opens (creating) the output directory `dir` after a crash or for a fresh start.
    ///
    /// A restore of `restored` (the epoch of the checkpoint the job restored) checks that
    /// every part the ledger records up to it is there and intact, publishes the pending ones,
    /// and deletes later parts, pending or not, which the restored job writes again. A fresh
    /// start (`None`) deletes every part. Files that are not parts are left alone. With
    /// `removed_when_empty`, a directory missing at the restore of a bounded run's final
    /// checkpoint was removed by its close for holding no part.
    pub(crate) fn recover(
        dir: &Path,
        extension: &str,
        restored: Option<Epoch>,
        removed_when_empty: bool,
    ) -> Result<Self, ConnectorError> {
        Self::open(dir, extension, restored, restored, removed_when_empty)
    }

    /// Opens (creating) the output directory `dir` of a sink that first writes after it has
    /// staged the epochs through `staged_through` elsewhere (a partition of a
    /// [`PartitionedFileSink`](super::PartitionedFileSink) that appears mid-run): the ledger
    /// records that none of those epochs has a part here, so a restore of one of them finds
    /// the ledger complete. Parts left from an earlier run are deleted.
    pub(crate) fn start_after(
        dir: &Path,
        extension: &str,
        staged_through: Option<Epoch>,
    ) -> Result<Self, ConnectorError> {
        Self::open(dir, extension, None, staged_through, false)
    }

    fn open(
        dir: &Path,
        extension: &str,
        restored: Option<Epoch>,
        staged_through: Option<Epoch>,
        removed_when_empty: bool,
    ) -> Result<Self, ConnectorError> {
        let closed_empty = removed_when_empty && restored == Some(FINAL_EPOCH) && !dir.exists();
        create_dir_all(dir)?;
        let mut parts = PartFiles {
            dir: dir.to_owned(),
            extension: if extension.is_empty() {
                String::new()
            } else {
                format!(".{extension}")
            },
            ledger: Ledger::default(),
        };
        let needed = match restored {
            Some(restored) if !closed_empty => {
                let ledger = Ledger::read(dir, restored)?;
                let needed = ledger.needed_by(dir, restored)?.to_vec();
                for part in &needed {
                    parts.check(part, restored)?;
                }
                needed
            }
            _ => Vec::new(),
        };
        let kept = |epoch: Epoch| restored.is_some_and(|restored| epoch <= restored);
        for name in parts.names()? {
            let path = dir.join(&name);
            match parts.classify(&name) {
                Entry::Pending(epoch)
                    if kept(epoch) && !needed.iter().any(|part| part.epoch == epoch) =>
                {
                    return Err(ConnectorError::BadOutput {
                        path,
                        reason: format!(
                            "a pending part of epoch {} that the sink's ledger {} does not \
                             list: it does not belong to this output",
                            epoch_name(epoch),
                            dir.join(LEDGER_FILE).display()
                        ),
                    });
                }
                Entry::Part(epoch) | Entry::Pending(epoch) if !kept(epoch) => {
                    std::fs::remove_file(&path).map_err(|error| ConnectorError::io(&path, error))?
                }
                Entry::Partial => {
                    std::fs::remove_file(&path).map_err(|error| ConnectorError::io(&path, error))?
                }
                // Kept parts, and pending ones the ledger lists: the commit below publishes
                // those.
                _ => {}
            }
        }
        parts.ledger = Ledger {
            committed: None,
            staged_through,
            parts: needed,
        };
        if let Some(restored) = restored {
            parts.commit(restored)?;
        }
        // Records the restore, and makes the deletions durable.
        parts.ledger.write(dir)?;
        Ok(parts)
    }

    /// Checks that the part a restore of `restored` needs is there, pending or published by
    /// a commit cut short, as it was staged.
    fn check(&self, part: &StagedPart, restored: Epoch) -> Result<(), ConnectorError> {
        let ledger = self.dir.join(LEDGER_FILE);
        let pending = self.pending_path(part.epoch);
        if pending.exists() {
            return part.verify(&pending, &ledger);
        }
        let published = self.part_path(part.epoch);
        if published.exists() {
            return part.verify(&published, &ledger);
        }
        Err(ConnectorError::BadOutput {
            path: pending,
            reason: format!(
                "the staged part of epoch {} is missing: the sink's ledger {} lists it, \
                 checkpoint {} is complete, and the part was never published",
                epoch_name(part.epoch),
                ledger.display(),
                epoch_name(restored)
            ),
        })
    }

    /// The file that records of the running epoch are written to.
    pub(crate) fn in_progress(&self) -> StagedFile {
        StagedFile::new(
            self.dir
                .join(format!("{PART_PREFIX}in-progress{}", self.extension)),
        )
    }

    /// Makes the completed `file`, if the epoch wrote one, durable as the pending part of
    /// `epoch`, and records the epoch as staged.
    pub(crate) fn pre_commit(
        &mut self,
        file: Option<(StagedFile, BufWriter<File>)>,
        epoch: Epoch,
    ) -> Result<(), ConnectorError> {
        if let Some((file, writer)) = file {
            let pending = self.pending_path(epoch);
            file.seal_as(writer, &pending)?;
            weir_engine::crash_point("file_sink.prepared");
            self.ledger
                .parts
                .push(StagedPart::measure(epoch, &pending)?);
        }
        self.ledger.staged_through = Some(epoch);
        // Syncs the directory too, which makes the pending part's name durable.
        self.ledger.write(&self.dir)
    }

    /// Publishes every pending part up to `epoch`.
    pub(crate) fn commit(&mut self, epoch: Epoch) -> Result<(), ConnectorError> {
        self.ledger.committed = Some(epoch);
        let due = self
            .ledger
            .parts
            .partition_point(|part| part.epoch <= epoch);
        if due == 0 {
            // Nothing published: the ledger on disk may lag, its parts are all later.
            return Ok(());
        }
        for part in &self.ledger.parts[..due] {
            let (from, to) = (self.pending_path(part.epoch), self.part_path(part.epoch));
            match std::fs::rename(&from, &to) {
                // Committed by an attempt that crashed before it was recorded.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound && to.exists() => {}
                result => result.map_err(|error| ConnectorError::io(&from, error))?,
            }
            weir_engine::crash_point("file_sink.published");
        }
        self.ledger.parts.drain(..due);
        // Records the commit (and syncs the renames), so that a reader taking the published
        // parts away does not fail a later restore for missing them.
        self.ledger.write(&self.dir)
    }

    /// Removes the directory if it holds no part (as for a dead-letter output of a run
    /// without bad input), with the sink's ledger.
    pub(crate) fn remove_if_empty(&self) -> Result<(), ConnectorError> {
        if self.names()?.iter().all(|name| name == LEDGER_FILE) {
            let ledger = self.dir.join(LEDGER_FILE);
            std::fs::remove_file(&ledger).map_err(|error| ConnectorError::io(&ledger, error))?;
            std::fs::remove_dir(&self.dir).map_err(|error| ConnectorError::io(&self.dir, error))?;
        }
        Ok(())
    }

    fn names(&self) -> Result<Vec<String>, ConnectorError> {
        let io = |error| ConnectorError::io(&self.dir, error);
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io)? {
            names.push(
                entry
                    .map_err(io)?
                    .file_name()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        Ok(names)
    }

    fn part_path(&self, epoch: Epoch) -> PathBuf {
        self.dir.join(format!(
            "{PART_PREFIX}{}{}",
            epoch_in_name(epoch),
            self.extension
        ))
    }

    fn pending_path(&self, epoch: Epoch) -> PathBuf {
        self.dir.join(format!(
            "{PENDING_PREFIX}{}{}{PENDING_SUFFIX}",
            epoch_in_name(epoch),
            self.extension
        ))
    }

    fn classify(&self, name: &str) -> Entry {
        // Epochs are written with 20 digits (or `final`): a name with other text is not a part.
        let epoch = |digits: Option<&str>| match digits {
            Some(FINAL_NAME) => Some(FINAL_EPOCH),
            digits => digits
                .filter(|digits| digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|digits| digits.parse::<Epoch>().ok()),
        };
        if let Some(epoch) = epoch(
            name.strip_prefix(PENDING_PREFIX)
                .and_then(|rest| rest.strip_suffix(PENDING_SUFFIX))
                .and_then(|rest| rest.strip_suffix(self.extension.as_str())),
        ) {
            return Entry::Pending(epoch);
        }
        if name.starts_with(PENDING_PREFIX) && name.ends_with(".partial") {
            return Entry::Partial;
        }
        match epoch(
            name.strip_prefix(PART_PREFIX)
                .and_then(|rest| rest.strip_suffix(self.extension.as_str())),
        ) {
            Some(epoch) => Entry::Part(epoch),
            None => Entry::Other,
        }
    }
}

/// Fuzzer entry: `ledger` as the sink's ledger and `part` as the part of epoch 1 (pending
/// when `flags` bit 1 is clear, published when set) in an output directory restored to epoch
/// `flags >> 2` (above 3: the final epoch). With `flags` bit 0 set and a ledger that decodes,
/// its parts are made to record `part`'s length and checksum, so that the fuzzer reaches the
/// restore behind the check. The restore fails naming a file of the directory, or every
/// part the ledger needed is published with the bytes it recorded and nothing stays pending.
#[cfg(fuzzing)]
pub(crate) fn fuzz_recover(ledger: &[u8], part: &[u8], flags: u8) {
    let scratch = weir_engine::fuzzing::scratch_dir();
    let dir = scratch.path().join("out");
    let mut ledger = ledger.to_vec();
    if flags & 1 == 1 {
        if let Ok(mut decoded) = serde_json::from_slice::<Ledger>(&ledger) {
            let crc32c = crc32c::crc32c(part);
            for staged in &mut decoded.parts {
                (staged.bytes, staged.crc32c) = (part.len() as u64, crc32c);
            }
            ledger = serde_json::to_vec(&decoded).expect("a ledger encodes");
        }
    }
    let files = PartFiles {
        dir: dir.clone(),
        extension: ".jsonl".into(),
        ledger: Ledger::default(),
    };
    let part_path = if flags & 2 == 0 {
        files.pending_path(Epoch(1))
    } else {
        files.part_path(Epoch(1))
    };
    weir_engine::fuzzing::write_file(&dir, LEDGER_FILE, &ledger);
    weir_engine::fuzzing::write_file(
        &dir,
        &part_path.file_name().expect("a name").to_string_lossy(),
        part,
    );
    let restored = match flags >> 2 {
        epoch @ 0..=3 => Epoch(u64::from(epoch)),
        _ => FINAL_EPOCH,
    };
    match PartFiles::recover(&dir, "jsonl", Some(restored), false) {
        Ok(recovered) => {
            let needed = serde_json::from_slice::<Ledger>(&ledger)
                .expect("a restore read the ledger")
                .parts
                .into_iter()
                .filter(|staged| staged.epoch <= restored);
            for staged in needed {
                let published = recovered.part_path(staged.epoch);
                assert_eq!(
                    StagedPart::measure(staged.epoch, &published).expect("a published part"),
                    staged
                );
            }
            for name in recovered.names().expect("the output directory") {
                assert!(
                    !matches!(
                        recovered.classify(&name),
                        Entry::Pending(_) | Entry::Partial
                    ),
                    "{name} is left pending after a restore"
                );
            }
        }
        Err(error) => assert!(
            error.to_string().contains(&*dir.to_string_lossy()),
            "{error}"
        ),
    }
}

/// The epoch as part names write it: 20 digits, so that names sort by epoch, or `final`.
fn epoch_in_name(epoch: Epoch) -> String {
    if epoch == FINAL_EPOCH {
        FINAL_NAME.to_owned()
    } else {
        format!("{epoch:020}")
    }
}
