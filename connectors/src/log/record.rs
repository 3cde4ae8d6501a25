//! The on-disk record frame: a checked header, then a checked body.
//!
//! ```text
//! frame  = len:u32 body_crc:u32 header_crc:u32 body          (little-endian)
//! body   = offset:u64 timestamp:u64 key_len:u32 value_len:u32 header_count:u16
//!          key value (name_len:u16 name value_len:u32 value)*
//! ```
//! `header_crc` covers the eight bytes before it, so a damaged length is told apart from a
//! record cut short by a crash: the first is corruption, the second a torn tail.

use weir_engine::EventTime;

/// Bytes before the body: length, body CRC, header CRC.
pub(crate) const FRAME_HEADER: usize = 12;
/// Bytes of the body before its variable parts.
const BODY_FIXED: usize = 8 + 8 + 4 + 4 + 2;
/// The largest body a frame may declare; anything above is a damaged header.
pub(crate) const MAX_BODY: usize = 64 << 20;

/// A record to append: borrowed key, value and headers, and its event time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// The record's key (empty for none); the partitioner hashes it.
    pub key: &'a [u8],
    /// The payload.
    pub value: &'a [u8],
    /// Event time in milliseconds since the Unix epoch.
    pub timestamp: EventTime,
    /// Optional named headers.
    pub headers: &'a [(&'a str, &'a [u8])],
}

/// A record read back from a partition, borrowing the reader's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// The record's offset: its number in the partition, from 0.
    pub offset: u64,
    /// Event time in milliseconds since the Unix epoch.
    pub timestamp: EventTime,
    /// The key (empty for none).
    pub key: &'a [u8],
    /// The payload.
    pub value: &'a [u8],
    header_count: u16,
    header_bytes: &'a [u8],
}

impl<'a> RecordView<'a> {
    /// The record's headers, in the order they were written.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        let mut rest = self.header_bytes;
        // The layout was validated when the frame was decoded.
        (0..self.header_count).filter_map(move |_| {
            let (name, after_name) = take_prefixed::<2>(rest)?;
            let (value, after_value) = take_prefixed::<4>(after_name)?;
            rest = after_value;
            Some((std::str::from_utf8(name).ok()?, value))
        })
    }
}

/// Appends the frame of `record` at `offset` to `buffer`.
pub(crate) fn encode(buffer: &mut Vec<u8>, offset: u64, record: &RecordRef<'_>) {
    let start = buffer.len();
    buffer.extend_from_slice(&[0; FRAME_HEADER]);
    buffer.extend_from_slice(&offset.to_le_bytes());
    buffer.extend_from_slice(&record.timestamp.millis().to_le_bytes());
    buffer.extend_from_slice(&(record.key.len() as u32).to_le_bytes());
    buffer.extend_from_slice(&(record.value.len() as u32).to_le_bytes());
    buffer.extend_from_slice(&(record.headers.len() as u16).to_le_bytes());
    buffer.extend_from_slice(record.key);
    buffer.extend_from_slice(record.value);
    for (name, value) in record.headers {
        buffer.extend_from_slice(&(name.len() as u16).to_le_bytes());
        buffer.extend_from_slice(name.as_bytes());
        buffer.extend_from_slice(&(value.len() as u32).to_le_bytes());
        buffer.extend_from_slice(value);
    }
    let body_len = (buffer.len() - start - FRAME_HEADER) as u32;
    let body_crc = crc32c::crc32c(&buffer[start + FRAME_HEADER..]);
    buffer[start..start + 4].copy_from_slice(&body_len.to_le_bytes());
    buffer[start + 4..start + 8].copy_from_slice(&body_crc.to_le_bytes());
    let header_crc = crc32c::crc32c(&buffer[start..start + 8]);
    buffer[start + 8..start + 12].copy_from_slice(&header_crc.to_le_bytes());
}

/// Checks a record's limits before it is written, so that every frame on disk decodes.
pub(crate) fn check_limits(record: &RecordRef<'_>) -> Result<(), String> {
    let headers: usize = record
        .headers
        .iter()
        .map(|(name, value)| 6 + name.len() + value.len())
        .sum();
    let body = BODY_FIXED + record.key.len() + record.value.len() + headers;
    if body > MAX_BODY {
        return Err(format!(
            "a record of {body} bytes exceeds the limit of {MAX_BODY}"
        ));
    }
    if record.headers.len() > usize::from(u16::MAX) {
        return Err(format!(
            "{} headers exceed the limit of 65535",
            record.headers.len()
        ));
    }
    match record
        .headers
        .iter()
        .find(|(name, _)| name.len() > usize::from(u16::MAX))
    {
        Some((name, _)) => Err(format!("header name of {} bytes is too long", name.len())),
        None => Ok(()),
    }
}

/// What [`decode`] found at a position of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// A whole, intact record, and the position after it.
    Record(RecordView<'a>, usize),
    /// The buffer ends inside this frame (`needed` bytes from the frame's start would hold it).
    Incomplete {
        /// Bytes from the frame's start to its end, once the header is known.
        needed: Option<usize>,
    },
    /// The frame is damaged; the reason says how.
    Damaged(String),
}

