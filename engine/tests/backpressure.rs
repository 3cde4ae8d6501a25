//! Backpressure: a sink slower than its sources slows the sources down instead of letting the
//! records between them pile up in memory.
//!
//! Worker 1 reads records of 256 bytes as fast as it can, and a sink on worker 0, throttled to a
//! fixed rate, receives everything: the sink never takes the source's thread, so only
//! backpressure can stop the records piling up in the channel between them. Between them a
//! keyed operator, also on worker 1, either passes every record on while a timer stays pending for
//! the whole run (its capability must not hold the sources back), the sources' watermark
//! standing still (the hard case: nothing but the flow tick tells the sinks' frontiers apart);
//! or holds every record until the watermark passes the end of its window and sends it from a
//! timer, as a window sends its results. Each case counts the records read but not yet written, and samples the
//! process's resident memory, once with a short in-flight limit and once with one so long that
//! nothing is held back, the behaviour before backpressure.
//!
//! A test binary of its own, and its tests one at a time, so that the resident memory they
//! sample is theirs alone.

// Test helpers panic on purpose: a failed set-up step is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use weir_engine::{
    BoxError, EventTime, Job, JobConfig, KeyGroups, KeyedContext, KeyedProcess, Sink,
    SinkPlacement, Source, SourcePoll, SourceReader, WorkerInfo,
};

/// Records each of the two workers reads.
const RECORDS: u64 = 5_000_000;
const PAYLOAD: usize = 256;
/// Records per second the sink writes.
const SINK_RATE: u64 = 1_000_000;
/// How long one run may take before the test calls it hung (about 5 s at the sink's rate).
const DEADLINE: Duration = Duration::from_secs(120);

/// What the source and the sink count, shared by the workers.
#[derive(Default)]
struct Counts {
    emitted: AtomicU64,
    written: AtomicU64,
    /// The most records emitted and not yet written, seen at any write.
    peak_in_flight: AtomicU64,
}

type Record = (u64, Vec<u8>);

/// Reads `RECORDS` records on worker 1 (nothing on worker 0), numbered from 0, with a watermark that stays at
/// zero or follows the numbers (as event times in milliseconds).
#[derive(Clone)]
struct Fast {
    counts: Arc<Counts>,
    moving_watermark: bool,
}

struct FastReader {
    counts: Arc<Counts>,
    moving_watermark: bool,
    next: u64,
}

impl Source for Fast {
    type Item = Record;
    type Reader = FastReader;
    fn name(&self) -> String {
        "fast".into()
    }
    fn open(self, worker: WorkerInfo) -> Result<FastReader, BoxError> {
        Ok(FastReader {
            counts: self.counts,
            moving_watermark: self.moving_watermark,
            next: if worker.index == 1 { 0 } else { RECORDS },
        })
    }
}

impl SourceReader for FastReader {
    type Item = Record;
    fn poll(&mut self, out: &mut Vec<Record>, max: usize) -> Result<SourcePoll, BoxError> {
        let end = (self.next + max as u64).min(RECORDS);
        out.extend((self.next..end).map(|n| (n, vec![n as u8; PAYLOAD])));
        self.counts
            .emitted
            .fetch_add(end - self.next, Ordering::SeqCst);
        self.next = end;
        Ok(if end == RECORDS {
            SourcePoll::Finished
        } else {
            SourcePoll::Ready {
                watermark: EventTime(if self.moving_watermark { end } else { 0 }),
            }
        })
    }
}

/// Passes every record on, and keeps a timer at the end of time pending for every key.
struct PassOn;

