//! Where a query's events come from: the generator, a topic of the embedded log or of Kafka,
//! or a JSON lines file.

use std::path::PathBuf;
use std::time::Duration;

use weir::kafka::{KafkaClient, KafkaSource};
use weir::log::LogSource;
use weir::watermark::Watermarks;
use weir::{CheckRecords, JsonLinesSource, Pipeline, Stream};

use crate::{Event, EventDecoder, GeneratorConfig, NexmarkSource, Projection};

/// The events a query reads.
#[derive(Clone, Debug)]
pub enum EventInput {
    /// `events` events from the generator, spread over the workers.
    Generated {
        /// The generator's settings.
        config: GeneratorConfig,
        /// How many events.
        events: u64,
    },
    /// Every event of a topic, to its end.
    Log {
        /// The topic's directory.
        topic: PathBuf,
        /// How far behind the largest event time seen the watermark stays.
        disorder: Duration,
        /// At most this many events per second per worker (to replay at a steady pace).
        max_rate: Option<u64>,
    },
    /// Every event of a Kafka topic (JSON values) up to the ends its partitions had when the
    /// job first started; event times are the events' own.
    Kafka {
        /// The brokers, the topic and client settings.
        client: KafkaClient,
        /// How far behind the largest event time seen the watermark stays.
        disorder: Duration,
        /// At most this many events per second per worker (to replay at a steady pace).
        max_rate: Option<u64>,
    },
    /// Every event of a JSON lines file (lines that are not events are dead letters).
    JsonLines {
        /// The file.
        path: PathBuf,
        /// How far behind the largest event time seen the watermark stays.
        disorder: Duration,
    },
}

impl EventInput {
    /// The source of these events in `p`, every field decoded.
    pub fn stream<'s>(&self, p: &mut Pipeline<'s>) -> Stream<'s, Event> {
        self.stream_projected(p, Projection::ALL)
    }

    /// The source of these events in `p`, decoding only the strings `projection` asks for
    /// (generated events have all of theirs).
    pub fn stream_projected<'s>(
        &self,
        p: &mut Pipeline<'s>,
        projection: Projection,
    ) -> Stream<'s, Event> {
        let decoder = EventDecoder::new(projection);
        match self {
            EventInput::Generated { config, events } => {
                p.source(NexmarkSource::new(config.clone(), *events))
            }
            EventInput::Log {
                topic,
                disorder,
                max_rate,
            } => {
                let source = LogSource::<Event>::new(topic)
                    .decoder(decoder)
                    .watermarks(Watermarks::bounded(*disorder))
                    .until_end();
                p.source(match max_rate {
                    Some(rate) => source.max_rate(*rate),
                    None => source,
                })
            }
            EventInput::Kafka {
                client,
                disorder,
                max_rate,
            } => {
                let source = KafkaSource::<Event>::new(client.clone())
                    .decoder(decoder)
                    .watermarks(Watermarks::bounded(*disorder))
                    .event_time(Event::date_time)
                    .until_end();
                p.source(match max_rate {
                    Some(rate) => source.max_rate(*rate),
                    None => source,
                })
            }
            EventInput::JsonLines { path, disorder } => p.source(
                JsonLinesSource::<Event>::new(path)
                    .decoder(decoder)
                    .event_time(*disorder, Event::date_time),
            ),
        }
    }
}
