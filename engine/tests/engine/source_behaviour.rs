//! Source drivers in whole jobs: dead letters (kept or fail-fast) and dormant workers, which
//! must not hold the watermark back, and hold it back again once they wake.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_engine::{
    BoxError, CollectSink, DeadLetter, EngineError, EventTime, Job, JobConfig, Source, SourcePoll,
    SourceReader, WorkerInfo,
};

fn config(workers: usize) -> JobConfig {
    JobConfig {
        workers,
        watermark_interval: Duration::from_millis(5),
        ..JobConfig::default()
    }
}

/// Reads the numbers 0..count on worker 0; every multiple of 7 is "undecodable".
struct Numbers {
    count: u64,
}

struct NumbersReader {
    next: u64,
    end: u64,
    rejected: Vec<DeadLetter>,
}

impl Source for Numbers {
    type Item = u64;
    type Reader = NumbersReader;
    fn name(&self) -> String {
        "numbers".into()
    }
    fn open(self, worker: WorkerInfo) -> Result<NumbersReader, BoxError> {
        let end = if worker.index == 0 { self.count } else { 0 };
        Ok(NumbersReader {
            next: 0,
            end,
            rejected: Vec::new(),
        })
    }
}

impl SourceReader for NumbersReader {
    type Item = u64;
    fn poll(&mut self, out: &mut Vec<u64>, max: usize) -> Result<SourcePoll, BoxError> {
        for number in (self.next..self.end).take(max) {
            if number % 7 == 0 {
                let raw = number.to_string();
                self.rejected.push(DeadLetter::from_log(
                    "numbers",
                    0,
                    number,
                    raw.as_bytes(),
                    "a multiple of seven",
                ));
            } else {
                out.push(number);
            }
            self.next = number + 1;
        }
        Ok(if self.next == self.end {
            SourcePoll::Finished
        } else {
            SourcePoll::Ready {
                watermark: EventTime(0),
            }
        })
    }
    fn drain_dead_letters(&mut self, out: &mut Vec<DeadLetter>) {
        out.append(&mut self.rejected);
    }
}

#[test]
fn dead_letters_reach_their_sink_and_the_good_records_all_arrive() {
    let records = CollectSink::new();
    let letters = CollectSink::new();
    let (records_out, letters_out) = (records.results(), letters.results());
    let job = Job::new(config(2));
    let metrics = job.metrics();
    job.run(move |p| {
        p.source(Numbers { count: 5000 }).sink(records.clone());
        p.dead_letters_to(letters.clone());
        Ok(())
    })
    .unwrap();
    let mut good = records_out.lock().unwrap().clone();
    good.sort_unstable();
    assert_eq!(good, (0..5000).filter(|n| n % 7 != 0).collect::<Vec<_>>());
    let mut rejected: Vec<u64> = letters_out
        .lock()
        .unwrap()
        .iter()
        .map(|l| l.offset.unwrap())
        .collect();
    rejected.sort_unstable();
    assert_eq!(
        rejected,
        (0..5000).filter(|n| n % 7 == 0).collect::<Vec<_>>()
    );
    assert_eq!(metrics.dead_letters(), rejected.len() as u64);
}

#[test]
fn without_a_dead_letter_output_the_first_rejected_record_stops_the_job() {
    let error = Job::new(config(2))
        .run(|p| {
            p.source(Numbers { count: 5000 }).sink(CollectSink::new());
            Ok(())
        })
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, EngineError::DeadLetter(_)), "{message}");
    assert!(
        message.contains("numbers, partition 0, offset 0: a multiple of seven"),
        "{message}"
    );
}

/// A scripted two-worker source: worker 0 drives the watermark up, worker 1 is dormant until
/// the test's observer has seen `wake_at`, then wakes with a low watermark.
struct Script {
    seen: Arc<AtomicU64>,
    worker0_done: Arc<AtomicBool>,
    /// Set when the watermark reached `wake_at` before the script gave up waiting.
    reached_in_time: Arc<AtomicBool>,
    wake_at: u64,
    woken_watermark: u64,
}

