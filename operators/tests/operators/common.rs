//! Scripted input for operator tests, on the engine's deterministic harness: each worker plays
//! its list of records and watermarks, so every record carries exactly the watermark the
//! script says, and nothing waits for the wall clock.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use weir_engine::testing::{TestInput, TestJob, TestSource};
use weir_engine::{BoxError, EventTime, JobConfig, JobMetrics, Pipeline, Timestamped};

/// One step of a scripted source: a record, or a watermark the source reaches.
#[derive(Clone, Debug)]
pub enum Step<T> {
    /// A record.
    Record(T),
    /// The watermark the source reaches, in milliseconds.
    Watermark(u64),
}

/// A harnessed job with `config` whose input plays `steps[w]` on worker `w` and then ends.
pub fn scripted<T: Send + 'static>(
    config: JobConfig,
    steps: Vec<Vec<Step<T>>>,
) -> (TestJob, TestInput<T>) {
    let mut job = TestJob::new(config).unwrap();
    let input = job.input("script");
    for (worker, steps) in steps.into_iter().enumerate() {
        for step in steps {
            match step {
                Step::Record(record) => input.push_to(worker, [record]),
                Step::Watermark(watermark) => {
                    input.advance_watermark_of(worker, EventTime(watermark))
                }
            }
        }
    }
    (job, input)
}

/// Runs the pipeline `build` makes over the scripted input to its end; returns the job's
/// counters.
pub fn run_script<T: Send + 'static>(
    config: JobConfig,
    steps: Vec<Vec<Step<T>>>,
    build: impl Fn(&mut Pipeline<'_>, TestSource<T>) -> Result<(), BoxError> + Send + Sync + 'static,
) -> Arc<JobMetrics> {
    let (mut job, input) = scripted(config, steps);
    job.build(move |p| build(p, input.source())).unwrap();
    job.run_to_end().unwrap();
    job.metrics()
}

/// Deals `records` round robin to `workers` scripts; each worker's watermark trails the
/// largest time it has emitted by `bound`, stepped after every `every`-th record that raised
/// it.
pub fn scripts<T: Clone + Timestamped>(
    records: &[T],
    workers: usize,
    bound: Duration,
    every: usize,
) -> Vec<Vec<Step<T>>> {
    let mut steps = vec![Vec::new(); workers];
    let mut max_seen = vec![EventTime::ZERO; workers];
    for (index, record) in records.iter().enumerate() {
        let worker = index % workers;
        steps[worker].push(Step::Record(record.clone()));
        let at = record.event_time();
        if at > max_seen[worker] {
            max_seen[worker] = at;
            if index % every == 0 {
                steps[worker].push(Step::Watermark(at.saturating_sub(bound).millis()));
            }
        }
    }
    steps
}
