//! Parquet files through arrow: the schema is derived from the record type's serde shape.

use std::fs::File;
use std::io::BufWriter;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_schema::{FieldRef, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_arrow::schema::{SchemaLike, TracingOptions};
use weir_engine::{BoxError, Sink, SinkPlacement, WorkerInfo};

use super::staged_file::StagedFile;
use crate::error::ConnectorError;

/// Writes records into one Parquet file (Snappy-compressed), one column per field, written
/// by worker 0 and published when the input ends. Field types come from the record type:
/// integers, floats, strings, booleans, options, nested structs and lists.
pub struct ParquetSink<T> {
    file: StagedFile,
    fields: Vec<FieldRef>,
    writer: Option<ArrowWriter<BufWriter<File>>>,
    _records: PhantomData<fn(&T)>,
}

impl<T: Serialize + DeserializeOwned> ParquetSink<T> {
    /// A sink that will write `path` (replacing it) when the job's output is complete. Fails
    /// when `T` has no Arrow equivalent.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self, ConnectorError> {
        let file = StagedFile::new(path.into());
        let fields =
            Vec::<FieldRef>::from_type::<T>(TracingOptions::default()).map_err(|error| {
                file.format_error(format!("no Parquet schema for the records: {error}"))
            })?;
        Ok(ParquetSink {
            file,
            fields,
            writer: None,
            _records: PhantomData,
        })
    }
}

impl<T: Serialize + DeserializeOwned + 'static> Sink<T> for ParquetSink<T> {
    fn name(&self) -> String {
        format!("parquet {}", self.file.path().display())
    }

    fn placement(&self) -> SinkPlacement {
        SinkPlacement::FirstWorker
    }

    fn open(&mut self, _worker: WorkerInfo) -> Result<(), BoxError> {
        self.file.open()?;
        let schema = Arc::new(Schema::new(self.fields.clone()));
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let writer = ArrowWriter::try_new(self.file.take_writer()?, schema, Some(properties))
            .map_err(|error| self.file.format_error(error.to_string()))?;
        self.writer = Some(writer);
        Ok(())
    }

    fn write(&mut self, records: &[T]) -> Result<(), BoxError> {
        let writer = self.writer.as_mut().ok_or_else(|| {
            self.file
                .error(std::io::Error::other("the sink is not open"))
        })?;
        let batch = serde_arrow::to_record_batch(&self.fields, &records).map_err(|error| {
            self.file
                .format_error(format!("cannot convert records: {error}"))
        })?;
        writer
            .write(&batch)
            .map_err(|error| self.file.format_error(error.to_string()))?;
        Ok(())
    }

    fn close(&mut self) -> Result<(), BoxError> {
        if let Some(writer) = self.writer.take() {
            writer
                .close()
                .map_err(|error| self.file.format_error(error.to_string()))?;
        }
        Ok(self.file.publish()?)
    }

    fn abort(&mut self) {
        self.writer = None;
        self.file.discard();
    }
}
