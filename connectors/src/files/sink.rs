//! The file sinks: records of every worker are written by worker 0 in one of the formats.
//!
//! Without checkpoints the sink writes one file under a hidden partial name and renames it
//! into place when the input ends, so a failed job never leaves a file that looks complete.
//! In a job with checkpoints the sink is exactly-once: its path names a directory that
//! receives one part file per checkpoint epoch, published when the checkpoint is complete
//! (see [`PartFiles`]).

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;
use weir_engine::time::Epoch;
use weir_engine::{BoxError, Sink, SinkPlacement, WorkerInfo};

use super::format::{Csv, EncodeRecords, FileFormat, JsonLines, Parquet};
use super::part_files::PartFiles;
use super::staged_file::StagedFile;
use crate::error::ConnectorError;

/// A sink writing records in the format `F`; see [`JsonLinesSink`], [`CsvSink`] and
/// [`ParquetSink`].
///
/// ```no_run
/// # use weir_connectors::JsonLinesSink;
/// # fn build(stream: weir_engine::Stream<'_, u64>) {
/// stream.sink(JsonLinesSink::create("results.jsonl"));
/// # }
/// ```
pub struct FileSink<F: FileFormat> {
    format: F,
    path: PathBuf,
    /// The part files' name extension, without its dot (the path's own, unless told).
    extension: String,
    skip_empty: bool,
    /// The part files, in a job with checkpoints.
    parts: Option<PartFiles>,
    /// The file being written.
    open: Option<(StagedFile, F::Encoder)>,
    /// Records written by this run.
    written: u64,
}

/// Writes one JSON document per line.
pub type JsonLinesSink = FileSink<JsonLines>;
/// Writes CSV rows under a header of the records' field names.
pub type CsvSink = FileSink<Csv>;
/// Writes Parquet (Snappy-compressed), one column per field of `T`.
pub type ParquetSink<T> = FileSink<Parquet<T>>;

impl<F: FileFormat> FileSink<F> {
    fn new(format: F, path: PathBuf) -> Self {
        let extension = extension(&path).to_owned();
        FileSink::with_extension(format, path, extension)
    }

    /// A sink writing `path`, whose part files (in a job with checkpoints) end in `extension`.
    pub(crate) fn with_extension(format: F, path: PathBuf, extension: String) -> Self {
        FileSink {
            format,
            path,
            extension,
            skip_empty: false,
            parts: None,
            open: None,
            written: 0,
        }
    }

    /// Leaves no output (and removes an old file) when there is nothing to write, as for a
    /// dead-letter file of a run without bad input.
    pub fn skip_empty(self) -> Self {
        FileSink {
            skip_empty: true,
            ..self
        }
    }

    /// Opens the file that records go to, unless it is open.
    fn ensure_open(&mut self) -> Result<(), ConnectorError> {
        if self.open.is_none() {
            let file = match &self.parts {
                Some(parts) => parts.in_progress(),
                None => StagedFile::new(self.path.clone()),
            };
            let encoder = self.format.start(file.create()?, &self.path)?;
            self.open = Some((file, encoder));
        }
        Ok(())
    }

    /// Completes the open file, if any.
    fn finish(&mut self) -> Result<Option<(StagedFile, BufWriter<File>)>, ConnectorError> {
        match self.open.take() {
            Some((file, encoder)) => Ok(Some((file, self.format.finish(encoder, &self.path)?))),
            None => Ok(None),
        }
    }

    fn close_file(&mut self) -> Result<(), ConnectorError> {
        if self.skip_empty && self.written == 0 {
            self.abort_file();
            return match std::fs::remove_file(&self.path) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    Err(ConnectorError::io(&self.path, error))
                }
                _ => Ok(()),
            };
        }
        self.ensure_open()?;
        match self.finish()? {
            Some((file, writer)) => file.publish(writer),
            None => Ok(()),
        }
    }

    /// In a job with checkpoints, starts the part files of a sink that first writes after
    /// the epochs through `staged_through` were staged without it (see
    /// [`PartFiles::start_after`]).
    pub(crate) fn start_after(
        &mut self,
        staged_through: Option<Epoch>,
    ) -> Result<(), ConnectorError> {
        self.parts = Some(PartFiles::start_after(
            &self.path,
            &self.extension,
            staged_through,
        )?);
        Ok(())
    }

    fn abort_file(&mut self) {
        if let Some((file, _)) = self.open.take() {
            file.discard();
        }
    }
}

