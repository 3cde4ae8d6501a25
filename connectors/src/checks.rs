//! How sources turn each record's bytes into a `T`, and what they check of it: the JSON
//! Schema its bytes must match, and a function of the decoded record. A record that fails
//! to decode or either check becomes a dead letter with the reason.

use serde::de::DeserializeOwned;

use crate::codec::{json_error, Codec};
use crate::schema::JsonSchema;

/// A check of each decoded record: `Err(reason)` makes it a dead letter.
type Validate<T> = Box<dyn Fn(&T) -> Result<(), String>>;

/// A record's bytes as a source hands them to decoding.
#[derive(Clone, Copy, Debug)]
pub enum Encoded<'a> {
    /// weir's binary encoding (the embedded log's own topics).
    Binary(&'a [u8]),
    /// JSON text, already checked to be UTF-8.
    Json(&'a str),
}

impl<'a> Encoded<'a> {
    /// JSON bytes, once checked to be UTF-8 (with SIMD); the error is a dead letter's reason.
    pub fn json(bytes: &'a [u8]) -> Result<Self, String> {
        simdutf8::basic::from_utf8(bytes)
            .map(Encoded::Json)
            .map_err(|_| "the value is not UTF-8".to_owned())
    }

    /// The raw bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Encoded::Binary(bytes) => bytes,
            Encoded::Json(text) => text.as_bytes(),
        }
    }
}

/// A decoding of records written by hand, in place of serde's derive: for a type on a hot
/// path, or to leave out fields a job never reads. It must accept exactly the records serde
/// accepts; the simplest way is to hand anything unusual to [`decode_with_serde`].
pub trait Decode<T> {
    /// Decodes one record.
    fn decode(&self, encoded: Encoded<'_>) -> Result<T, String>;
}

/// serde's decoding of a record, the default: postcard for binary, serde_json for JSON.
pub fn decode_with_serde<T: DeserializeOwned>(encoded: Encoded<'_>) -> Result<T, String> {
    match encoded {
        Encoded::Binary(bytes) => Codec::Binary.decode(bytes),
        Encoded::Json(text) => {
            serde_json::from_str(text).map_err(|error| json_error::<T>(text.as_bytes(), error))
        }
    }
}

/// The checks of one source's records, and their decoding.
pub struct Checks<T> {
    schema: Option<JsonSchema>,
    validate: Option<Validate<T>>,
    decoder: Option<Box<dyn Decode<T>>>,
}

impl<T> Default for Checks<T> {
    fn default() -> Self {
        Checks {
            schema: None,
            validate: None,
            decoder: None,
        }
    }
}

impl<T> Checks<T> {
    /// Decodes a record (by the source's [`Decode`], else serde's derive), after the
    /// schema's check of its bytes and before `validate`'s of the record; the error is the
    /// reason of a dead letter. Without a schema the bytes are parsed once.
    pub(crate) fn decode(&self, encoded: Encoded<'_>) -> Result<T, String>
    where
        T: DeserializeOwned,
    {
        if let Some(schema) = &self.schema {
            schema.check_bytes(encoded.bytes())?;
        }
        let record = match &self.decoder {
            Some(decoder) => decoder.decode(encoded)?,
            None => decode_with_serde(encoded)?,
        };
        match &self.validate {
            Some(validate) => validate(&record).map(|()| record),
            None => Ok(record),
        }
    }

    /// Whether records are checked against a JSON Schema.
    pub(crate) fn has_schema(&self) -> bool {
        self.schema.is_some()
    }
}

/// Sources whose records can be checked: the log, Kafka and JSON lines sources.
pub trait CheckRecords<T>: Sized {
    /// The source's checks.
    fn checks_mut(&mut self) -> &mut Checks<T>;

    /// Checks every decoded record; a record that fails becomes a dead letter with the
    /// reason.
    fn validate(mut self, validate: impl Fn(&T) -> Result<(), String> + 'static) -> Self {
        self.checks_mut().validate = Some(Box::new(validate));
        self
    }

    /// Checks every record against a JSON Schema before decoding it; a record that breaks it
    /// becomes a dead letter naming the field and what it should have been.
    fn schema(mut self, schema: JsonSchema) -> Self {
        self.checks_mut().schema = Some(schema);
        self
    }

    /// Decodes records with `decoder` instead of serde's derive.
    fn decoder(mut self, decoder: impl Decode<T> + 'static) -> Self {
        self.checks_mut().decoder = Some(Box::new(decoder));
        self
    }
}
