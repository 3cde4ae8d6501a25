//! A file written under a hidden partial name and published by rename, so that readers never
//! see half a result and a failed job leaves nothing that looks complete.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::ConnectorError;

const BUFFER_BYTES: usize = 1 << 20;

/// An output file being written.
#[derive(Debug)]
pub(crate) struct StagedFile {
    path: PathBuf,
    partial: PathBuf,
    writer: Option<BufWriter<File>>,
}

impl StagedFile {
    /// Names the file; nothing is created until [`open`](Self::open).
    pub(crate) fn new(path: PathBuf) -> Self {
        let mut partial_name = OsString::from(".");
        partial_name.push(path.file_name().unwrap_or_default());
        partial_name.push(".partial");
        StagedFile {
            partial: path.with_file_name(partial_name),
            path,
            writer: None,
        }
    }

    /// The final path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the partial file.
    pub(crate) fn open(&mut self) -> Result<(), ConnectorError> {
        let file = File::create(&self.partial).map_err(|error| self.error(error))?;
        self.writer = Some(BufWriter::with_capacity(BUFFER_BYTES, file));
        Ok(())
    }

    /// The writer of the partial file.
    pub(crate) fn writer(&mut self) -> Result<&mut BufWriter<File>, ConnectorError> {
        let not_open = self.error(std::io::Error::other("the file is not open"));
        self.writer.as_mut().ok_or(not_open)
    }

    /// Takes the writer out, for formats that wrap it (the caller hands back the file).
    pub(crate) fn take_writer(&mut self) -> Result<BufWriter<File>, ConnectorError> {
        let not_open = self.error(std::io::Error::other("the file is not open"));
        self.writer.take().ok_or(not_open)
    }

    /// Flushes the partial file and renames it to the final path.
    pub(crate) fn publish(&mut self) -> Result<(), ConnectorError> {
        if let Some(mut writer) = self.writer.take() {
            writer.flush().map_err(|error| self.error(error))?;
        }
        std::fs::rename(&self.partial, &self.path).map_err(|error| self.error(error))
    }

    /// Removes the partial file.
    pub(crate) fn discard(&mut self) {
        self.writer = None;
        // Best effort: the partial file is hidden and replaced by the next run anyway.
        let _ = std::fs::remove_file(&self.partial);
    }

    /// A format error on this file (encoding, schema), named by its final path.
    pub(crate) fn format_error(&self, reason: String) -> ConnectorError {
        ConnectorError::Format {
            path: self.path.clone(),
            reason,
        }
    }

    /// An I/O error on this file, named by its final path.
    pub(crate) fn error(&self, error: std::io::Error) -> ConnectorError {
        ConnectorError::io(&self.path, error)
    }
}
