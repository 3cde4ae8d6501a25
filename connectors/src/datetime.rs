//! Event times as text: `"YYYY-MM-DD HH:MM:SS.mmm"` in UTC, the Nexmark JSON format.
//!
//! Written by hand rather than with a date library because the generator formats one per event
//! and this is on the hot path of `weir nexmark generate`.

use serde::{Deserialize, Deserializer, Serializer};
use weir_engine::EventTime;

const MILLIS_PER_DAY: u64 = 86_400_000;

/// Why a date-time text could not be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid date-time {text:?}: expected \"YYYY-MM-DD HH:MM:SS.mmm\" (UTC, at or after 1970)")]
pub struct DateTimeError {
    text: String,
}

/// Formats an event time as `"YYYY-MM-DD HH:MM:SS.mmm"`.
pub fn format(time: EventTime) -> String {
    let mut text = String::with_capacity(23);
    write(time, &mut text);
    text
}

/// Appends the formatted time to `out`.
pub fn write(time: EventTime, out: &mut String) {
    let millis = time.millis();
    let days = millis / MILLIS_PER_DAY;
    let in_day = millis % MILLIS_PER_DAY;
    let (year, month, day) = civil_from_days(days);
    if year > 9999 {
        // Only sentinels such as the end of time get here; keep every digit.
        out.push_str(&year.to_string());
        out.push('-');
    }
    let year_field = if year > 9999 {
        None
    } else {
        Some((year, 4, b'-'))
    };
    let fields = year_field.into_iter().chain([
        (month, 2, b'-'),
        (day, 2, b' '),
        (in_day / 3_600_000, 2, b':'),
        (in_day / 60_000 % 60, 2, b':'),
        (in_day / 1000 % 60, 2, b'.'),
        (in_day % 1000, 3, 0),
    ]);
    for (value, width, separator) in fields {
        let mut digits = [b'0'; 4];
        let mut rest = value;
        for slot in digits[..width].iter_mut().rev() {
            *slot = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        digits[..width]
            .iter()
            .for_each(|&d| out.push(char::from(d)));
        if separator != 0 {
            out.push(char::from(separator));
        }
    }
}

/// Parses `"YYYY-MM-DD HH:MM:SS.mmm"` (UTC) into milliseconds since the Unix epoch.
pub fn parse(text: &str) -> Result<EventTime, DateTimeError> {
    let error = || DateTimeError {
        text: text.to_owned(),
    };
    let bytes = text.as_bytes();
    if bytes.len() != 23 {
        return Err(error());
    }
    let number = |range: std::ops::Range<usize>| -> Result<u64, DateTimeError> {
        bytes[range].iter().try_fold(0u64, |acc, &b| {
            if b.is_ascii_digit() {
                Ok(acc * 10 + u64::from(b - b'0'))
            } else {
                Err(error())
            }
        })
    };
    let separators = [
        (4, b'-'),
        (7, b'-'),
        (10, b' '),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
    ];
    if separators.iter().any(|&(at, sep)| bytes[at] != sep) {
        return Err(error());
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second, milli) = (
        number(11..13)?,
        number(14..16)?,
        number(17..19)?,
        number(20..23)?,
    );
    if year < 1970 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(error());
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(error());
    }
    let days = days_from_civil(year, month, day);
    Ok(EventTime(
        days * MILLIS_PER_DAY + hour * 3_600_000 + minute * 60_000 + second * 1000 + milli,
    ))
}

fn is_leap(year: u64) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 to (year, month, day), for dates from 1970 on (Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year % 400;
    let shifted_month = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// serde support: text in human-readable formats (JSON), a plain integer in binary ones
/// (the exchange between processes), so that neither pays for the other.
pub mod serde_millis {
    use super::*;

    /// Serializes an event time.
    pub fn serialize<S: Serializer>(time: &EventTime, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            let mut text = String::with_capacity(23);
            write(*time, &mut text);
            serializer.serialize_str(&text)
        } else {
            serializer.serialize_u64(time.millis())
        }
    }

    /// Deserializes an event time.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<EventTime, D::Error> {
        if deserializer.is_human_readable() {
            let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
            parse(&text).map_err(serde::de::Error::custom)
        } else {
            u64::deserialize(deserializer).map(EventTime)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_dates() {
        assert_eq!(format(EventTime(0)), "1970-01-01 00:00:00.000");
        assert_eq!(
            format(EventTime(1_436_918_400_000)),
            "2015-07-15 00:00:00.000"
        );
        assert_eq!(
            format(EventTime(951_782_400_000 + 3_723_004)),
            "2000-02-29 01:02:03.004"
        );
        assert_eq!(
            parse("2015-07-15 00:00:00.000").unwrap(),
            EventTime(1_436_918_400_000)
        );
        // 10,000-01-01: years past 9999 keep all their digits.
        assert_eq!(
            format(EventTime(253_402_300_800_000)),
            "10000-01-01 00:00:00.000"
        );
    }

    #[test]
    fn rejects_malformed_text() {
        for text in [
            "2015-07-15T00:00:00.000",
            "2015-02-29 00:00:00.000",
            "2015-13-01 00:00:00.000",
            "2015-07-15 24:00:00.000",
            "2015-07-15 00:00:00",
            "1969-12-31 23:59:59.999",
            "2015-07-15 00:0a:00.000",
        ] {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.contains(text), "{error}");
        }
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(millis in 0u64..253_402_300_799_999) {
            prop_assert_eq!(parse(&format(EventTime(millis))).unwrap(), EventTime(millis));
        }
    }
}
