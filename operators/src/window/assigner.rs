//! Window assigners: which windows an event time belongs to.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir_engine::{millis, EventTime, END_OF_TIME};

/// A window of event time, `[start, end)` in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Window {
    /// The first millisecond in the window.
    pub start: EventTime,
    /// The first millisecond after the window.
    pub end: EventTime,
}

impl Window {
    /// The last event time in the window: a window fires once the watermark passes it.
    pub fn max_timestamp(&self) -> EventTime {
        EventTime(self.end.millis().saturating_sub(1))
    }

    /// The window of `length` ms that starts `start` ms after the Unix epoch.
    fn starting_at(start: u64, length: u64) -> Window {
        Window {
            start: EventTime(start),
            end: EventTime(start.saturating_add(length)),
        }
    }

    /// Whether the two windows overlap or touch (sessions that do are one session).
    pub(crate) fn meets(&self, other: &Window) -> bool {
        self.start <= other.end && other.start <= self.end
    }

    /// The smallest window covering both.
    pub(crate) fn cover(&self, other: &Window) -> Window {
        Window {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// How records are grouped into windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Windows {
    /// Fixed-size windows of `size` ms, one after the other (a hopping window whose slide is
    /// its size).
    Tumbling {
        /// Window length in ms.
        size: u64,
    },
    /// Windows of `size` ms starting every `slide` ms; an event belongs to `size / slide`
    /// windows.
    Hopping {
        /// Window length in ms.
        size: u64,
        /// Distance between window starts in ms.
        slide: u64,
    },
    /// Per key, events less than `gap` ms apart form one session; sessions merge as events
    /// arrive between them.
    Session {
        /// The largest silence inside a session, in ms.
        gap: u64,
    },
    /// One window per key over all of event time: it fires when the input ends, or earlier
    /// through a trigger.
    Global,
}

/// Tumbling windows of `size`.
///
/// ```
/// use std::time::Duration;
/// use weir_engine::EventTime;
/// use weir_operators::window::{tumbling, Window};
/// let windows = tumbling(Duration::from_secs(10));
/// assert_eq!(
///     windows.assign(EventTime(12_345)),
///     vec![Window { start: EventTime(10_000), end: EventTime(20_000) }]
/// );
/// ```
pub fn tumbling(size: Duration) -> Windows {
    Windows::Tumbling {
        size: millis(size).max(1),
    }
}

/// Hopping (sliding) windows of `size`, a new one every `slide`.
///
/// ```
/// use std::time::Duration;
/// use weir_engine::EventTime;
/// use weir_operators::window::{hopping, Window};
/// let windows = hopping(Duration::from_secs(10), Duration::from_secs(5));
/// assert_eq!(
///     windows.assign(EventTime(12_000)),
///     vec![
///         Window { start: EventTime(5_000), end: EventTime(15_000) },
///         Window { start: EventTime(10_000), end: EventTime(20_000) },
///     ]
/// );
/// ```
pub fn hopping(size: Duration, slide: Duration) -> Windows {
    Windows::Hopping {
        size: millis(size).max(1),
        slide: millis(slide).max(1),
    }
}

/// Session windows that close after `gap` without events.
///
/// ```
/// use std::time::Duration;
/// use weir_engine::EventTime;
/// use weir_operators::window::{session, Window};
/// // Alone, an event opens a session of one gap; later events extend or merge it.
/// assert_eq!(
///     session(Duration::from_secs(10)).assign(EventTime(1_000)),
///     vec![Window { start: EventTime(1_000), end: EventTime(11_000) }]
/// );
/// ```
pub fn session(gap: Duration) -> Windows {
    Windows::Session {
        gap: millis(gap).max(1),
    }
}

/// One window per key holding every event; results come from a trigger, and once more when
/// the input ends.
///
/// ```
/// use weir_engine::{EventTime, END_OF_TIME};
/// use weir_operators::window::{global, Window};
/// assert_eq!(
///     global().assign(EventTime(1_000)),
///     vec![Window { start: EventTime::ZERO, end: END_OF_TIME }]
/// );
/// ```
pub fn global() -> Windows {
    Windows::Global
}

impl Windows {
    /// The windows an event at `event_time` belongs to, earliest first (for sessions, the
    /// event's own session before merging).
    pub fn assign(&self, event_time: EventTime) -> Vec<Window> {
        let time = event_time.millis();
        match *self {
            Windows::Tumbling { size } => vec![Window::starting_at(time - time % size, size)],
            Windows::Hopping { size, slide } => {
                let mut windows = Vec::new();
                let mut start = time - time % slide;
                loop {
                    if start.saturating_add(size) > time {
                        windows.push(Window::starting_at(start, size));
                    }
                    match start.checked_sub(slide) {
                        Some(earlier) if earlier.saturating_add(size) > time => start = earlier,
                        _ => break,
                    }
                }
                windows.reverse();
                windows
            }
            Windows::Session { gap } => vec![Window::starting_at(time, gap)],
            Windows::Global => vec![Window {
                start: EventTime::ZERO,
                end: END_OF_TIME,
            }],
        }
    }

    /// Whether windows merge (sessions).
    pub fn merges(&self) -> bool {
        matches!(self, Windows::Session { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn hopping_windows_are_exactly_those_holding_the_event(time in 0u64..1_000_000, size in 1u64..5_000, slide in 1u64..5_000) {
            let windows = Windows::Hopping { size, slide }.assign(EventTime(time));
            // Every window holds the event and starts on a slide boundary.
            for window in &windows {
                let (start, end) = (window.start.millis(), window.end.millis());
                prop_assert!(start <= time && time < end);
                prop_assert_eq!(start % slide, 0);
                prop_assert_eq!(end - start, size);
            }
            // And no other boundary-aligned window does.
            let expected = (0..=time / slide).filter(|k| k * slide + size > time).count();
            prop_assert_eq!(windows.len(), expected);
            prop_assert!(windows.windows(2).all(|pair| pair[0].start < pair[1].start));
        }
    }
}
