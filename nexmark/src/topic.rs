//! Filling a log topic with generated events, so that benchmarks read real bytes.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use weir::log::{LogConfig, RecordRef, Topic, ValueFormat};
use weir::Codec;
use weir::ConnectorError;

use super::generator::{Generator, GeneratorConfig};

/// The schema name of topics holding binary-encoded [`Event`](super::Event)s.
pub const EVENT_SCHEMA: &str = "nexmark.Event";

/// Records appended between progress updates.
const PROGRESS_STEP: u64 = 16 * 1024;

/// Creates a topic of `partitions` partitions in `dir` and appends events `0..events` to it,
/// event `id` to partition `id % partitions` (so each partition is in event-time order),
/// binary-encoded and stamped with their event times. Partitions are written in parallel;
/// `progress` counts the events written.
pub fn write_events_to_topic(
    dir: impl Into<PathBuf>,
    partitions: u32,
    config: &GeneratorConfig,
    events: u64,
    progress: &AtomicU64,
) -> Result<Topic, ConnectorError> {
    let format = ValueFormat::Binary {
        schema: EVENT_SCHEMA.into(),
    };
    let topic = Topic::create(dir, partitions, format, LogConfig::default())?;
    let generator = Generator::new(config.clone());
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(partitions as usize);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let (topic, generator) = (&topic, &generator);
                scope.spawn(move || -> Result<(), ConnectorError> {
                    for partition in (0..partitions).filter(|p| *p as usize % threads == thread) {
                        let mut writer = topic.writer(partition)?;
                        let mut value = Vec::with_capacity(1024);
                        let mut since_progress = 0;
                        for id in (u64::from(partition)..events).step_by(partitions as usize) {
                            let event = generator.event(id);
                            value.clear();
                            Codec::Binary.encode(&event, &mut value).map_err(|reason| {
                                ConnectorError::BadLog {
                                    path: topic.partition_dir(partition),
                                    reason,
                                }
                            })?;
                            writer.append(&RecordRef {
                                value: &value,
                                timestamp: event.date_time(),
                                ..RecordRef::default()
                            })?;
                            since_progress += 1;
                            if since_progress == PROGRESS_STEP {
                                progress.fetch_add(since_progress, Ordering::Relaxed);
                                since_progress = 0;
                            }
                        }
                        writer.sync()?;
                        progress.fetch_add(since_progress, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().try_for_each(|handle| {
            handle.join().unwrap_or_else(|_| {
                Err(ConnectorError::io(
                    topic.dir(),
                    std::io::Error::other("a writer thread panicked"),
                ))
            })
        })
    })?;
    Ok(topic)
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir::log::LogSource;
    use weir::{CollectSink, Job, JobConfig};

    #[test]
    fn a_filled_topic_holds_exactly_the_generators_events() {
        let dir = tempfile::tempdir().unwrap();
        let config = GeneratorConfig::default();
        let topic = write_events_to_topic(
            dir.path().join("events"),
            3,
            &config,
            1000,
            &AtomicU64::new(0),
        )
        .unwrap();
        let sink = CollectSink::new();
        let results = sink.results();
        let topic_dir = topic.dir().to_owned();
        Job::new(JobConfig::default())
            .run(move |p| {
                p.source(LogSource::<crate::Event>::new(&topic_dir).until_end())
                    .sink(sink.clone());
                Ok(())
            })
            .unwrap();
        let generator = Generator::new(config);
        let mut read: Vec<String> = results
            .lock()
            .unwrap()
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect();
        let mut expected: Vec<String> = (0..1000)
            .map(|id| serde_json::to_string(&generator.event(id)).unwrap())
            .collect();
        read.sort();
        expected.sort();
        assert_eq!(read, expected);
        assert_eq!(topic.offsets(1).unwrap(), (0, 333));
    }
}
