//! The encodings of the file sinks: how records become the bytes of one file. A format starts
//! a file, appends batches of records and completes it (header and footer included), so the
//! file sink can cut its output into one file per job or one file per checkpoint epoch.

use std::fs::File;
use std::io::BufWriter;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;

use arrow_schema::{FieldRef, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::Serialize;
use serde_arrow::schema::{SchemaLike, TracingOptions};

use super::json_lines::write_json_lines;
use crate::error::ConnectorError;

/// A file format of [`FileSink`](super::FileSink).
pub trait FileFormat: 'static {
    /// The encoder of one open file.
    type Encoder;
    /// The format's name in sink names, as `csv`.
    fn name(&self) -> &'static str;
    /// The usual file name extension, without its dot, as `csv`.
    fn extension(&self) -> &'static str;
    /// Starts a file written to `file` (named `path` in errors).
    fn start(&self, file: BufWriter<File>, path: &Path) -> Result<Self::Encoder, ConnectorError>;
    /// Completes the file (buffered rows, footer) and hands back the file's writer.
    fn finish(
        &self,
        encoder: Self::Encoder,
        path: &Path,
    ) -> Result<BufWriter<File>, ConnectorError>;
}

/// A file format that can encode records of type `T`.
pub trait EncodeRecords<T>: FileFormat {
    /// Appends `records` to the open file.
    fn write(
        &self,
        encoder: &mut Self::Encoder,
        records: &[T],
        path: &Path,
    ) -> Result<(), ConnectorError>;
}

fn format_error(path: &Path, reason: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Format {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// One JSON document per line.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonLines;

impl FileFormat for JsonLines {
    type Encoder = BufWriter<File>;

    fn name(&self) -> &'static str {
        "json lines"
    }

    fn extension(&self) -> &'static str {
        "jsonl"
    }

    fn start(&self, file: BufWriter<File>, _path: &Path) -> Result<Self::Encoder, ConnectorError> {
        Ok(file)
    }

    fn finish(&self, file: Self::Encoder, _path: &Path) -> Result<BufWriter<File>, ConnectorError> {
        Ok(file)
    }
}

impl<T: Serialize> EncodeRecords<T> for JsonLines {
    fn write(
        &self,
        file: &mut Self::Encoder,
        records: &[T],
        path: &Path,
    ) -> Result<(), ConnectorError> {
        write_json_lines(path, file, records).map(drop)
    }
}

/// CSV rows under a header of the records' field names.
#[derive(Clone, Copy, Debug, Default)]
pub struct Csv;

impl FileFormat for Csv {
    type Encoder = csv::Writer<BufWriter<File>>;

    fn name(&self) -> &'static str {
        "csv"
    }

    fn extension(&self) -> &'static str {
        "csv"
    }

    fn start(&self, file: BufWriter<File>, _path: &Path) -> Result<Self::Encoder, ConnectorError> {
        Ok(csv::Writer::from_writer(file))
    }

    fn finish(
        &self,
        writer: Self::Encoder,
        path: &Path,
    ) -> Result<BufWriter<File>, ConnectorError> {
        writer
            .into_inner()
            .map_err(|error| ConnectorError::io(path, error.into_error()))
    }
}

impl<T: Serialize> EncodeRecords<T> for Csv {
    fn write(
        &self,
        writer: &mut Self::Encoder,
        records: &[T],
        path: &Path,
    ) -> Result<(), ConnectorError> {
        for record in records {
            writer
                .serialize(record)
                .map_err(|error| format_error(path, format!("cannot write a CSV row: {error}")))?;
        }
        Ok(())
    }
}

/// Parquet (Snappy-compressed), one column per field of `T`: integers, floats, strings,
/// booleans, options, nested structs and lists.
pub struct Parquet<T> {
    fields: Vec<FieldRef>,
    _records: PhantomData<fn(&T)>,
}

impl<T: Serialize + serde::de::DeserializeOwned> Parquet<T> {
    /// The Parquet schema of `T`; fails (naming `path`) when `T` has no Arrow equivalent.
    pub(crate) fn of_records(path: &Path) -> Result<Self, ConnectorError> {
        let fields =
            Vec::<FieldRef>::from_type::<T>(TracingOptions::default()).map_err(|error| {
                format_error(path, format!("no Parquet schema for the records: {error}"))
            })?;
        Ok(Parquet {
            fields,
            _records: PhantomData,
        })
    }
}

impl<T: 'static> FileFormat for Parquet<T> {
    type Encoder = ArrowWriter<BufWriter<File>>;

    fn name(&self) -> &'static str {
        "parquet"
    }

    fn extension(&self) -> &'static str {
        "parquet"
    }

    fn start(&self, file: BufWriter<File>, path: &Path) -> Result<Self::Encoder, ConnectorError> {
        let schema = Arc::new(Schema::new(self.fields.clone()));
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        ArrowWriter::try_new(file, schema, Some(properties))
            .map_err(|error| format_error(path, error))
    }

    fn finish(
        &self,
        writer: Self::Encoder,
        path: &Path,
    ) -> Result<BufWriter<File>, ConnectorError> {
        writer
            .into_inner()
            .map_err(|error| format_error(path, error))
    }
}

impl<T: Serialize + 'static> EncodeRecords<T> for Parquet<T> {
    fn write(
        &self,
        writer: &mut Self::Encoder,
        records: &[T],
        path: &Path,
    ) -> Result<(), ConnectorError> {
        let batch = serde_arrow::to_record_batch(&self.fields, &records)
            .map_err(|error| format_error(path, format!("cannot convert records: {error}")))?;
        writer
            .write(&batch)
            .map_err(|error| format_error(path, error))
    }
}
