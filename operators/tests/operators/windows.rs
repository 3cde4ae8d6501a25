//! Windows against a plain reference: out-of-order input within the bound gives the same
//! results as in-order input, on 1 and 2 workers; late records update windows within the
//! allowed lateness and go to the late output beyond it; empty windows emit nothing.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::common::run_script;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use weir_engine::testing::TestJob;
use weir_engine::{
    BoxError, CollectSink, EventTime, Job, JobConfig, Source, SourcePoll, SourceReader,
    Timestamped, WorkerInfo,
};
use weir_operators::aggregate::{Count, Sum};
use weir_operators::window::{
    global, hopping, session, tumbling, Firing, ResultKind, Trigger, WindowExt, WindowResult,
    Windows,
};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Reading {
    sensor: u32,
    /// Event time in milliseconds.
    at: u64,
    value: u64,
}

impl Timestamped for Reading {
    fn event_time(&self) -> EventTime {
        EventTime(self.at)
    }
}

type Key = (u32, u64, u64);
type Step = crate::common::Step<Reading>;

/// Runs a windowed sum of `value` per sensor; returns every result and the late readings.
fn run(
    steps: Vec<Vec<Step>>,
    windows: Windows,
    lateness: Duration,
) -> (Vec<WindowResult<u32, u64>>, Vec<Reading>, u64) {
    let results = CollectSink::new();
    let late = CollectSink::new();
    let (results_out, late_out) = (results.results(), late.results());
    let workers = steps.len();
    let metrics = run_script(
        JobConfig::default().workers(workers),
        steps,
        move |p, script| {
            let output = p
                .source(script)
                .key_by(|reading| reading.sensor)
                .window(windows)
                .allowed_lateness(lateness)
                .aggregate(Sum::of(|reading: &Reading| reading.value));
            output.results.sink(results.clone());
            output.late.sink(late.clone());
            Ok(())
        },
    );
    let results = results_out.lock().unwrap().clone();
    let late = late_out.lock().unwrap().clone();
    (results, late, metrics.late_records())
}

/// The last result per (key, window): what a consumer applying updates ends up with.
fn final_results(results: &[WindowResult<u32, u64>]) -> BTreeMap<Key, u64> {
    results
        .iter()
        .map(|r| ((r.key, r.start.millis(), r.end.millis()), r.value))
        .collect()
}

/// The reference: windows of in-order readings, computed directly.
fn reference(readings: &[Reading], windows: Windows) -> BTreeMap<Key, u64> {
    let mut sums = BTreeMap::new();
    match windows {
        Windows::Session { gap } => {
            let mut by_sensor: BTreeMap<u32, Vec<&Reading>> = BTreeMap::new();
            for reading in readings {
                by_sensor.entry(reading.sensor).or_default().push(reading);
            }
            for (sensor, mut readings) in by_sensor {
                readings.sort_by_key(|r| r.at);
                let mut current: Option<(u64, u64, u64)> = None;
                for reading in readings {
                    current = match current {
                        Some((start, end, sum)) if reading.at <= end => {
                            Some((start, end.max(reading.at + gap), sum + reading.value))
                        }
                        other => {
                            if let Some((start, end, sum)) = other {
                                sums.insert((sensor, start, end), sum);
                            }
                            Some((reading.at, reading.at + gap, reading.value))
                        }
                    };
                }
                if let Some((start, end, sum)) = current {
                    sums.insert((sensor, start, end), sum);
                }
            }
        }
        _ => {
            for reading in readings {
                for window in windows.assign(EventTime(reading.at)) {
                    *sums
                        .entry((reading.sensor, window.start.millis(), window.end.millis()))
                        .or_default() += reading.value;
                }
            }
        }
    }
    sums
}

/// Readings dealt to scripts, a watermark step after every fifth.
fn scripts(emitted: &[Reading], workers: usize, bound: u64) -> Vec<Vec<Step>> {
    crate::common::scripts(emitted, workers, Duration::from_millis(bound), 5)
}

