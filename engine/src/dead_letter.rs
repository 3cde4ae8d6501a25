//! Dead letters: input that a source could not decode or validate, kept with where it came
//! from and why, so that bad input never crashes a job and never vanishes.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One record a source rejected, with its raw bytes and the reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The source's name (a topic or file path).
    pub source: String,
    /// The log partition, for log sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
    /// The record's offset in its partition, for log sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The 1-based line (or CSV row) number, for file sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// Why the record was rejected.
    pub reason: String,
    /// The record's bytes as read: text when they are UTF-8, `{"hex": ...}` otherwise.
    #[serde(with = "raw_bytes")]
    pub raw: Vec<u8>,
}

impl DeadLetter {
    /// A dead letter from a log record.
    pub fn from_log(
        source: impl Into<String>,
        partition: u32,
        offset: u64,
        raw: &[u8],
        reason: impl Into<String>,
    ) -> Self {
        DeadLetter {
            source: source.into(),
            partition: Some(partition),
            offset: Some(offset),
            line: None,
            reason: reason.into(),
            raw: raw.to_vec(),
        }
    }

    /// A dead letter from a line (or row) of a file.
    pub fn from_line(
        source: impl Into<String>,
        line: u64,
        raw: &[u8],
        reason: impl Into<String>,
    ) -> Self {
        DeadLetter {
            source: source.into(),
            partition: None,
            offset: None,
            line: Some(line),
            reason: reason.into(),
            raw: raw.to_vec(),
        }
    }
}

impl fmt::Display for DeadLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some(partition) = self.partition {
            write!(f, ", partition {partition}")?;
        }
        if let Some(offset) = self.offset {
            write!(f, ", offset {offset}")?;
        }
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// Raw bytes readable in a JSON dead-letter file and exact in binary exchange.
mod raw_bytes {
    use super::*;

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Readable {
        Text(String),
        Hex { hex: String },
    }

    pub(super) fn serialize<S: Serializer>(raw: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        if !serializer.is_human_readable() {
            return serializer.serialize_bytes(raw);
        }
        match std::str::from_utf8(raw) {
            Ok(text) => Readable::Text(text.to_owned()),
            Err(_) => Readable::Hex {
                hex: raw.iter().map(|byte| format!("{byte:02x}")).collect(),
            },
        }
        .serialize(serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        if !deserializer.is_human_readable() {
            return serde_bytes_vec(deserializer);
        }
        match Readable::deserialize(deserializer)? {
            Readable::Text(text) => Ok(text.into_bytes()),
            Readable::Hex { hex } => (0..hex.len())
                .step_by(2)
                .map(|at| {
                    hex.get(at..at + 2)
                        .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                        .ok_or_else(|| serde::de::Error::custom("invalid hex in a dead letter"))
                })
                .collect(),
        }
    }

    fn serde_bytes_vec<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        struct BytesVisitor;
        impl<'de> serde::de::Visitor<'de> for BytesVisitor {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
                Ok(bytes.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(bytes)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Vec<u8>, A::Error> {
                let mut bytes = Vec::new();
                while let Some(byte) = seq.next_element()? {
                    bytes.push(byte);
                }
                Ok(bytes)
            }
        }
        deserializer.deserialize_byte_buf(BytesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_binary_raw_bytes_survive_json() {
        for raw in [b"{\"bid\": oops".to_vec(), vec![0xff, 0x00, 0x7f]] {
            let letter = DeadLetter::from_log("bids", 3, 17, &raw, "bad JSON");
            let json = serde_json::to_string(&letter).unwrap();
            assert_eq!(serde_json::from_str::<DeadLetter>(&json).unwrap(), letter);
        }
        let letter = DeadLetter::from_line("in.jsonl", 4, b"x", "expected value");
        assert_eq!(letter.to_string(), "in.jsonl, line 4: expected value");
        let json = serde_json::to_string(&letter).unwrap();
        assert_eq!(
            json,
            r#"{"source":"in.jsonl","line":4,"reason":"expected value","raw":"x"}"#
        );
    }
}
