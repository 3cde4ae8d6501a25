//! A file written under a hidden partial name and published by rename, so that readers never
//! see half a result and a failed job leaves nothing that looks complete.

use std::ffi::OsString;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use crate::error::ConnectorError;

const BUFFER_BYTES: usize = 1 << 20;

/// The name of an output file and of the hidden partial file it is written as.
#[derive(Debug)]
pub(crate) struct StagedFile {
    path: PathBuf,
    partial: PathBuf,
}

impl StagedFile {
    /// Names the file; nothing is created until [`create`](Self::create).
    pub(crate) fn new(path: PathBuf) -> Self {
        let mut partial_name = OsString::from(".");
        partial_name.push(path.file_name().unwrap_or_default());
        partial_name.push(".partial");
        StagedFile {
            partial: path.with_file_name(partial_name),
            path,
        }
    }

    /// Creates (or truncates) the partial file.
    pub(crate) fn create(&self) -> Result<BufWriter<File>, ConnectorError> {
        let file = File::create(&self.partial).map_err(|error| self.error(error))?;
        Ok(BufWriter::with_capacity(BUFFER_BYTES, file))
    }

    /// Flushes the partial file to disk and renames it to the final path.
    pub(crate) fn publish(&self, writer: BufWriter<File>) -> Result<(), ConnectorError> {
        self.seal_as(writer, &self.path)
    }

    /// Flushes the partial file to disk (fsync) and renames it to `target`; the caller makes
    /// the rename durable by syncing the directory.
    pub(crate) fn seal_as(
        &self,
        writer: BufWriter<File>,
        target: &Path,
    ) -> Result<(), ConnectorError> {
        self.flush(writer)?
            .sync_all()
            .map_err(|error| self.error(error))?;
        std::fs::rename(&self.partial, target).map_err(|error| ConnectorError::io(target, error))
    }

    fn flush(&self, writer: BufWriter<File>) -> Result<File, ConnectorError> {
        writer
            .into_inner()
            .map_err(|error| self.error(error.into_error()))
    }

    /// Removes the partial file.
    pub(crate) fn discard(&self) {
        // Best effort: the partial file is hidden and replaced by the next run anyway.
        let _ = std::fs::remove_file(&self.partial);
    }

    /// An error writing the partial file, naming it (the file that exists on disk).
    fn error(&self, error: std::io::Error) -> ConnectorError {
        ConnectorError::io(&self.partial, error)
    }
}