/// Decodes the frame starting at `position` of `buffer`.
pub(crate) fn decode(buffer: &[u8], position: usize) -> Frame<'_> {
    let rest = &buffer[position.min(buffer.len())..];
    if rest.len() < FRAME_HEADER {
        return Frame::Incomplete { needed: None };
    }
    let len = u32_at(rest, 0) as usize;
    let body_crc = u32_at(rest, 4);
    if crc32c::crc32c(&rest[..8]) != u32_at(rest, 8) {
        return Frame::Damaged("the record header fails its checksum".into());
    }
    if !(BODY_FIXED..=MAX_BODY).contains(&len) {
        return Frame::Damaged(format!("the record header declares {len} body bytes"));
    }
    let Some(body) = rest.get(FRAME_HEADER..FRAME_HEADER + len) else {
        return Frame::Incomplete {
            needed: Some(FRAME_HEADER + len),
        };
    };
    if crc32c::crc32c(body) != body_crc {
        return Frame::Damaged("the record body fails its checksum".into());
    }
    match parse_body(body) {
        Some(view) => Frame::Record(view, position + FRAME_HEADER + len),
        None => Frame::Damaged("the record body's lengths do not add up".into()),
    }
}

fn parse_body(body: &[u8]) -> Option<RecordView<'_>> {
    let offset = u64::from_le_bytes(body.get(0..8)?.try_into().ok()?);
    let timestamp = u64::from_le_bytes(body.get(8..16)?.try_into().ok()?);
    let key_len = u32_at(body, 16) as usize;
    let value_len = u32_at(body, 20) as usize;
    let header_count = u16::from_le_bytes(body.get(24..26)?.try_into().ok()?);
    let key_end = BODY_FIXED.checked_add(key_len)?;
    let value_end = key_end.checked_add(value_len)?;
    let key = body.get(BODY_FIXED..key_end)?;
    let value = body.get(key_end..value_end)?;
    let header_bytes = body.get(value_end..)?;
    let mut rest = header_bytes;
    for _ in 0..header_count {
        let (name, after_name) = take_prefixed::<2>(rest)?;
        std::str::from_utf8(name).ok()?;
        rest = take_prefixed::<4>(after_name)?.1;
    }
    rest.is_empty().then_some(RecordView {
        offset,
        timestamp: EventTime(timestamp),
        key,
        value,
        header_count,
        header_bytes,
    })
}

/// Splits `bytes` into a slice prefixed by an `N`-byte little-endian length and the rest.
fn take_prefixed<const N: usize>(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut len = [0u8; 8];
    len[..N].copy_from_slice(bytes.get(..N)?);
    let end = N.checked_add(usize::try_from(u64::from_le_bytes(len)).ok()?)?;
    Some((bytes.get(N..end)?, bytes.get(end..)?))
}

/// Reads a little-endian u32 at `at`; callers have checked the length.
fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn frames_round_trip(
            offset: u64,
            timestamp: u64,
            key in proptest::collection::vec(any::<u8>(), 0..40),
            value in proptest::collection::vec(any::<u8>(), 0..300),
            headers in proptest::collection::vec(("[a-z]{0,8}", proptest::collection::vec(any::<u8>(), 0..20)), 0..4),
        ) {
            let header_refs: Vec<(&str, &[u8])> =
                headers.iter().map(|(name, value)| (name.as_str(), value.as_slice())).collect();
            let record = RecordRef { key: &key, value: &value, timestamp: EventTime(timestamp), headers: &header_refs };
            let mut buffer = vec![7u8; 3];
            encode(&mut buffer, offset, &record);
            let Frame::Record(view, end) = decode(&buffer, 3) else {
                panic!("the frame did not decode");
            };
            prop_assert_eq!(end, buffer.len());
            prop_assert_eq!((view.offset, view.timestamp.millis(), view.key, view.value), (offset, timestamp, &key[..], &value[..]));
            prop_assert_eq!(view.headers().collect::<Vec<_>>(), header_refs);
            // Every cut inside the frame is incomplete, never damaged.
            for cut in 3..buffer.len() {
                let is_incomplete = matches!(decode(&buffer[..cut], 3), Frame::Incomplete { .. });
                prop_assert!(is_incomplete);
            }
        }

        #[test]
        fn any_flipped_bit_is_damage(position in 0usize..60, bit in 0u8..8) {
            let record = RecordRef { key: b"k", value: b"a value of some bytes", timestamp: EventTime(5), headers: &[("h", b"v")] };
            let mut buffer = Vec::new();
            encode(&mut buffer, 9, &record);
            let position = position % buffer.len();
            buffer[position] ^= 1 << bit;
            let is_damaged = matches!(decode(&buffer, 0), Frame::Damaged(_));
            prop_assert!(is_damaged);
        }
    }
}
