//! How keyed state is keyed outside memory, in the RocksDB store and in checkpoint files:
//!
//! ```text
//! state: operator:u32be | key group:u32be | key (postcard)
//! timer: operator:u32be with bit 31 set | key group:u32be | kind:u8 | time:u64be | key
//! ```
//!
//! Big-endian numbers first keep a key group's entries contiguous in the store, which moves
//! them between workers when a job is rescaled.

use serde::de::DeserializeOwned;

use super::StateError;
use crate::key_group::KeyGroup;

/// Set in the operator part of a key that holds a timer instead of state.
const TIMER_FLAG: u32 = 1 << 31;

/// What a keyed operator's timer waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum TimerKind {
    /// The watermark passing its time.
    Event,
    /// Processing time reaching its time.
    Processing,
}

impl TimerKind {
    /// The byte that stands for this kind in a stored timer.
    fn byte(self) -> u8 {
        match self {
            TimerKind::Event => 0,
            TimerKind::Processing => 1,
        }
    }

    fn from_byte(byte: u8) -> Option<TimerKind> {
        match byte {
            0 => Some(TimerKind::Event),
            1 => Some(TimerKind::Processing),
            _ => None,
        }
    }
}

/// The bytes before the encoded key of a state entry.
pub(crate) fn state_prefix(operator: u32, key_group: KeyGroup) -> [u8; 8] {
    let mut prefix = [0; 8];
    prefix[..4].copy_from_slice(&operator.to_be_bytes());
    prefix[4..].copy_from_slice(&key_group.to_be_bytes());
    prefix
}

/// The bytes before the encoded key of a timer.
pub(crate) fn timer_prefix(
    operator: u32,
    key_group: KeyGroup,
    kind: TimerKind,
    time: u64,
) -> [u8; 17] {
    let mut prefix = [0; 17];
    prefix[..8].copy_from_slice(&state_prefix(operator | TIMER_FLAG, key_group));
    prefix[8] = kind.byte();
    prefix[9..].copy_from_slice(&time.to_be_bytes());
    prefix
}

/// The first bytes of every timer of `operator`.
pub(crate) fn timers_of(operator: u32) -> [u8; 4] {
    (operator | TIMER_FLAG).to_be_bytes()
}

/// The operator of a stored key, and whether the key holds a timer.
pub(crate) fn operator_of(stored: &[u8]) -> Option<(u32, bool)> {
    let operator = u32::from_be_bytes(*stored.first_chunk::<4>()?);
    Some((operator & !TIMER_FLAG, operator & TIMER_FLAG != 0))
}

/// The key group of a stored key.
pub(crate) fn key_group_of(stored: &[u8]) -> Option<KeyGroup> {
    stored
        .get(4..8)
        .and_then(|bytes| <[u8; 4]>::try_from(bytes).ok())
        .map(u32::from_be_bytes)
}

/// The key of a stored state entry.
pub(crate) fn decode_state_key<K: DeserializeOwned>(stored: &[u8]) -> Result<K, StateError> {
    let encoded = stored
        .get(8..)
        .ok_or_else(|| StateError::Decode(format!("malformed state key {stored:02x?}")))?;
    postcard::from_bytes(encoded).map_err(|error| StateError::Decode(error.to_string()))
}

/// The kind, time and key of a stored timer.
pub(crate) fn decode_timer<K: DeserializeOwned>(
    stored: &[u8],
) -> Result<(TimerKind, u64, K), StateError> {
    let bad = || StateError::Decode(format!("malformed timer key {stored:02x?}"));
    let kind = stored
        .get(8)
        .and_then(|&byte| TimerKind::from_byte(byte))
        .ok_or_else(bad)?;
    let time = stored
        .get(9..17)
        .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(bad)?;
    let key = postcard::from_bytes(&stored[17..])
        .map_err(|error| StateError::Decode(error.to_string()))?;
    Ok((kind, time, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_say_whose_they_are() {
        let mut timer = timer_prefix(7, 3, TimerKind::Processing, 99).to_vec();
        timer.extend(postcard::to_stdvec(&42u64).unwrap());
        assert_eq!(operator_of(&timer), Some((7, true)));
        assert_eq!(key_group_of(&timer), Some(3));
        assert_eq!(
            decode_timer::<u64>(&timer).unwrap(),
            (TimerKind::Processing, 99, 42)
        );
        timer[8] = 2;
        assert!(
            decode_timer::<u64>(&timer).is_err(),
            "an unknown timer kind"
        );
        let mut state = state_prefix(7, 5).to_vec();
        state.extend(postcard::to_stdvec(&"k").unwrap());
        assert_eq!(operator_of(&state), Some((7, false)));
        assert_eq!(key_group_of(&state), Some(5));
        assert_eq!(decode_state_key::<String>(&state).unwrap(), "k");
        assert!(timer.starts_with(&timers_of(7)));
    }
}