impl KeyedProcess<u64, Record> for PassOn {
    type State = bool;
    type Output = Record;
    fn on_record(
        &mut self,
        cx: &mut KeyedContext<u64, Record, Record>,
        _key: &u64,
        state: &mut bool,
        record: Record,
        _event_time: EventTime,
    ) {
        *state = true;
        cx.set_timer(EventTime::MAX);
        cx.emit(record);
    }
    fn on_timer(
        &mut self,
        _cx: &mut KeyedContext<u64, Record, Record>,
        _key: &u64,
        state: &mut bool,
        _time: EventTime,
    ) {
        *state = false;
    }
    fn is_empty(&self, state: &bool) -> bool {
        !*state
    }
}

/// Holds every record until the watermark passes the end of its 10,000-millisecond window
/// (its number read as event time), then sends it from the timer.
struct HoldUntilWatermark;

const WINDOW: u64 = 10_000;

impl KeyedProcess<u64, Record> for HoldUntilWatermark {
    type State = Vec<Record>;
    type Output = Record;
    fn on_record(
        &mut self,
        cx: &mut KeyedContext<u64, Record, Record>,
        _key: &u64,
        state: &mut Vec<Record>,
        record: Record,
        _event_time: EventTime,
    ) {
        cx.set_timer(EventTime((record.0 / WINDOW + 1) * WINDOW - 1));
        state.push(record);
    }
    fn on_timer(
        &mut self,
        cx: &mut KeyedContext<u64, Record, Record>,
        _key: &u64,
        state: &mut Vec<Record>,
        time: EventTime,
    ) {
        let (due, later) = std::mem::take(state)
            .into_iter()
            .partition(|(n, _)| *n <= time.millis());
        *state = later;
        for record in due {
            cx.emit(record);
        }
    }
    fn is_empty(&self, state: &Vec<Record>) -> bool {
        state.is_empty()
    }
}

/// Writes on worker 0 only, at `SINK_RATE` records per second.
struct Throttled(Arc<Counts>);

impl Sink<Record> for Throttled {
    fn name(&self) -> String {
        "throttled".into()
    }
    fn placement(&self) -> SinkPlacement {
        SinkPlacement::FirstWorker
    }
    fn open(&mut self, _worker: WorkerInfo) -> Result<(), BoxError> {
        Ok(())
    }
    fn write(&mut self, records: &[Record]) -> Result<(), BoxError> {
        let counts = &self.0;
        let emitted = counts.emitted.load(Ordering::SeqCst);
        let written = counts.written.load(Ordering::SeqCst);
        counts
            .peak_in_flight
            .fetch_max(emitted.saturating_sub(written), Ordering::SeqCst);
        std::thread::sleep(Duration::from_secs_f64(
            records.len() as f64 / SINK_RATE as f64,
        ));
        counts
            .written
            .fetch_add(records.len() as u64, Ordering::SeqCst);
        Ok(())
    }
    fn close(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// What one run measured.
#[derive(Debug)]
struct Run {
    peak_in_flight: u64,
    /// Resident memory above what the process held before the run, at its highest.
    peak_rss_growth_mb: u64,
    elapsed: Duration,
    backpressure: Duration,
}

/// The process's resident memory in MiB.
fn rss_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
        .unwrap();
    kb / 1024
}

/// The keyed step between source and sink.
#[derive(Clone, Copy, Debug)]
enum Stage {
    /// [`PassOn`], the watermark standing still.
    PassOn,
    /// [`HoldUntilWatermark`], the watermark following the records.
    FromTimers,
}

fn run(stage: Stage, in_flight_limit: Duration) -> Run {
    let counts = Arc::new(Counts::default());
    // Windows fire as often as the watermark moves: every 20 ms, so that what they hold in
    // state stays small beside what queues in front of the sink.
    let config = JobConfig::default()
        .workers(2)
        .watermark_interval(Duration::from_millis(20))
        .in_flight_limit(in_flight_limit);
    // Every key lives on worker 1, whose thread the sink never blocks: only its results, not
    // its input, can queue in front of the sink.
    let key_groups = KeyGroups::new(config.key_groups, 2);
    let keys: Vec<u64> = (0..)
        .filter(|key: &u64| key_groups.worker_of_key(key) == 1)
        .take(64)
        .collect();
    let job = Job::new(config);
    let metrics = job.metrics();
    let before = rss_mb();
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let sampling = Arc::clone(&sampling);
        std::thread::spawn(move || {
            let mut peak = 0;
            while sampling.load(Ordering::SeqCst) {
                peak = peak.max(rss_mb());
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        })
    };
    let started = Instant::now();
    let (done, finished) = mpsc::channel();
    {
        let counts = Arc::clone(&counts);
        std::thread::spawn(move || {
            let result = job.run(move |p| {
                let source = Fast {
                    counts: Arc::clone(&counts),
                    moving_watermark: matches!(stage, Stage::FromTimers),
                };
                let keys = keys.clone();
                let keyed = p
                    .source(source)
                    .key_by(move |(n, _)| keys[(n % 64) as usize]);
                let results = match stage {
                    Stage::PassOn => keyed.process("pass on", |_| EventTime::ZERO, PassOn),
                    Stage::FromTimers => {
                        keyed.process("hold", |(n, _): &Record| EventTime(*n), HoldUntilWatermark)
                    }
                };
                results.results.sink(Throttled(Arc::clone(&counts)));
                Ok(())
            });
            done.send(result.map_err(|error| error.to_string()))
                .unwrap();
        });
    }
    let result = finished
        .recv_timeout(DEADLINE)
        .expect("the job hung: backpressure must never stop it for good");
    let elapsed = started.elapsed();
    sampling.store(false, Ordering::SeqCst);
    let peak = sampler.join().unwrap();
    result.unwrap();
    assert_eq!(
        counts.written.load(Ordering::SeqCst),
        RECORDS,
        "every record reaches the sink"
    );
    let backpressure = metrics
        .operators()
        .into_iter()
        .map(|(_, operator)| operator.backpressure())
        .sum();
    Run {
        peak_in_flight: counts.peak_in_flight.load(Ordering::SeqCst),
        peak_rss_growth_mb: peak.saturating_sub(before),
        elapsed,
        backpressure,
    }
}

/// The tests sample the process's memory: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn a_slow_sink_slows_the_sources_and_bounds_the_records_in_flight() {
    check(Stage::PassOn);
}