fn readings_strategy() -> impl Strategy<Value = (Vec<Reading>, Vec<usize>)> {
    (
        proptest::collection::vec((0u32..4, 0u64..400, 1u64..10), 1..60),
        proptest::collection::vec(0usize..1000, 60),
    )
        .prop_map(|(raw, shuffle)| {
            // In event-time order, 50 ms apart on average.
            let mut at = 0;
            let readings = raw
                .into_iter()
                .map(|(sensor, step, value)| {
                    at += step / 4;
                    Reading { sensor, at, value }
                })
                .collect();
            (readings, shuffle)
        })
}

/// Reorders in-order readings so that none comes more than `bound` ms after a later one.
fn disorder(readings: &[Reading], shuffle: &[usize], bound: u64) -> Vec<Reading> {
    let mut keyed: Vec<(u64, usize, Reading)> = readings
        .iter()
        .enumerate()
        .map(|(index, reading)| {
            (
                reading.at + (shuffle[index % shuffle.len()] as u64 % (bound + 1)),
                index,
                reading.clone(),
            )
        })
        .collect();
    keyed.sort_by_key(|(delayed, index, _)| (*delayed, *index));
    keyed.into_iter().map(|(_, _, reading)| reading).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn disorder_within_the_bound_changes_no_window(
        (readings, shuffle) in readings_strategy(),
        which in 0usize..3,
        workers in 1usize..3,
    ) {
        let bound = 100;
        let windows = [tumbling(Duration::from_millis(200)), hopping(Duration::from_millis(300), Duration::from_millis(100)), session(Duration::from_millis(60))][which];
        let emitted = disorder(&readings, &shuffle, bound);
        let (results, late, late_count) = run(scripts(&emitted, workers, bound), windows, Duration::ZERO);
        prop_assert!(late.is_empty(), "nothing is late within the bound: {late:?}");
        prop_assert_eq!(late_count, 0);
        prop_assert!(results.iter().all(|r| r.kind == ResultKind::OnTime));
        // One result per window, equal to the reference (empty windows emit nothing).
        prop_assert_eq!(results.len(), final_results(&results).len());
        prop_assert_eq!(final_results(&results), reference(&readings, windows));
    }
}

fn reading(sensor: u32, at: u64, value: u64) -> Step {
    Step::Record(Reading { sensor, at, value })
}

#[test]
fn late_records_update_within_the_lateness_and_go_to_the_late_output_beyond_it() {
    let steps = vec![vec![
        reading(1, 100, 1),
        reading(1, 900, 2),
        reading(2, 1_500, 4),
        Step::Watermark(1_200), // fires [0, 1000) for sensor 1: sum 3
        reading(1, 950, 8),     // 250 ms late, within 500 ms: update to 11
        Step::Watermark(1_600),
        reading(1, 400, 16), // [0, 1000) ends 600 ms before the watermark: beyond 500 ms
        reading(2, 1_100, 32), // its window [1000, 2000) has not fired: counts normally
        Step::Watermark(5_000),
        reading(2, 7_000, 64), // an empty window [2000, 7000) in between: no output for it
    ]];
    let (results, late, late_count) = run(
        steps,
        tumbling(Duration::from_secs(1)),
        Duration::from_millis(500),
    );
    let sensor1: Vec<_> = results
        .iter()
        .filter(|r| r.key == 1)
        .map(|r| (r.start.millis(), r.value, r.kind == ResultKind::Update))
        .collect();
    assert_eq!(sensor1, vec![(0, 3, false), (0, 11, true)]);
    let sensor2: Vec<_> = results
        .iter()
        .filter(|r| r.key == 2)
        .map(|r| (r.start.millis(), r.value, r.kind == ResultKind::Update))
        .collect();
    assert_eq!(sensor2, vec![(1_000, 36, false), (7_000, 64, false)]);
    assert_eq!(
        late,
        vec![Reading {
            sensor: 1,
            at: 400,
            value: 16
        }]
    );
    assert_eq!(late_count, 1);
}

