//! A scripted source for operator tests: each worker plays its list of records and
//! watermarks, so every record carries exactly the watermark the script says.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use weir_engine::{BoxError, EventTime, Source, SourcePoll, SourceReader, Timestamped, WorkerInfo};

/// One step of a scripted source: a record, or a watermark the source reaches.
#[derive(Clone, Debug)]
pub enum Step<T> {
    /// A record.
    Record(T),
    /// The watermark the source reaches.
    Watermark(EventTime),
}

/// Plays `steps[worker]` on each worker. After a watermark step it waits long enough for the
/// driver to publish that watermark before the next record, so every record carries exactly
/// the watermark the script says.
pub struct Script<T> {
    steps: Arc<Vec<Vec<Step<T>>>>,
}

impl<T> Clone for Script<T> {
    fn clone(&self) -> Self {
        Script {
            steps: Arc::clone(&self.steps),
        }
    }
}

impl<T> Script<T> {
    /// Plays `steps[w]` on worker `w` (nothing on workers beyond).
    pub fn new(steps: Vec<Vec<Step<T>>>) -> Self {
        Script {
            steps: Arc::new(steps),
        }
    }
}

pub struct ScriptReader<T> {
    steps: std::vec::IntoIter<Step<T>>,
    watermark: EventTime,
    hold_until: Option<std::time::Instant>,
}

/// The job's watermark interval for scripted runs.
pub const INTERVAL: Duration = Duration::from_millis(2);

impl<T: Clone + 'static> Source for Script<T> {
    type Item = T;
    type Reader = ScriptReader<T>;
    fn name(&self) -> String {
        "script".into()
    }
    fn open(self, worker: WorkerInfo) -> Result<ScriptReader<T>, BoxError> {
        let steps = self.steps.get(worker.index).cloned().unwrap_or_default();
        Ok(ScriptReader {
            steps: steps.into_iter(),
            watermark: 0,
            hold_until: None,
        })
    }
}

impl<T: 'static> SourceReader for ScriptReader<T> {
    type Item = T;
    fn poll(&mut self, out: &mut Vec<T>, max: usize) -> Result<SourcePoll, BoxError> {
        if let Some(until) = self.hold_until {
            if std::time::Instant::now() < until {
                return Ok(SourcePoll::Idle {
                    watermark: self.watermark,
                });
            }
            self.hold_until = None;
        }
        while out.len() < max {
            match self.steps.next() {
                Some(Step::Record(record)) => out.push(record),
                Some(Step::Watermark(watermark)) => {
                    self.watermark = watermark;
                    self.hold_until = Some(std::time::Instant::now() + INTERVAL * 5);
                    return Ok(SourcePoll::Idle { watermark });
                }
                None => return Ok(SourcePoll::Finished),
            }
        }
        Ok(SourcePoll::Ready {
            watermark: self.watermark,
        })
    }
}

/// Deals `records` round robin to `workers` scripts; each worker's watermark trails the
/// largest time it has emitted by `bound`, stepped after every `every`-th record that raised
/// it.
pub fn scripts<T: Clone + Timestamped>(
    records: &[T],
    workers: usize,
    bound: EventTime,
    every: usize,
) -> Vec<Vec<Step<T>>> {
    let mut steps = vec![Vec::new(); workers];
    let mut max_seen = vec![0; workers];
    for (index, record) in records.iter().enumerate() {
        let worker = index % workers;
        steps[worker].push(Step::Record(record.clone()));
        let at = record.event_time();
        if at > max_seen[worker] {
            max_seen[worker] = at;
            if index % every == 0 {
                steps[worker].push(Step::Watermark(at.saturating_sub(bound)));
            }
        }
    }
    steps
}