struct ScriptReader {
    worker: usize,
    script: Script,
    started: Instant,
    phase_started: Option<Instant>,
}

impl Source for Script {
    type Item = u64;
    type Reader = ScriptReader;
    fn name(&self) -> String {
        "script".into()
    }
    fn open(self, worker: WorkerInfo) -> Result<ScriptReader, BoxError> {
        Ok(ScriptReader {
            worker: worker.index,
            script: self,
            started: Instant::now(),
            phase_started: None,
        })
    }
}

const GIVE_UP: Duration = Duration::from_secs(10);

impl SourceReader for ScriptReader {
    type Item = u64;
    fn poll(&mut self, _out: &mut Vec<u64>, _max: usize) -> Result<SourcePoll, BoxError> {
        let seen = self.script.seen.load(Ordering::SeqCst);
        let reached = seen >= self.script.wake_at;
        let timed_out = self.started.elapsed() > GIVE_UP;
        if self.worker == 0 {
            if !reached && !timed_out {
                return Ok(SourcePoll::Waiting {
                    watermark: EventTime(self.script.wake_at),
                });
            }
            if reached && !timed_out {
                self.script.reached_in_time.store(true, Ordering::SeqCst);
            }
            // Push on well past the woken worker's watermark for a while, then stop.
            let phase = *self.phase_started.get_or_insert_with(Instant::now);
            if phase.elapsed() < Duration::from_millis(500) && !timed_out {
                return Ok(SourcePoll::Waiting {
                    watermark: EventTime(self.script.wake_at * 2),
                });
            }
            self.script.worker0_done.store(true, Ordering::SeqCst);
            return Ok(SourcePoll::Finished);
        }
        // Worker 1 waits longer than worker 0, so that giving up never looks like success.
        let done = self.script.worker0_done.load(Ordering::SeqCst);
        if !reached && !done {
            return Ok(SourcePoll::Idle);
        }
        if done {
            return Ok(SourcePoll::Finished);
        }
        Ok(SourcePoll::Waiting {
            watermark: EventTime(self.script.woken_watermark),
        })
    }
}

#[test]
fn a_dormant_worker_does_not_stall_the_watermark_and_holds_it_back_once_awake() {
    let seen = Arc::new(AtomicU64::new(0));
    let max_while_awake = Arc::new(AtomicU64::new(0));
    let worker0_done = Arc::new(AtomicBool::new(false));
    let reached_in_time = Arc::new(AtomicBool::new(false));
    let (wake_at, woken_watermark) = (10_000, 10_500);
    let observer = (
        Arc::clone(&seen),
        Arc::clone(&max_while_awake),
        Arc::clone(&worker0_done),
        Arc::clone(&reached_in_time),
    );
    Job::new(config(2))
        .run(move |p| {
            let script = Script {
                seen: Arc::clone(&observer.0),
                worker0_done: Arc::clone(&observer.2),
                reached_in_time: Arc::clone(&observer.3),
                wake_at,
                woken_watermark,
            };
            let (seen, max_while_awake, done, _) = observer.clone();
            p.source(script)
                .on_watermark(move |watermark| {
                    if watermark == EventTime::MAX {
                        return;
                    }
                    let watermark = watermark.millis();
                    if seen.load(Ordering::SeqCst) >= wake_at && !done.load(Ordering::SeqCst) {
                        max_while_awake.fetch_max(watermark, Ordering::SeqCst);
                    }
                    seen.fetch_max(watermark, Ordering::SeqCst);
                })
                .sink(CollectSink::new());
            Ok(())
        })
        .unwrap();
    // The dormant worker let the watermark reach the active worker's.
    assert!(
        reached_in_time.load(Ordering::SeqCst),
        "the dormant worker stalled the watermark"
    );
    // Once awake, its own watermark held the job back below the active worker's.
    let awake = max_while_awake.load(Ordering::SeqCst);
    assert!(
        awake <= woken_watermark,
        "the watermark ran ahead to {awake} while a worker was at {woken_watermark}"
    );
}
