//! Word count: how often each word occurs in a stream of chat messages, as a running total per
//! word (results that update) and per minute of event time (results that append).
//!
//! ```text
//! messages -> words -> key by word -> running count         (word-count)
//!                                  -> count per 1-minute window (word-count-windowed)
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir::datetime::serde_millis;
use weir::operators::aggregate::Count;
use weir::operators::changelog::Change;
use weir::operators::updating::RunningExt;
use weir::operators::window::{tumbling, WindowExt};
use weir::{EventTime, KeyedOutput, Stream, Timestamped};

use crate::io::{any, SampleLine, SAMPLE_START};
use crate::random::SampleRng;
use crate::registry::Example;

/// How far behind the newest message one may arrive and still count in its minute.
pub const DISORDER: Duration = Duration::from_secs(5);
/// The windows of the windowed count.
pub const WINDOW: Duration = Duration::from_secs(60);

/// One chat message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// When it was sent.
    #[serde(with = "serde_millis")]
    pub time: EventTime,
    /// What it says.
    pub text: String,
}

impl Timestamped for Message {
    fn event_time(&self) -> EventTime {
        self.time
    }
}

/// One word of a message, with the message's time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Word {
    /// The word, lower case.
    pub word: String,
    /// When its message was sent.
    #[serde(with = "serde_millis")]
    pub time: EventTime,
}

impl Timestamped for Word {
    fn event_time(&self) -> EventTime {
        self.time
    }
}

/// A word's running total.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WordCount {
    /// The word.
    pub word: String,
    /// How often it occurred so far.
    pub count: u64,
}

/// A word's count in one minute.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WindowedCount {
    /// The word.
    pub word: String,
    /// The minute's first millisecond.
    #[serde(with = "serde_millis")]
    pub start: EventTime,
    /// The next minute's first millisecond.
    #[serde(with = "serde_millis")]
    pub end: EventTime,
    /// How often the word occurred in it.
    pub count: u64,
}

/// The words of `text`: runs of letters, digits and apostrophes, lower case.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
}

/// The words of every message.
fn split<'s>(messages: Stream<'s, Message>) -> Stream<'s, Word> {
    messages.flat_map(|message| {
        let time = message.time;
        words(&message.text)
            .map(|word| Word { word, time })
            .collect::<Vec<_>>()
    })
}

/// Each word's running total: a new total replaces the word's last one.
pub fn running_count<'s>(messages: Stream<'s, Message>) -> Stream<'s, Change<WordCount>> {
    split(messages)
        .key_by(|word| word.word.clone())
        .aggregate_running(Count)
        .map(|change| change.map(|(word, count)| WordCount { word, count }))
}

/// Each word's count per minute, emitted once the minute is over; words of a minute already
/// emitted are late.
pub fn windowed_count<'s>(messages: Stream<'s, Message>) -> KeyedOutput<'s, WindowedCount, Word> {
    let counts = split(messages)
        .key_by(|word| word.word.clone())
        .window(tumbling(WINDOW))
        .aggregate(Count);
    KeyedOutput {
        results: counts.results.map(|window| WindowedCount {
            word: window.key,
            start: window.start,
            end: window.end,
            count: window.value,
        }),
        late: counts.late,
    }
}

/// `word-count` in the registry.
pub const WORD_COUNT: Example = Example {
    name: "word-count",
    about: "Running count of every word in a stream of chat messages.",
    shows: "flat_map, key_by, aggregate_running (Count), upsert_view",
    results: "{word, count}: the last count of each word (with --changelog, every change)",
    build: |p, input, output| {
        let messages = input.read(p, DISORDER, any);
        output.updates(running_count(messages), |row: &WordCount| row.word.clone());
    },
    sample,
};

/// `word-count-windowed` in the registry.
pub const WORD_COUNT_WINDOWED: Example = Example {
    name: "word-count-windowed",
    about: "Count of every word per minute of event time in a stream of chat messages.",
    shows: "flat_map, key_by, tumbling windows (Count), late output",
    results: "{word, start, end, count} per word and minute; words of messages later than \
              their minute go to the late output",
    build: |p, input, output| {
        let counts = windowed_count(input.read(p, DISORDER, any));
        output.append(counts.results);
        output.late(counts.late);
    },
    sample,
};

/// What the sample messages say: a small vocabulary, so that counts add up.
const VOCABULARY: &[&str] = &[
    "the",
    "stream",
    "is",
    "late",
    "again",
    "window",
    "fires",
    "when",
    "watermark",
    "passes",
    "Kafka",
    "log",
    "checkpoint",
    "restore",
    "exactly",
    "once",
    "state",
    "key",
    "join",
    "merge",
];

/// Chat messages, a few every second, some a few seconds out of order and about one in a
/// hundred more than a minute late.
fn sample(seed: u64, records: u64) -> Vec<SampleLine> {
    let mut rng = SampleRng::new(seed);
    let mut now = SAMPLE_START.millis();
    (0..records)
        .map(|id| {
            now += rng.below(400);
            let time = if rng.percent(1) {
                now.saturating_sub(60_000 + rng.below(60_000))
            } else if rng.percent(10) {
                now.saturating_sub(rng.below(DISORDER.as_millis() as u64))
            } else {
                now
            };
            let length = 1 + rng.below(8);
            let text = (0..length)
                .map(|_| *rng.pick(VOCABULARY))
                .collect::<Vec<_>>()
                .join(if rng.percent(20) { ", " } else { " " });
            let message = Message {
                time: EventTime(time),
                text,
            };
            SampleLine::json(id, &message)
        })
        .collect()
}
