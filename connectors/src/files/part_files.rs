//! The output of a file sink in a job with checkpoints: a directory with one part file per
//! checkpoint epoch, `part-EPOCH.EXT`, published by its commit.
//!
//! Records of the running epoch go to a hidden partial file. When the epoch ends (pre-commit)
//! the file is completed, synced and renamed to a hidden pending name; once the checkpoint of
//! the epoch is complete (commit) the pending file is renamed to its part name. Renames are
//! atomic, so a reader listing the directory sees whole parts of committed epochs only, and
//! committing again after a crash finds the part already in place.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use weir_engine::time::Epoch;

use super::staged_file::StagedFile;
use crate::durable::{create_dir_all, sync_dir};
use crate::error::ConnectorError;

const PART_PREFIX: &str = "part-";
const PENDING_PREFIX: &str = ".part-";
const PENDING_SUFFIX: &str = ".pending";

/// The part files of one sink's output directory.
#[derive(Debug)]
pub(crate) struct PartFiles {
    dir: PathBuf,
    /// The parts' file name extension with its dot (`.jsonl`), or empty.
    extension: String,
    /// Epochs pre-committed by this run and not committed yet.
    pending: Vec<Epoch>,
}

/// What a file name in the output directory is.
enum Entry {
    Part(Epoch),
    Pending(Epoch),
    Partial,
    Other,
}

impl PartFiles {
    /// Opens (creating) the output directory `dir` after a crash or for a fresh start: commits
    /// the pending parts up to `restored` (the epoch of the checkpoint the job restored) and
    /// deletes later parts, pending or not, which the restored job writes again. A fresh start
    /// (`None`) deletes every part. Files that are not parts are left alone.
    pub(crate) fn recover(
        dir: &Path,
        extension: &str,
        restored: Option<Epoch>,
    ) -> Result<Self, ConnectorError> {
        create_dir_all(dir)?;
        let mut parts = PartFiles {
            dir: dir.to_owned(),
            extension: if extension.is_empty() {
                String::new()
            } else {
                format!(".{extension}")
            },
            pending: Vec::new(),
        };
        let kept = |epoch: Epoch| restored.is_some_and(|restored| epoch <= restored);
        for name in parts.names()? {
            let path = dir.join(&name);
            match parts.classify(&name) {
                Entry::Pending(epoch) if kept(epoch) => parts.pending.push(epoch),
                Entry::Part(epoch) | Entry::Pending(epoch) if !kept(epoch) => {
                    std::fs::remove_file(&path).map_err(|error| ConnectorError::io(&path, error))?
                }
                Entry::Partial => {
                    std::fs::remove_file(&path).map_err(|error| ConnectorError::io(&path, error))?
                }
                _ => {}
            }
        }
        parts.pending.sort_unstable();
        if let Some(restored) = restored {
            parts.commit(restored)?;
        }
        sync_dir(dir)?;
        Ok(parts)
    }

    /// The file that records of the running epoch are written to.
    pub(crate) fn in_progress(&self) -> StagedFile {
        StagedFile::new(
            self.dir
                .join(format!("{PART_PREFIX}in-progress{}", self.extension)),
        )
    }

    /// Makes the completed `file` durable as the pending part of `epoch`.
    pub(crate) fn pre_commit(
        &mut self,
        file: &StagedFile,
        writer: BufWriter<File>,
        epoch: Epoch,
    ) -> Result<(), ConnectorError> {
        file.seal_as(writer, &self.pending_path(epoch))?;
        weir_engine::crash_point("file_sink.prepared");
        sync_dir(&self.dir)?;
        self.pending.push(epoch);
        Ok(())
    }

    /// Publishes every pending part up to `epoch`.
    pub(crate) fn commit(&mut self, epoch: Epoch) -> Result<(), ConnectorError> {
        let due = self.pending.partition_point(|&pending| pending <= epoch);
        if due == 0 {
            return Ok(());
        }
        for &pending in &self.pending[..due] {
            let (from, to) = (self.pending_path(pending), self.part_path(pending));
            match std::fs::rename(&from, &to) {
                // Committed by an attempt that crashed before it was recorded.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound && to.exists() => {}
                result => result.map_err(|error| ConnectorError::io(&from, error))?,
            }
            weir_engine::crash_point("file_sink.published");
        }
        self.pending.drain(..due);
        sync_dir(&self.dir)
    }

    /// Removes the directory if it holds nothing (as for a dead-letter output of a run
    /// without bad input).
    pub(crate) fn remove_if_empty(&self) -> Result<(), ConnectorError> {
        if self.names()?.is_empty() {
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
        self.dir
            .join(format!("{PART_PREFIX}{epoch:020}{}", self.extension))
    }

    fn pending_path(&self, epoch: Epoch) -> PathBuf {
        self.dir.join(format!(
            "{PENDING_PREFIX}{epoch:020}{}{PENDING_SUFFIX}",
            self.extension
        ))
    }

    fn classify(&self, name: &str) -> Entry {
        // Epochs are written with 20 digits: a name with other text is not a part.
        let epoch = |digits: Option<&str>| {
            digits
                .filter(|digits| digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|digits| digits.parse::<Epoch>().ok())
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