#[test]
fn without_lateness_every_record_behind_a_closed_window_is_late() {
    let steps = vec![vec![
        reading(1, 100, 1),
        Step::Watermark(1_000),
        reading(1, 999, 2),
        reading(1, 1_000, 4),
    ]];
    let (results, late, _) = run(steps, tumbling(Duration::from_secs(1)), Duration::ZERO);
    assert_eq!(
        final_results(&results),
        BTreeMap::from([((1, 0, 1_000), 1), ((1, 1_000, 2_000), 4)])
    );
    assert_eq!(
        late,
        vec![Reading {
            sensor: 1,
            at: 999,
            value: 2
        }]
    );
}

#[test]
fn a_late_record_bridging_two_fired_sessions_merges_them_into_an_update() {
    let steps = vec![vec![
        reading(1, 0, 1),
        reading(1, 200, 2),
        Step::Watermark(400), // sessions [0, 100) and [200, 300) fire
        reading(1, 100, 4),   // bridges them within the lateness
    ]];
    let (results, late, _) = run(
        steps,
        session(Duration::from_millis(100)),
        Duration::from_secs(1),
    );
    assert!(late.is_empty());
    let emitted: Vec<_> = results
        .iter()
        .map(|r| {
            (
                r.start.millis(),
                r.end.millis(),
                r.value,
                r.kind == ResultKind::Update,
            )
        })
        .collect();
    assert_eq!(
        emitted,
        vec![(0, 100, 1, false), (200, 300, 2, false), (0, 300, 7, true)]
    );
}

#[test]
fn counts_match_on_one_and_two_workers() {
    let readings: Vec<Reading> = (0..2_000u64)
        .map(|n| Reading {
            sensor: (n % 7) as u32,
            at: n * 3,
            value: 1,
        })
        .collect();
    let count = |workers: usize| {
        let results = CollectSink::new();
        let out = results.results();
        let steps = scripts(&readings, workers, 0);
        run_script(
            JobConfig::default().workers(workers),
            steps,
            move |p, script| {
                let counts = p
                    .source(script)
                    .key_by(|r| r.sensor)
                    .window(tumbling(Duration::from_millis(500)))
                    .aggregate(Count);
                counts.results.sink(results.clone());
                Ok(())
            },
        );
        let results: Vec<WindowResult<u32, u64>> = out.lock().unwrap().clone();
        results
            .iter()
            .map(|r| ((r.key, r.start.millis(), r.end.millis()), r.value))
            .collect::<BTreeMap<_, _>>()
    };
    let one = count(1);
    assert_eq!(one.values().sum::<u64>(), 2_000);
    assert_eq!(one, count(2));
}

/// Runs a triggered sum over one worker's script and returns (start, value, kind) rows.
fn run_triggered(
    steps: Vec<Step>,
    windows: Windows,
    trigger: fn() -> Trigger<Reading>,
    firing: Firing,
) -> Vec<(u64, u64, ResultKind)> {
    let results = CollectSink::new();
    let out = results.results();
    run_script(JobConfig::default(), vec![steps], move |p, script| {
        p.source(script)
            .key_by(|reading| reading.sensor)
            .window(windows)
            .trigger(trigger(), firing)
            .aggregate(Sum::of(|reading: &Reading| reading.value))
            .results
            .sink(results.clone());
        Ok(())
    });
    let rows: Vec<WindowResult<u32, u64>> = out.lock().unwrap().clone();
    rows.iter()
        .map(|r| (r.start.millis(), r.value, r.kind))
        .collect()
}

fn five_readings() -> Vec<Step> {
    (1..=5).map(|n| reading(1, n * 10, n)).collect()
}

