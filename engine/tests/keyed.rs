//! The keyed operator's processing-time timers fire on the wall clock while the input is
//! still open, not only when it ends.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_engine::{
    BoxError, CollectSink, EventTime, Job, JobConfig, KeyedContext, KeyedProcess, Source,
    SourcePoll, SourceReader, WorkerInfo,
};

/// One record, then silence for a while, then the end.
struct Slow {
    finished: Arc<AtomicBool>,
}

struct SlowReader {
    sent: bool,
    started: Instant,
    finished: Arc<AtomicBool>,
}

impl Source for Slow {
    type Item = u64;
    type Reader = SlowReader;
    fn name(&self) -> String {
        "slow".into()
    }
    fn open(self, _worker: WorkerInfo) -> Result<SlowReader, BoxError> {
        Ok(SlowReader {
            sent: false,
            started: Instant::now(),
            finished: self.finished,
        })
    }
}

impl SourceReader for SlowReader {
    type Item = u64;
    fn poll(&mut self, out: &mut Vec<u64>, _max: usize) -> Result<SourcePoll, BoxError> {
        if !self.sent {
            self.sent = true;
            out.push(7);
        }
        if self.started.elapsed() < Duration::from_millis(800) {
            return Ok(SourcePoll::Idle { watermark: 0 });
        }
        self.finished.store(true, Ordering::SeqCst);
        Ok(SourcePoll::Finished)
    }
}

/// Emits, from a processing-time timer 50 ms after the record, whether the input had ended.
struct Alarm {
    finished: Arc<AtomicBool>,
}

impl KeyedProcess<u64, u64> for Alarm {
    type State = bool;
    type Output = bool;
    fn on_record(
        &mut self,
        cx: &mut KeyedContext<u64, bool, u64>,
        _: &u64,
        armed: &mut bool,
        _: u64,
        _: EventTime,
    ) {
        *armed = true;
        cx.set_processing_timer(cx.now() + 50);
    }
    fn on_timer(
        &mut self,
        _: &mut KeyedContext<u64, bool, u64>,
        _: &u64,
        _: &mut bool,
        _: EventTime,
    ) {
    }
    fn on_processing_timer(
        &mut self,
        cx: &mut KeyedContext<u64, bool, u64>,
        _: &u64,
        armed: &mut bool,
        _: u64,
    ) {
        *armed = false;
        cx.emit(self.finished.load(Ordering::SeqCst));
    }
    fn is_empty(&self, armed: &bool) -> bool {
        !*armed
    }
}

#[test]
fn a_processing_time_timer_fires_before_the_input_ends() {
    let sink = CollectSink::new();
    let fired = sink.results();
    let finished = Arc::new(AtomicBool::new(false));
    Job::new(JobConfig::default())
        .run(move |p| {
            let (results, _late) = p
                .source(Slow {
                    finished: Arc::clone(&finished),
                })
                .key_by(|n| *n)
                .process(
                    "alarm",
                    |_| 0,
                    Alarm {
                        finished: Arc::clone(&finished),
                    },
                );
            results.sink(sink.clone());
            Ok(())
        })
        .unwrap();
    assert_eq!(
        *fired.lock().unwrap(),
        vec![false],
        "fired once, while the input was open"
    );
}
