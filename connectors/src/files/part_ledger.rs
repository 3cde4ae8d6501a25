//! The file sink's ledger: which epochs it has staged, and the length and checksum of each
//! staged part, so that a restore can tell a missing or damaged part from an epoch without
//! records.
//!
//! Every pre-commit rewrites the ledger (atomically), an epoch without records too: it then
//! vouches that every epoch after `committed` up to `staged_through` was staged, and `parts`
//! lists the ones that wrote a part. A restore of a complete checkpoint needs each listed part
//! up to its epoch, pending or already published, with the recorded length and checksum:
//! publishing the others would leave records out without a word.
//!
//! The file is `.ledger.json` in the output directory, hidden from readers of the parts.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use weir_engine::checkpoint::epoch_name;
use weir_engine::time::Epoch;

use crate::durable::write_json_atomically;
use crate::error::ConnectorError;

/// The ledger's file name in the output directory.
pub(crate) const LEDGER_FILE: &str = ".ledger.json";

/// What the sink has staged since its last known commit.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Ledger {
    /// The last epoch this sink knows to be committed (`None`: none yet). Commits after it
    /// may have happened: a restore finds those parts published.
    pub(crate) committed: Option<Epoch>,
    /// The last epoch staged; every epoch after `committed` up to it was.
    pub(crate) staged_through: Option<Epoch>,
    /// The parts of staged epochs after `committed`, in epoch order.
    pub(crate) parts: Vec<StagedPart>,
}

/// A part as it was staged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StagedPart {
    /// The epoch whose records the part holds.
    pub(crate) epoch: Epoch,
    /// Its length in bytes.
    pub(crate) bytes: u64,
    /// The CRC-32C of its bytes.
    pub(crate) crc32c: u32,
}

impl StagedPart {
    /// Reads the part at `path` to record its length and checksum.
    pub(crate) fn measure(epoch: Epoch, path: &Path) -> Result<Self, ConnectorError> {
        let (bytes, crc32c) = checksum(path)?;
        Ok(StagedPart {
            epoch,
            bytes,
            crc32c,
        })
    }

    /// Checks that the file at `path` is this part, byte for byte as far as the checksum
    /// tells; `ledger` is the file that recorded it.
    pub(crate) fn verify(&self, path: &Path, ledger: &Path) -> Result<(), ConnectorError> {
        let (bytes, crc32c) = checksum(path)?;
        if (bytes, crc32c) == (self.bytes, self.crc32c) {
            return Ok(());
        }
        Err(ConnectorError::BadOutput {
            path: path.to_owned(),
            reason: format!(
                "the staged part of epoch {} is damaged: the sink's ledger {} records {} bytes \
                 with CRC-32C {:08x}, the file has {bytes} bytes with CRC-32C {crc32c:08x}",
                epoch_name(self.epoch),
                ledger.display(),
                self.bytes,
                self.crc32c,
            ),
        })
    }
}

impl Ledger {
    /// Reads the ledger of the output directory `dir`, which a restore of checkpoint
    /// `restored` needs.
    pub(crate) fn read(dir: &Path, restored: Epoch) -> Result<Self, ConnectorError> {
        let path = dir.join(LEDGER_FILE);
        let bytes = std::fs::read(&path).map_err(|error| ConnectorError::BadOutput {
            path: path.clone(),
            reason: format!(
                "the sink's ledger cannot be read ({error}): checkpoint {} is complete, so this \
                 sink staged its epochs in this directory. Restore with the output the \
                 checkpoint's run wrote, or start the job afresh",
                epoch_name(restored)
            ),
        })?;
        let ledger: Ledger =
            serde_json::from_slice(&bytes).map_err(|error| ConnectorError::BadOutput {
                path: path.clone(),
                reason: format!("the sink's ledger is not valid: {error}"),
            })?;
        ledger.validate(&path)?;
        Ok(ledger)
    }

    /// Replaces the ledger in `dir` with this one, durably.
    pub(crate) fn write(&self, dir: &Path) -> Result<(), ConnectorError> {
        write_json_atomically(&dir.join(LEDGER_FILE), self)
    }

    /// The parts a restore of `restored` must find, after checking that the ledger reaches
    /// that far: a ledger that ends before a complete checkpoint lost the record of epochs
    /// the checkpoint vouches were staged.
    pub(crate) fn needed_by(
        &self,
        dir: &Path,
        restored: Epoch,
    ) -> Result<&[StagedPart], ConnectorError> {
        let committed = self.committed.is_some_and(|epoch| epoch >= restored);
        if !committed && self.staged_through.is_none_or(|epoch| epoch < restored) {
            return Err(ConnectorError::BadOutput {
                path: dir.join(LEDGER_FILE),
                reason: format!(
                    "the sink's ledger records epochs staged up to {}, but checkpoint {} is \
                     complete: the record of the epochs after that is lost, and their parts \
                     cannot be checked",
                    self.staged_through.map_or("none".to_owned(), epoch_name),
                    epoch_name(restored)
                ),
            });
        }
        let due = self.parts.partition_point(|part| part.epoch <= restored);
        Ok(&self.parts[..due])
    }