impl FileSink<JsonLines> {
    /// A JSON lines sink that will write `path` (replacing it) when the job's output is
    /// complete, or the directory `path` of part files in a job with checkpoints.
    pub fn create(path: impl Into<PathBuf>) -> Self {
        FileSink::new(JsonLines, path.into())
    }
}

impl FileSink<Csv> {
    /// A CSV sink that will write `path` (replacing it) when the job's output is complete, or
    /// the directory `path` of part files in a job with checkpoints.
    pub fn create(path: impl Into<PathBuf>) -> Self {
        FileSink::new(Csv, path.into())
    }
}

impl<T: Serialize + DeserializeOwned + 'static> FileSink<Parquet<T>> {
    /// A Parquet sink that will write `path` (replacing it) when the job's output is
    /// complete, or the directory `path` of part files in a job with checkpoints. Fails when
    /// `T` has no Arrow equivalent.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self, ConnectorError> {
        let path = path.into();
        Ok(FileSink::new(Parquet::of_records(&path)?, path))
    }
}

fn extension(path: &Path) -> &str {
    path.extension()
        .and_then(|extension| extension.to_str())
        .unwrap_or_default()
}

impl<T: 'static, F: EncodeRecords<T>> Sink<T> for FileSink<F> {
    fn name(&self) -> String {
        format!("{} {}", self.format.name(), self.path.display())
    }

    fn placement(&self) -> SinkPlacement {
        SinkPlacement::FirstWorker
    }

    fn open(&mut self, _worker: WorkerInfo) -> Result<(), BoxError> {
        Ok(())
    }

    fn start_transactions(&mut self, restored: Option<Epoch>) -> Result<(), BoxError> {
        self.parts = Some(PartFiles::recover(
            &self.path,
            &self.extension,
            restored,
            self.skip_empty,
        )?);
        Ok(())
    }

    fn write(&mut self, records: &[T]) -> Result<(), BoxError> {
        if records.is_empty() {
            return Ok(());
        }
        self.ensure_open()?;
        if let Some((_, encoder)) = &mut self.open {
            self.format.write(encoder, records, &self.path)?;
        }
        self.written += records.len() as u64;
        Ok(())
    }

    fn pre_commit(&mut self, epoch: Epoch) -> Result<(), BoxError> {
        if self.parts.is_none() {
            return Ok(());
        }
        let file = self.finish()?;
        if let Some(parts) = &mut self.parts {
            parts.pre_commit(file, epoch)?;
        }
        Ok(())
    }

    fn commit(&mut self, epoch: Epoch) -> Result<(), BoxError> {
        match &mut self.parts {
            Some(parts) => Ok(parts.commit(epoch)?),
            None => Ok(()),
        }
    }

    fn close(&mut self) -> Result<(), BoxError> {
        match &self.parts {
            Some(parts) if self.skip_empty => Ok(parts.remove_if_empty()?),
            Some(_) => Ok(()),
            None => Ok(self.close_file()?),
        }
    }

    fn abort(&mut self) {
        self.abort_file();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker() -> WorkerInfo {
        WorkerInfo { index: 0, peers: 1 }
    }

    #[test]
    fn rows_appear_only_when_the_sink_closes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.jsonl");
        let mut sink = JsonLinesSink::create(&path);
        Sink::<u64>::open(&mut sink, worker()).unwrap();
        sink.write(&[1u64, 2]).unwrap();
        sink.write(&[3u64]).unwrap();
        assert!(!path.exists());
        Sink::<u64>::close(&mut sink).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "1\n2\n3\n");

        let mut aborted = JsonLinesSink::create(dir.path().join("aborted.jsonl"));
        Sink::<u64>::open(&mut aborted, worker()).unwrap();
        aborted.write(&[1u64]).unwrap();
        Sink::<u64>::abort(&mut aborted);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
