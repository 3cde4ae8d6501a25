//! Backpressure: a sink slower than its sources slows the sources down instead of letting the
//! records between them pile up in memory.
//!
//! Two workers read records of 256 bytes as fast as they can; their watermark never moves (the hard
//! case: nothing but the flow tick tells the sinks' frontiers apart). A keyed operator passes
//! every record on and keeps a timer pending for the whole run (its capability must not hold the
//! sources back), and one sink on worker 0, throttled to a fixed rate, receives everything, so
//! worker 1's records cross a channel to it. The test counts the records emitted but not yet
//! written, and samples the process's resident memory, once with the default in-flight limit
//! and once with a limit so long that nothing is held back, the behaviour before backpressure.
//!
//! A test binary of its own, so that the resident memory it samples is this test's alone.

// Test helpers panic on purpose: a failed set-up step is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use weir_engine::{
    BoxError, EventTime, Job, JobConfig, KeyedContext, KeyedProcess, Sink, SinkPlacement, Source,
    SourcePoll, SourceReader, WorkerInfo,
};

/// Records each of the two workers reads.
const PER_WORKER: u64 = 3_000_000;
const PAYLOAD: usize = 256;
/// Records per second the sink writes.
const SINK_RATE: u64 = 1_000_000;
/// How long one run may take before the test calls it hung (about 6 s at the sink's rate).
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

/// Reads `PER_WORKER` records on every worker, with a watermark that stays at zero.
#[derive(Clone)]
struct Fast(Arc<Counts>);

struct FastReader {
    counts: Arc<Counts>,
    next: u64,
}

impl Source for Fast {
    type Item = Record;
    type Reader = FastReader;
    fn name(&self) -> String {
        "fast".into()
    }
    fn open(self, _worker: WorkerInfo) -> Result<FastReader, BoxError> {
        Ok(FastReader {
            counts: self.0,
            next: 0,
        })
    }
}

impl SourceReader for FastReader {
    type Item = Record;
    fn poll(&mut self, out: &mut Vec<Record>, max: usize) -> Result<SourcePoll, BoxError> {
        let end = (self.next + max as u64).min(PER_WORKER);
        out.extend((self.next..end).map(|n| (n, vec![n as u8; PAYLOAD])));
        self.counts
            .emitted
            .fetch_add(end - self.next, Ordering::SeqCst);
        self.next = end;
        Ok(if end == PER_WORKER {
            SourcePoll::Finished
        } else {
            SourcePoll::Ready {
                watermark: EventTime::ZERO,
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

fn run(in_flight_limit: Duration) -> Run {
    let counts = Arc::new(Counts::default());
    let config = JobConfig::default()
        .workers(2)
        .in_flight_limit(in_flight_limit);
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
                p.source(Fast(Arc::clone(&counts)))
                    .key_by(|(n, _)| n % 64)
                    .process("pass on", |_| EventTime::ZERO, PassOn)
                    .results
                    .sink(Throttled(Arc::clone(&counts)));
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
        2 * PER_WORKER,
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

#[test]
fn a_slow_sink_slows_the_sources_and_bounds_the_records_in_flight() {
    let bounded = run(Duration::from_millis(100));
    // Nothing held back: the sources read everything while the sink is still at the start.
    let unbounded = run(Duration::from_secs(3600));
    eprintln!("bounded: {bounded:?}\nunbounded: {unbounded:?}");
    let total = 2 * PER_WORKER;
    // Worker 0's source shares a thread with the sink and so waits for it anyway; worker 1's
    // reads on.
    assert!(
        unbounded.peak_in_flight > total / 3,
        "without backpressure most records wait for the sink: {unbounded:?}"
    );
    // Records in flight stay near what the sources read within the limit while the sink
    // stands still (writing one large batch): a few hundred thousand here, whatever the
    // length of the input.
    assert!(
        bounded.peak_in_flight < total / 5,
        "with backpressure at most a fraction of the input is in flight: {bounded:?}"
    );
    assert!(
        bounded.peak_rss_growth_mb * 2 < unbounded.peak_rss_growth_mb,
        "resident memory follows the records in flight: {bounded:?} against {unbounded:?}"
    );
    assert!(bounded.backpressure > Duration::ZERO, "{bounded:?}");
    // Throughput follows the sink: pausing never leaves the sink waiting for long. (The sink
    // alone needs total / SINK_RATE = 6 s; the bound is loose for a shared machine.)
    let sink_time = Duration::from_secs_f64(total as f64 / SINK_RATE as f64);
    assert!(
        bounded.elapsed < sink_time * 3,
        "the sources keep the sink busy: {bounded:?}"
    );
}