    fn validate(&self, path: &Path) -> Result<(), ConnectorError> {
        let ordered = self
            .parts
            .windows(2)
            .all(|pair| pair[0].epoch < pair[1].epoch);
        let within = self.parts.iter().all(|part| {
            self.committed.is_none_or(|epoch| part.epoch > epoch)
                && self.staged_through.is_some_and(|epoch| part.epoch <= epoch)
        });
        if ordered && within {
            return Ok(());
        }
        Err(ConnectorError::BadOutput {
            path: path.to_owned(),
            reason: "the sink's ledger lists parts out of order or outside its staged epochs"
                .into(),
        })
    }
}

/// The length and CRC-32C of the file at `path`.
fn checksum(path: &Path) -> Result<(u64, u32), ConnectorError> {
    let io = |error| ConnectorError::io(PathBuf::from(path), error);
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut buffer = vec![0; 1 << 16];
    let (mut bytes, mut crc) = (0u64, 0u32);
    loop {
        let read = file.read(&mut buffer).map_err(io)?;
        if read == 0 {
            return Ok((bytes, crc));
        }
        crc = crc32c::crc32c_append(crc, &buffer[..read]);
        bytes += read as u64;
    }
}

#[cfg(test)]
mod tests {
    use weir_engine::checkpoint::FINAL_EPOCH;

    use super::*;

    fn part(epoch: u64) -> StagedPart {
        StagedPart {
            epoch: Epoch(epoch),
            bytes: 1,
            crc32c: 2,
        }
    }

    #[test]
    fn a_restore_needs_the_parts_up_to_its_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger {
            committed: Some(Epoch(3)),
            staged_through: Some(Epoch(7)),
            parts: vec![part(5), part(7)],
        };
        ledger.write(dir.path()).unwrap();
        let read = Ledger::read(dir.path(), Epoch(6)).unwrap();
        assert_eq!(read.needed_by(dir.path(), Epoch(6)).unwrap(), &[part(5)]);
        assert_eq!(read.needed_by(dir.path(), Epoch(7)).unwrap().len(), 2);
        // Committed already: nothing to check.
        assert!(read.needed_by(dir.path(), Epoch(2)).unwrap().is_empty());
        // A checkpoint past what the ledger records.
        let error = read
            .needed_by(dir.path(), Epoch(8))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("staged up to 7, but checkpoint 8"),
            "{error}"
        );
        let error = read
            .needed_by(dir.path(), FINAL_EPOCH)
            .unwrap_err()
            .to_string();
        assert!(error.contains("checkpoint final is complete"), "{error}");
    }

    #[test]
    fn a_missing_or_inconsistent_ledger_fails_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let error = Ledger::read(dir.path(), Epoch(4)).unwrap_err().to_string();
        assert!(
            error.contains(LEDGER_FILE) && error.contains("checkpoint 4 is complete"),
            "{error}"
        );
        for ledger in [
            r#"{"committed":null,"staged_through":4,"parts":[{"epoch":3,"bytes":1,"crc32c":2},{"epoch":2,"bytes":1,"crc32c":2}]}"#,
            r#"{"committed":3,"staged_through":4,"parts":[{"epoch":3,"bytes":1,"crc32c":2}]}"#,
            r#"{"committed":null,"staged_through":4,"parts":[{"epoch":5,"bytes":1,"crc32c":2}]}"#,
            r#"{"committed":null"#,
        ] {
            std::fs::write(dir.path().join(LEDGER_FILE), ledger).unwrap();
            let error = Ledger::read(dir.path(), Epoch(4)).unwrap_err().to_string();
            assert!(error.contains("ledger"), "{ledger}: {error}");
        }
    }

    #[test]
    fn a_part_whose_bytes_changed_is_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("part");
        std::fs::write(&path, b"{\"a\":1}\n").unwrap();
        let staged = StagedPart::measure(FINAL_EPOCH, &path).unwrap();
        let ledger = dir.path().join(LEDGER_FILE);
        staged.verify(&path, &ledger).unwrap();
        std::fs::write(&path, b"{\"a\":2}\n").unwrap();
        let error = staged.verify(&path, &ledger).unwrap_err().to_string();
        assert!(error.contains("part of epoch final is damaged"), "{error}");
        std::fs::write(&path, b"").unwrap();
        assert!(staged.verify(&path, &ledger).is_err());
    }
}