#[test]
fn a_record_count_trigger_fires_early_then_on_time_accumulating_or_retracting() {
    use ResultKind::*;
    let accumulating = run_triggered(
        five_readings(),
        tumbling(Duration::from_secs(1)),
        || Trigger::Records(2),
        Firing::Accumulating,
    );
    assert_eq!(
        accumulating,
        vec![(0, 3, Early), (0, 10, Early), (0, 15, OnTime)]
    );
    let retracting = run_triggered(
        five_readings(),
        tumbling(Duration::from_secs(1)),
        || Trigger::Records(2),
        Firing::Retracting,
    );
    assert_eq!(
        retracting,
        vec![
            (0, 3, Early),
            (0, 3, Retraction),
            (0, 10, Early),
            (0, 10, Retraction),
            (0, 15, OnTime)
        ]
    );
    // Adding up a retracting stream (retractions negative) gives the final value.
    let total: i64 = retracting
        .iter()
        .map(|&(_, v, kind)| {
            if kind == Retraction {
                -(v as i64)
            } else {
                v as i64
            }
        })
        .sum();
    assert_eq!(total, 15);
}

#[test]
fn a_global_window_fires_on_its_custom_trigger_and_when_the_input_ends() {
    use ResultKind::*;
    // Fire whenever a reading is a multiple of 2.
    let rows = run_triggered(
        five_readings(),
        global(),
        || Trigger::When(Box::new(|r: &Reading| r.value.is_multiple_of(2))),
        Firing::Accumulating,
    );
    assert_eq!(rows, vec![(0, 3, Early), (0, 10, Early), (0, 15, OnTime)]);
}

#[test]
fn an_interval_trigger_fires_when_processing_time_passes_the_interval() {
    use ResultKind::*;
    let mut job = TestJob::new(JobConfig::default()).unwrap();
    let readings = job.input::<Reading>("readings");
    let results = CollectSink::new();
    let out = results.results();
    let source = readings.clone();
    job.build(move |p| {
        p.source(source.source())
            .key_by(|reading| reading.sensor)
            .window(tumbling(Duration::from_secs(1)))
            .trigger(
                Trigger::Interval(Duration::from_millis(20)),
                Firing::Accumulating,
            )
            .aggregate(Sum::of(|reading: &Reading| reading.value))
            .results
            .sink(results.clone());
        Ok(())
    })
    .unwrap();
    let rows = || -> Vec<(u64, u64, ResultKind)> {
        let rows: Vec<WindowResult<u32, u64>> = out.lock().unwrap().clone();
        rows.iter()
            .map(|r| (r.start.millis(), r.value, r.kind))
            .collect()
    };

    readings.push([Reading {
        sensor: 1,
        at: 10,
        value: 1,
    }]);
    job.run().unwrap();
    job.advance_clock(Duration::from_millis(19));
    job.run().unwrap();
    assert_eq!(rows(), vec![], "not before the interval has passed");
    job.advance_clock(Duration::from_millis(1));
    job.run().unwrap();
    assert_eq!(rows(), vec![(0, 1, Early)], "once the interval has passed");

    readings.push([Reading {
        sensor: 1,
        at: 20,
        value: 2,
    }]);
    job.run_to_end().unwrap();
    let rows = rows();
    assert_eq!(rows.first(), Some(&(0, 1, Early)), "{rows:?}");
    assert_eq!(rows.last(), Some(&(0, 3, OnTime)), "{rows:?}");
}

/// Worker 0 reads sensor 1 up to 5 s of event time, then waits for the first window to fire;
/// worker 1 reads one reading and then has nothing more (its partitions idle: dormant). Both
/// give up after 10 s, and say so.
#[derive(Clone)]
struct OneIdleWorker {
    fired: Arc<std::sync::atomic::AtomicBool>,
    gave_up: Arc<std::sync::atomic::AtomicBool>,
}

struct OneIdleReader {
    worker: usize,
    source: OneIdleWorker,
    sent: bool,
    started: std::time::Instant,
}

impl Source for OneIdleWorker {
    type Item = Reading;
    type Reader = OneIdleReader;
    fn name(&self) -> String {
        "one idle worker".into()
    }
    fn open(self, worker: WorkerInfo) -> Result<OneIdleReader, BoxError> {
        Ok(OneIdleReader {
            worker: worker.index,
            source: self,
            sent: false,
            started: std::time::Instant::now(),
        })
    }
}

