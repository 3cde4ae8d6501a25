//! Entry point of the coverage-guided fuzzers (`fuzz/`) into the command line's value
//! parsers. Compiled only by `cargo fuzz`, which sets `cfg(fuzzing)`; see `fuzz/README.md`.

use weir::{datetime, EventTime};

use crate::arguments::{parse_duration, parse_time, Location};

/// Text as a location, a duration and an event time: each parse ends in a value or an
/// error, and a location or time (before the year 10000) printed back parses to itself.
pub fn arguments(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(location) = text.parse::<Location>() {
        assert_eq!(location.to_string().parse::<Location>(), Ok(location));
    }
    if let Err(error) = parse_duration(text) {
        assert!(!error.is_empty());
    }
    // Times after the year 9999 print with more year digits than the date form reads.
    const YEAR_10000: EventTime = EventTime(253_402_300_800_000);
    if let Some(time) = parse_time(text).ok().filter(|time| *time < YEAR_10000) {
        assert_eq!(parse_time(&datetime::format(time)), Ok(time), "{text:?}");
    }
}
