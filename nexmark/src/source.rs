//! The generator as a source: each worker generates its own share of the event ids.

use weir::{BoxError, Source, SourcePoll, SourceReader, WorkerInfo};

use super::generator::{Generator, GeneratorConfig};
use super::model::Event;

/// Consecutive event ids a worker generates before moving to its next share; small enough that
/// the workers' watermarks stay close, large enough to keep each worker on its own cache lines.
const CHUNK: u64 = 1024;

/// A source of the first `events` Nexmark events. Worker `w` of `n` generates the chunks of
/// [`CHUNK`] ids whose chunk number is `w` modulo `n`; its watermark is the lowest event time
/// any id at or after the next one in its current chunk can have.
///
/// ```
/// use weir_nexmark::{GeneratorConfig, NexmarkSource};
/// use weir::{CollectSink, Job, JobConfig};
///
/// let sink = CollectSink::new();
/// let events = sink.results();
/// Job::new(JobConfig::default().workers(2))
///     .run(move |p| {
///         p.source(NexmarkSource::new(GeneratorConfig::default(), 5_000))
///             .sink(sink.clone());
///         Ok(())
///     })
///     .unwrap();
/// assert_eq!(events.lock().unwrap().len(), 5_000);
/// ```
#[derive(Clone, Debug)]
pub struct NexmarkSource {
    config: GeneratorConfig,
    events: u64,
}

impl NexmarkSource {
    /// The first `events` events of the generator with `config`.
    pub fn new(config: GeneratorConfig, events: u64) -> Self {
        NexmarkSource { config, events }
    }
}

impl Source for NexmarkSource {
    type Item = Event;
    type Reader = NexmarkReader;

    fn name(&self) -> String {
        "nexmark".into()
    }

    fn open(self, worker: WorkerInfo) -> Result<NexmarkReader, BoxError> {
        let chunk_start = (worker.index as u64).saturating_mul(CHUNK);
        Ok(NexmarkReader {
            generator: Generator::new(self.config),
            events: self.events,
            chunk_start,
            next_id: chunk_start,
            stride: (worker.peers as u64).saturating_mul(CHUNK),
        })
    }
}

/// One worker's share of a [`NexmarkSource`].
pub struct NexmarkReader {
    generator: Generator,
    events: u64,
    /// First id of the chunk being generated.
    chunk_start: u64,
    next_id: u64,
    /// Distance from the start of one of this worker's chunks to the start of its next.
    stride: u64,
}

impl SourceReader for NexmarkReader {
    type Item = Event;

    fn poll(&mut self, out: &mut Vec<Event>, max: usize) -> Result<SourcePoll, BoxError> {
        for _ in 0..max {
            if self.next_id == self.chunk_start.saturating_add(CHUNK) {
                self.chunk_start = self.chunk_start.saturating_add(self.stride);
                self.next_id = self.chunk_start;
            }
            if self.next_id >= self.events {
                return Ok(SourcePoll::Finished);
            }
            out.push(self.generator.event(self.next_id));
            self.next_id += 1;
        }
        Ok(SourcePoll::Ready {
            watermark: self.generator.watermark_before(self.next_id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use weir::EventTime;

    /// The event ids each worker reads, checking on the way that no event is below the
    /// watermark its reader reported before it.
    fn ids_per_worker(peers: usize, events: u64) -> Vec<Vec<u64>> {
        let config = GeneratorConfig {
            max_disorder_ms: 30,
            ..GeneratorConfig::default()
        };
        let generator = Generator::new(config.clone());
        let id_of: HashMap<String, u64> = (0..events)
            .map(|id| (serde_json::to_string(&generator.event(id)).unwrap(), id))
            .collect();
        (0..peers)
            .map(|index| {
                let source = NexmarkSource::new(config.clone(), events);
                let mut reader = source.open(WorkerInfo { index, peers }).unwrap();
                let (mut out, mut watermark) = (Vec::new(), EventTime::ZERO);
                loop {
                    let before = out.len();
                    let status = reader.poll(&mut out, 700).unwrap();
                    assert!(out[before..].iter().all(|e| e.date_time() >= watermark));
                    match status {
                        SourcePoll::Ready { watermark: next } => {
                            assert!(next >= watermark);
                            watermark = next;
                        }
                        SourcePoll::Waiting { .. } | SourcePoll::Idle => {
                            unreachable!("the generator is never idle")
                        }
                        SourcePoll::Finished => break,
                    }
                }
                out.iter()
                    .map(|event| id_of[&serde_json::to_string(event).unwrap()])
                    .collect()
            })
            .collect()
    }

    #[test]
    fn workers_share_the_ids_exactly_once() {
        // Includes no events at all, and more workers than chunks.
        for (peers, events) in [(1, 3000), (2, 5000), (3, 2049), (1, 0), (4, 100)] {
            let mut ids: Vec<u64> = ids_per_worker(peers, events).concat();
            ids.sort_unstable();
            let in_order = ids
                .iter()
                .zip(0..events)
                .all(|(id, expected)| *id == expected);
            assert!(ids.len() as u64 == events && in_order, "{peers} workers");
        }
    }
}