impl SourceReader for OneIdleReader {
    type Item = Reading;
    fn poll(&mut self, out: &mut Vec<Reading>, _max: usize) -> Result<SourcePoll, BoxError> {
        use std::sync::atomic::Ordering;
        let timed_out = self.started.elapsed() > Duration::from_secs(10);
        if timed_out {
            self.source.gave_up.store(true, Ordering::SeqCst);
        }
        let done = self.source.fired.load(Ordering::SeqCst) || timed_out;
        if !self.sent {
            self.sent = true;
            if self.worker == 1 {
                out.push(Reading {
                    sensor: 2,
                    at: 100,
                    value: 1,
                });
                return Ok(SourcePoll::Ready {
                    watermark: EventTime(100),
                });
            }
            out.extend((0..50).map(|n| Reading {
                sensor: 1,
                at: n * 100,
                value: 1,
            }));
            return Ok(SourcePoll::Ready {
                watermark: EventTime(4_900),
            });
        }
        Ok(match (done, self.worker) {
            (true, _) => SourcePoll::Finished,
            (false, 1) => SourcePoll::Idle,
            (false, _) => SourcePoll::Waiting {
                watermark: EventTime(4_900),
            },
        })
    }
}

/// The one test here on the wall clock: a worker idle for real, and a job that runs until a
/// window fires. It checks its watermark often.
const INTERVAL: Duration = Duration::from_millis(2);

#[test]
fn windows_fire_while_a_worker_is_idle() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let source = OneIdleWorker {
        fired: Arc::new(AtomicBool::new(false)),
        gave_up: Arc::new(AtomicBool::new(false)),
    };
    let gave_up = Arc::clone(&source.gave_up);
    let results = CollectSink::new();
    let out = results.results();
    Job::new(JobConfig {
        workers: 2,
        watermark_interval: INTERVAL,
        ..JobConfig::default()
    })
    .run(move |p| {
        let fired = Arc::clone(&source.fired);
        p.source(source.clone())
            .key_by(|reading| reading.sensor)
            .window(tumbling(Duration::from_secs(1)))
            .aggregate(Count)
            .results
            .inspect(move |_| fired.store(true, Ordering::SeqCst))
            .sink(results.clone());
        Ok(())
    })
    .unwrap();
    assert!(
        !gave_up.load(Ordering::SeqCst),
        "no window fired while worker 1 was idle"
    );
    let rows: Vec<WindowResult<u32, u64>> = out.lock().unwrap().clone();
    assert_eq!(final_results(&rows).get(&(1, 0, 1_000)), Some(&10));
    assert_eq!(final_results(&rows).get(&(2, 0, 1_000)), Some(&1));
}

#[test]
fn state_in_rocksdb_under_a_tiny_budget_gives_the_same_windows() {
    let readings: Vec<Reading> = (0..3_000u64)
        .map(|n| Reading {
            sensor: (n * 7 % 500) as u32,
            at: n * 5 + (n % 3) * 40,
            value: n % 10,
        })
        .collect();
    let run_with = |backend: weir_engine::StateBackend, windows: Windows| {
        let dir = tempfile::tempdir().unwrap();
        let results = CollectSink::new();
        let out = results.results();
        let config = JobConfig::default()
            .workers(2)
            .state_dir(dir.path())
            .state_backend(backend);
        run_script(config, scripts(&readings, 2, 100), move |p, script| {
            p.source(script)
                .key_by(|r| r.sensor)
                .window(windows)
                .aggregate(Sum::of(|r: &Reading| r.value))
                .results
                .sink(results.clone());
            Ok(())
        });
        let rows: Vec<WindowResult<u32, u64>> = out.lock().unwrap().clone();
        final_results(&rows)
    };
    for windows in [
        tumbling(Duration::from_millis(500)),
        session(Duration::from_millis(30)),
    ] {
        let in_memory = run_with(weir_engine::StateBackend::Memory, windows);
        let spilled = run_with(
            weir_engine::StateBackend::RocksDb {
                memory_budget: 2_048,
            },
            windows,
        );
        assert_eq!(in_memory, reference(&readings, windows));
        assert_eq!(spilled, in_memory);
    }
}
