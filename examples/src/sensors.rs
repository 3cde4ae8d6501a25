//! Sensor rollups with late data: each device's readings averaged per minute of event time.
//! Readings arrive late (devices buffer them while offline): a reading up to 30 s behind the
//! watermark still updates its minute, which is emitted again; a later one goes to the late
//! output. Malformed readings (not JSON, a missing field, a temperature that is not a number
//! or out of the sensor's range) go to dead letters with the reason.
//!
//! ```text
//! readings (validated) -> key by device -> tumbling 1 min, allowed lateness 30 s
//!                      -> (Count, Sum, Min, Max) -> rollups (on time, then updates)
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir::datetime::serde_millis;
use weir::operators::aggregate::{Count, Max, Min, Sum};
use weir::operators::window::{tumbling, ResultKind, WindowExt};
use weir::{EventTime, KeyedOutput, Stream, Timestamped};

use crate::io::{SampleLine, SAMPLE_START};
use crate::random::SampleRng;
use crate::registry::Example;

/// The windows readings are rolled up in.
pub const WINDOW: Duration = Duration::from_secs(60);
/// How long after a window fires a late reading still updates it.
pub const ALLOWED_LATENESS: Duration = Duration::from_secs(30);
/// How far behind the newest reading the watermark stays.
pub const DISORDER: Duration = Duration::from_secs(5);
/// The temperatures the sensors can measure, in °C.
pub const RANGE: std::ops::RangeInclusive<f64> = -40.0..=125.0;

/// One reading of a device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// The device.
    pub device: String,
    /// The temperature, in °C.
    pub celsius: f64,
    /// When it was measured.
    #[serde(with = "serde_millis")]
    pub time: EventTime,
}

impl Timestamped for Reading {
    fn event_time(&self) -> EventTime {
        self.time
    }
}

impl Reading {
    /// The temperature in thousandths of a degree: sums of these do not depend on the order
    /// they are added in, as sums of floats would.
    pub fn millidegrees(&self) -> i64 {
        (self.celsius * 1000.0).round() as i64
    }
}

/// Rejects temperatures the sensor cannot have measured.
pub fn in_range(reading: &Reading) -> Result<(), String> {
    if RANGE.contains(&reading.celsius) {
        Ok(())
    } else {
        Err(format!(
            "celsius {} is outside the sensor's range {}..={}",
            reading.celsius,
            RANGE.start(),
            RANGE.end()
        ))
    }
}

/// One device's minute.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rollup {
    /// The device.
    pub device: String,
    /// The minute's first millisecond.
    #[serde(with = "serde_millis")]
    pub start: EventTime,
    /// The next minute's first millisecond.
    #[serde(with = "serde_millis")]
    pub end: EventTime,
    /// Readings in the minute.
    pub readings: u64,
    /// Their mean, in °C (to the thousandth of a degree).
    pub mean_celsius: f64,
    /// The lowest, in °C.
    pub min_celsius: f64,
    /// The highest, in °C.
    pub max_celsius: f64,
    /// Whether late readings changed it after it was first emitted (a later rollup of the
    /// same minute replaces this one).
    pub updated: bool,
}

/// Each device's rollup per minute: emitted when the watermark passes the minute, again for
/// every late reading within the allowed lateness; later readings are late.
pub fn rollups<'s>(readings: Stream<'s, Reading>) -> KeyedOutput<'s, Rollup, Reading> {
    let windows = readings
        .key_by(|reading| reading.device.clone())
        .window(tumbling(WINDOW))
        .allowed_lateness(ALLOWED_LATENESS)
        .aggregate((
            (Count, Sum::of(Reading::millidegrees)),
            (
                Min::of(Reading::millidegrees),
                Max::of(Reading::millidegrees),
            ),
        ));
    KeyedOutput {
        results: windows.results.map(|window| {
            let ((readings, sum), (min, max)) = window.value;
            let degrees = |millis: i64| millis as f64 / 1000.0;
            Rollup {
                device: window.key,
                start: window.start,
                end: window.end,
                readings,
                mean_celsius: (sum as f64 / readings as f64 * 1000.0).round() / 1e6,
                min_celsius: min.map_or(f64::NAN, degrees),
                max_celsius: max.map_or(f64::NAN, degrees),
                updated: window.kind == ResultKind::Update,
            }
        }),
        late: windows.late,
    }
}

/// `sensors` in the registry.
pub const SENSORS: Example = Example {
    name: "sensors",
    about: "Per-device temperature rollups per minute, with late readings and dead letters.",
    shows: "validation to dead letters, tumbling windows with allowed lateness (updates), \
            four aggregations at once, late output",
    results: "{device, start, end, readings, mean_celsius, min_celsius, max_celsius, updated} \
              per device and minute, again with updated=true when late readings change it; \
              readings later than the allowed lateness go to the late output; malformed \
              readings are dead letters",
    build: |p, input, output| {
        let rollups = rollups(input.read(p, DISORDER, in_range));
        output.append(rollups.results);
        output.late(rollups.late);
    },
    sample,
};

/// Readings of `records / 200` devices (at least one), each every 2 to 8 seconds, around
/// 20 °C. One in twenty arrives 5 to 40 s late (some within the allowed lateness, some
/// after it), one in three hundred 3 minutes late; one in a hundred is malformed: not JSON,
/// no device, a temperature of "n/a", or 999 °C.
fn sample(seed: u64, records: u64) -> Vec<SampleLine> {
    let mut rng = SampleRng::new(seed);
    let devices = (records / 200).max(1);
    let mut now = vec![SAMPLE_START.millis(); devices as usize];
    let mut readings: Vec<(u64, SampleLine)> = Vec::new();
    for _ in 0..records {
        let device = rng.below(devices) as usize;
        now[device] += 2_000 + rng.below(6_000);
        let time = now[device];
        let reading = Reading {
            device: format!("sensor-{device:03}"),
            celsius: (15_000 + rng.below(10_000)) as f64 / 1000.0,
            time: EventTime(time),
        };
        let mut line = SampleLine::json(&reading.device, &reading);
        if rng.percent(1) {
            line.text = match rng.below(4) {
                0 => line.text[..line.text.len() / 2].to_owned(),
                1 => line.text.replacen("\"device\"", "\"dev\"", 1),
                2 => line.text.replacen(
                    &format!("\"celsius\":{}", reading.celsius),
                    "\"celsius\":\"n/a\"",
                    1,
                ),
                _ => line.text.replacen(
                    &format!("\"celsius\":{}", reading.celsius),
                    "\"celsius\":999.0",
                    1,
                ),
            };
        }
        let delay = if rng.percent(1) && rng.percent(33) {
            3 * 60_000
        } else if rng.percent(5) {
            5_000 + rng.below(35_000)
        } else {
            0
        };
        readings.push((time + delay, line));
    }
    readings.sort_by_key(|(arrival, line)| (*arrival, line.key.clone()));
    readings.into_iter().map(|(_, line)| line).collect()
}
