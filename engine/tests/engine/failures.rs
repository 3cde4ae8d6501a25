//! A failing source or sink fails the whole job with its name, on every worker count, without
//! hanging and without publishing output as if it were complete.

// Test helpers panic on purpose: a failed set-up step is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use weir_engine::{
    BoxError, EngineError, EventTime, IterSource, Job, JobConfig, Sink, Source, SourcePoll,
    SourceReader, WorkerInfo,
};

/// A source that fails to open on one worker only.
struct FailsOnWorker(usize);

impl Source for FailsOnWorker {
    type Item = u64;
    type Reader = Counting;
    fn name(&self) -> String {
        "flaky".into()
    }
    fn open(self, worker: WorkerInfo) -> Result<Counting, BoxError> {
        if worker.index == self.0 {
            return Err("partition 3 is missing".into());
        }
        Ok(Counting(0))
    }
}

/// Emits 0..100_000, then finishes.
struct Counting(u64);

impl SourceReader for Counting {
    type Item = u64;
    fn poll(&mut self, out: &mut Vec<u64>, max: usize) -> Result<SourcePoll, BoxError> {
        let end = (self.0 + max as u64).min(100_000);
        out.extend(self.0..end);
        self.0 = end;
        Ok(if end == 100_000 {
            SourcePoll::Finished
        } else {
            SourcePoll::Ready {
                watermark: EventTime(0),
            }
        })
    }
}

#[test]
fn a_source_failing_on_one_worker_fails_the_job_with_its_name() {
    for workers in [1, 2, 3] {
        let error = Job::new(JobConfig::default().workers(workers))
            .run(|p| {
                p.source(FailsOnWorker(0)).sink(Recorder::default());
                Ok(())
            })
            .unwrap_err();
        assert!(
            matches!(&error, EngineError::Source { name, worker: 0, .. } if name == "flaky"),
            "{error}"
        );
        assert!(error.to_string().contains("partition 3 is missing"));
    }
}

/// What a sink was asked to do, shared by its clones.
#[derive(Clone, Default)]
struct Recorder {
    calls: Arc<Mutex<Vec<String>>>,
    fail_on_write: bool,
}

impl Sink<u64> for Recorder {
    fn name(&self) -> String {
        "recorder".into()
    }
    fn open(&mut self, _worker: WorkerInfo) -> Result<(), BoxError> {
        self.calls.lock().unwrap().push("open".into());
        Ok(())
    }
    fn write(&mut self, _records: &[u64]) -> Result<(), BoxError> {
        if self.fail_on_write {
            return Err("disk full".into());
        }
        Ok(())
    }
    fn close(&mut self) -> Result<(), BoxError> {
        self.calls.lock().unwrap().push("close".into());
        Ok(())
    }
    fn abort(&mut self) {
        self.calls.lock().unwrap().push("abort".into());
    }
}

#[test]
fn sinks_close_once_when_the_input_ends_even_if_it_was_empty() {
    let recorder = Recorder::default();
    let calls = Arc::clone(&recorder.calls);
    Job::new(JobConfig::default().workers(2))
        .run(move |p| {
            p.source(IterSource::new("nothing", Vec::<u64>::new()))
                .sink(recorder.clone());
            Ok(())
        })
        .unwrap();
    // Two workers, each opening and closing its own sink once, in either interleaving.
    let mut calls = calls.lock().unwrap().clone();
    calls.sort();
    assert_eq!(calls, ["close", "close", "open", "open"]);
}

#[test]
fn a_failing_sink_aborts_instead_of_closing() {
    let recorder = Recorder {
        fail_on_write: true,
        ..Recorder::default()
    };
    let calls = Arc::clone(&recorder.calls);
    let error = Job::new(JobConfig::default())
        .run(move |p| {
            p.source(IterSource::new("numbers", 0..10u64))
                .sink(recorder.clone());
            Ok(())
        })
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("sink \"recorder\" failed on worker 0: disk full"),
        "{error}"
    );
    assert_eq!(*calls.lock().unwrap(), ["open", "abort"]);
}