#[test]
fn window_results_queued_before_a_slow_sink_slow_the_sources_too() {
    check(Stage::FromTimers);
}

fn check(stage: Stage) {
    let _alone = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let bounded = run(stage, Duration::from_millis(100));
    // Nothing held back: the sources read everything while the sink is still at the start.
    let unbounded = run(stage, Duration::from_secs(3600));
    eprintln!("{stage:?}\nbounded: {bounded:?}\nunbounded: {unbounded:?}");
    let total = RECORDS;
    assert!(
        unbounded.peak_in_flight > total / 2,
        "without backpressure most records wait for the sink: {unbounded:?}"
    );
    // Records in flight stay near what the sources read within the limit while the sink
    // stands still (writing one large batch): from a few hundred thousand to a little over a
    // million on this project's machines, as fast as the source runs, whatever the length
    // of the input.
    assert!(
        bounded.peak_in_flight < total / 3,
        "with backpressure at most a fraction of the input is in flight: {bounded:?}"
    );
    assert!(
        bounded.peak_rss_growth_mb * 2 < unbounded.peak_rss_growth_mb,
        "resident memory follows the records in flight: {bounded:?} against {unbounded:?}"
    );
    assert!(bounded.backpressure > Duration::ZERO, "{bounded:?}");
    // Throughput follows the sink: pausing never leaves the sink waiting for long. (The sink
    // alone needs total / SINK_RATE = 5 s; the bound is loose for a shared machine.)
    let sink_time = Duration::from_secs_f64(total as f64 / SINK_RATE as f64);
    assert!(
        bounded.elapsed < sink_time * 3,
        "the sources keep the sink busy: {bounded:?}"
    );
}
