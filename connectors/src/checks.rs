//! What sources check of each record besides decoding it: the JSON Schema its bytes must
//! match, and a function of the decoded record. A record that fails either becomes a dead
//! letter with the reason.

use crate::schema::JsonSchema;

/// A check of each decoded record: `Err(reason)` makes it a dead letter.
type Validate<T> = Box<dyn Fn(&T) -> Result<(), String>>;

/// The checks of one source's records.
pub struct Checks<T> {
    schema: Option<JsonSchema>,
    validate: Option<Validate<T>>,
}

impl<T> Default for Checks<T> {
    fn default() -> Self {
        Checks {
            schema: None,
            validate: None,
        }
    }
}

impl<T> Checks<T> {
    /// `decode(bytes)`, after the schema's check of `bytes` and before `validate`'s of the
    /// record; the error is the reason of a dead letter. Without a schema the bytes are
    /// parsed once.
    pub(crate) fn decode(
        &self,
        bytes: &[u8],
        decode: impl FnOnce(&[u8]) -> Result<T, String>,
    ) -> Result<T, String> {
        if let Some(schema) = &self.schema {
            schema.check_bytes(bytes)?;
        }
        let record = decode(bytes)?;
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
}
