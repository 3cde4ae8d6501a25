//! The keyed operator's timers: processing-time timers fire when processing time reaches
//! them, while the input is still open (on the harness's clock, exactly then and once); a
//! watermark that fires more keys than one batch of results fires each exactly once, with or
//! without checkpoints, while more input arrives.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use weir_engine::testing::TestJob;
use weir_engine::{
    CheckpointConfig, CollectSink, EventTime, IterSource, Job, JobConfig, KeyedContext,
    KeyedProcess, ProcessingTime, Stream,
};

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

/// Counts each key's records per second of event time, emitting `(key, second, count)` when
/// the watermark passes the second's end. Its state is the counts of the seconds still open.
struct CountPerSecond;

impl KeyedProcess<u64, (u64, EventTime)> for CountPerSecond {
    type State = Vec<(u64, u64)>;
    type Output = (u64, u64, u64);
    fn on_record(
        &mut self,
        cx: &mut KeyedContext<u64, (u64, u64, u64), (u64, EventTime)>,
        _: &u64,
        open: &mut Vec<(u64, u64)>,
        _: (u64, EventTime),
        at: EventTime,
    ) {
        let second = at.millis() / 1_000;
        match open.iter_mut().find(|(open, _)| *open == second) {
            Some((_, count)) => *count += 1,
            None => open.push((second, 1)),
        }
        cx.set_timer(EventTime(second * 1_000 + 999));
    }
    fn on_timer(
        &mut self,
        cx: &mut KeyedContext<u64, (u64, u64, u64), (u64, EventTime)>,
        key: &u64,
        open: &mut Vec<(u64, u64)>,
        time: EventTime,
    ) {
        let second = time.millis() / 1_000;
        open.retain(|&(open, count)| {
            if open == second {
                cx.emit((*key, second, count));
            }
            open != second
        });
    }
    fn is_empty(&self, open: &Vec<(u64, u64)>) -> bool {
        open.is_empty()
    }
}

/// Each key's records counted per second of event time.
fn count_per_second<'s>(records: Stream<'s, (u64, EventTime)>) -> Stream<'s, (u64, u64, u64)> {
    records
        .key_by(|(key, _)| *key)
        .process("count", |(_, at)| *at, CountPerSecond)
        .results
}

/// More keys than one batch of a firing's results (16 Ki) holds, several times over.
const MANY_KEYS: u64 = 70_000;

/// `(key, second, 1)` for every key and each of `seconds`, sorted.
fn once_per_key(seconds: &[u64]) -> Vec<(u64, u64, u64)> {
    let mut expected: Vec<_> = (0..MANY_KEYS)
        .flat_map(|key| seconds.iter().map(move |second| (key, *second, 1)))
        .collect();
    expected.sort();
    expected
}

#[test]
fn a_watermark_that_fires_many_keys_fires_each_once_while_input_arrives() {
    let mut job = TestJob::new(JobConfig::default().workers(2)).unwrap();
    let input = job.input::<(u64, EventTime)>("keys");
    let sink = CollectSink::new();
    let fired = sink.results();
    let source = input.clone();
    job.build(move |p| {
        count_per_second(p.source(source.source())).sink(sink.clone());
        Ok(())
    })
    .unwrap();

    // Every key once in second 0; then, in one go, the watermark past it and every key once
    // in second 1, which must not count into second 0 however the firing is split.
    input.push((0..MANY_KEYS).map(|key| (key, EventTime(10))));
    job.run().unwrap();
    input.advance_watermark(EventTime(1_000));
    input.push((0..MANY_KEYS).map(|key| (key, EventTime(1_010))));
    job.run().unwrap();
    let mut first = fired.lock().unwrap().clone();
    first.sort();
    assert_eq!(first, once_per_key(&[0]), "second 0, each key once");

    job.run_to_end().unwrap();
    let mut all = fired.lock().unwrap().clone();
    all.sort();
    assert_eq!(all, once_per_key(&[0, 1]));
}

#[test]
fn a_firing_of_many_keys_at_the_end_is_checkpointed_whole() {
    let dir = tempfile::tempdir().unwrap();
    let config = JobConfig::default()
        .workers(2)
        .state_dir(dir.path().join("state"))
        .checkpoints(
            CheckpointConfig::new(dir.path().join("checkpoints"))
                .interval(Duration::from_millis(10)),
        );
    let sink = CollectSink::new();
    let fired = sink.results();
    Job::new(config)
        .run(move |p| {
            let records = (0..MANY_KEYS).map(|key| (key, EventTime(10)));
            count_per_second(p.source(IterSource::new("keys", records))).sink(sink.clone());
            Ok(())
        })
        .unwrap();
    let mut all = fired.lock().unwrap().clone();
    all.sort();
    assert_eq!(all, once_per_key(&[0]));
}
