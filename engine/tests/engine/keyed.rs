//! The keyed operator's processing-time timers fire when processing time reaches them, while
//! the input is still open: on the harness's clock, exactly then and once.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use weir_engine::testing::TestJob;
use weir_engine::{CollectSink, EventTime, JobConfig, KeyedContext, KeyedProcess, ProcessingTime};

/// Emits, from a processing-time timer 50 ms after each record, the processing time it fired
/// at.
struct Alarm;

impl KeyedProcess<u64, u64> for Alarm {
    type State = bool;
    type Output = ProcessingTime;
    fn on_record(
        &mut self,
        cx: &mut KeyedContext<u64, ProcessingTime, u64>,
        _: &u64,
        armed: &mut bool,
        _: u64,
        _: EventTime,
    ) {
        *armed = true;
        cx.set_processing_timer(cx.now() + Duration::from_millis(50));
    }
    fn on_timer(
        &mut self,
        _: &mut KeyedContext<u64, ProcessingTime, u64>,
        _: &u64,
        _: &mut bool,
        _: EventTime,
    ) {
    }
    fn on_processing_timer(
        &mut self,
        cx: &mut KeyedContext<u64, ProcessingTime, u64>,
        _: &u64,
        armed: &mut bool,
        _: ProcessingTime,
    ) {
        *armed = false;
        cx.emit(cx.now());
    }
    fn is_empty(&self, armed: &bool) -> bool {
        !*armed
    }
}

#[test]
fn a_processing_time_timer_fires_when_the_clock_reaches_it_while_the_input_is_open() {
    let mut job = TestJob::new(JobConfig::default()).unwrap();
    job.set_clock(ProcessingTime(1_000));
    let input = job.input::<u64>("numbers");
    let sink = CollectSink::new();
    let fired = sink.results();
    let source = input.clone();
    job.build(move |p| {
        p.source(source.source())
            .key_by(|n| *n)
            .process("alarm", |_| EventTime(0), Alarm)
            .results
            .sink(sink.clone());
        Ok(())
    })
    .unwrap();

    input.push([7]);
    job.run().unwrap();
    assert!(fired.lock().unwrap().is_empty());
    job.advance_clock(Duration::from_millis(49));
    job.run().unwrap();
    assert!(fired.lock().unwrap().is_empty(), "not before its time");
    job.advance_clock(Duration::from_millis(1));
    job.run().unwrap();
    assert_eq!(
        *fired.lock().unwrap(),
        vec![ProcessingTime(1_050)],
        "at its time, the input open"
    );

    job.run_to_end().unwrap();
    assert_eq!(*fired.lock().unwrap(), vec![ProcessingTime(1_050)], "once");
}
