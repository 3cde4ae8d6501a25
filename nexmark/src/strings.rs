//! Faster decoding of the strings events carry: shared strings (`Arc<str>`) with one
//! allocation instead of serde's two, and long strings checked for UTF-8 with SIMD.

use std::fmt;
use std::sync::Arc;

use serde::de::{Deserializer, Error, Visitor};

/// Deserializes a string straight into an `Arc<str>` (for `#[serde(deserialize_with)]`):
/// serde's own `Arc<str>` goes through a `Box<str>` first, a second allocation and copy.
pub(crate) fn shared_str<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Arc<str>, D::Error> {
    decode_text(deserializer, |text| Arc::from(text))
}

/// Deserializes a long string (the padding fields that make up most of an event).
pub(crate) fn long_string<'de, D, S>(deserializer: D) -> Result<S, D::Error>
where
    D: Deserializer<'de>,
    S: for<'a> From<&'a str>,
{
    decode_text(deserializer, |text| S::from(text))
}

/// Decodes a string into `T` through `make`. Binary input is checked for UTF-8 with SIMD,
/// several times faster than the standard library; binary formats write strings and bytes
/// alike (a length, then the bytes), so the encoding does not change.
fn decode_text<'de, D, T>(deserializer: D, make: fn(&str) -> T) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct Text<T>(fn(&str) -> T);
    impl<T> Visitor<'_> for Text<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_bytes<E: Error>(self, bytes: &[u8]) -> Result<T, E> {
            simdutf8::basic::from_utf8(bytes)
                .map(self.0)
                .map_err(|_| E::custom("a string that is not UTF-8"))
        }
        fn visit_str<E: Error>(self, text: &str) -> Result<T, E> {
            Ok((self.0)(text))
        }
    }
    if deserializer.is_human_readable() {
        deserializer.deserialize_str(Text(make))
    } else {
        deserializer.deserialize_bytes(Text(make))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Padded {
        #[serde(deserialize_with = "long_string")]
        extra: String,
        #[serde(deserialize_with = "shared_str")]
        channel: Arc<str>,
    }

    #[test]
    fn binary_and_json_decode_alike_and_bad_utf8_is_refused() {
        let value = Padded {
            extra: "padding ü".repeat(20),
            channel: Arc::from("Google"),
        };
        let binary = postcard::to_stdvec(&value).unwrap();
        assert_eq!(postcard::from_bytes::<Padded>(&binary).unwrap(), value);
        let json = serde_json::to_string(&value).unwrap();
        assert_eq!(serde_json::from_str::<Padded>(&json).unwrap(), value);
        let mut broken = binary.clone();
        broken[3] = 0xff;
        assert!(postcard::from_bytes::<Padded>(&broken).is_err());
    }
}
