//! Value encodings: weir's compact binary encoding for its own topics, JSON for the rest.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::log::ValueFormat;

/// The reason a JSON record failed to decode as a `T`: serde's `error`, after the path of the
/// field it concerns when there is one (`JSON decode: after.id: invalid type: ...`). Decoding
/// again to find the path costs time only for records that fail.
pub(crate) fn json_error<T: DeserializeOwned>(bytes: &[u8], error: serde_json::Error) -> String {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        Err(traced) if traced.path().iter().next().is_some() => {
            format!("JSON decode: field `{}`: {error}", traced.path())
        }
        _ => format!("JSON decode: {error}"),
    }
}

/// How record values are turned into typed values and back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// A compact binary encoding ([postcard]'s: varints, no field names). Not
    /// self-describing: the reader must know the type.
    Binary,
    /// One JSON document per value.
    Json,
}

impl Codec {
    /// The codec of a topic's value format.
    pub fn of(format: &ValueFormat) -> Codec {
        match format {
            ValueFormat::Json => Codec::Json,
            ValueFormat::Binary { .. } => Codec::Binary,
        }
    }

    /// Decodes one value; the error says what was wrong.
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, String> {
        match self {
            Codec::Binary => match postcard::take_from_bytes(bytes) {
                Ok((value, [])) => Ok(value),
                Ok((_, rest)) => Err(format!(
                    "binary decode: {} bytes follow the value's {}",
                    rest.len(),
                    bytes.len() - rest.len()
                )),
                Err(error) => Err(format!("binary decode: {error}")),
            },
            Codec::Json => {
                serde_json::from_slice(bytes).map_err(|error| json_error::<T>(bytes, error))
            }
        }
    }

    /// Appends the encoding of `value` to `out`.
    pub fn encode<T: Serialize>(self, value: &T, out: &mut Vec<u8>) -> Result<(), String> {
        match self {
            Codec::Binary => postcard::to_io(value, &mut *out)
                .map(|_| ())
                .map_err(|error| format!("binary encode: {error}")),
            Codec::Json => serde_json::to_writer(&mut *out, value)
                .map_err(|error| format!("JSON encode: {error}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Row {
        id: u64,
        name: String,
    }

    #[test]
    fn both_codecs_round_trip_and_name_what_is_wrong() {
        let row = Row {
            id: 300,
            name: "ünïcode".into(),
        };
        for codec in [Codec::Binary, Codec::Json] {
            let mut bytes = Vec::new();
            codec.encode(&row, &mut bytes).unwrap();
            assert_eq!(codec.decode::<Row>(&bytes).unwrap(), row);
            assert!(codec.decode::<Row>(&bytes[..bytes.len() - 2]).is_err());
        }
        let mut trailing = Vec::new();
        Codec::Binary.encode(&row, &mut trailing).unwrap();
        trailing.push(0);
        let error = Codec::Binary.decode::<Row>(&trailing).unwrap_err();
        assert!(error.contains("1 bytes follow the value's"), "{error}");
        let missing = Codec::Json.decode::<Row>(br#"{"id": 1}"#).unwrap_err();
        assert!(missing.contains("missing field `name`"), "{missing}");
        let mistyped = Codec::Json
            .decode::<Row>(br#"{"id": "one", "name": "x"}"#)
            .unwrap_err();
        assert!(mistyped.contains("invalid type"), "{mistyped}");
        assert!(mistyped.contains("field `id`"), "{mistyped}");
        let nested = Codec::Json
            .decode::<Vec<Row>>(br#"[{"id": 1, "name": "a"}, {"id": 2, "name": 3}]"#)
            .unwrap_err();
        assert!(nested.contains("field `[1].name`"), "{nested}");
    }
}
