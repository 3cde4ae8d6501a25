//! The join queries on 2 workers over a topic of 10 M events (`WEIR_BENCH_EVENTS`): Nexmark q3
//! (a regular join), q4 (a join with expiring rows, a running MAX and an updating AVG), q7
//! (highest bid, a window join with the window's maximum) and q8 (new users, a window join of
//! people and auctions), each writing its changelog. Prints events/s and the keys holding
//! state: the most at once (sampled every 10 ms) and at the end.
//!
//! `cargo bench -p weir-benches --bench joins`. Targets: q7 and q8 at least 1 M events/s, q4
//! within 3x of q8.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use weir::{Job, JobConfig, JobMetrics};

const WORKERS: usize = 2;

struct Outcome {
    events_per_second: f64,
    most_keys: u64,
    keys_at_end: u64,
}

fn live_keys(metrics: &JobMetrics) -> u64 {
    metrics.state_keys_created() - metrics.state_keys_removed()
}

fn run(topic: &Path, events: u64, query: &str) -> Outcome {
    let job = Job::new(JobConfig::default().workers(WORKERS));
    let metrics: Arc<JobMetrics> = job.metrics();
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (metrics, done) = (Arc::clone(&metrics), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut most = 0;
            while !done.load(Ordering::Relaxed) {
                most = most.max(live_keys(&metrics));
                std::thread::sleep(Duration::from_millis(10));
            }
            most
        })
    };
    let report = weir_benches::run_on_topic(job, topic, events, query);
    done.store(true, Ordering::Relaxed);
    let most_keys = sampler.join().expect("the sampler ends");
    Outcome {
        events_per_second: events as f64 / report.wall.as_secs_f64(),
        most_keys,
        keys_at_end: live_keys(&metrics),
    }
}

fn main() {
    let events: u64 = std::env::var("WEIR_BENCH_EVENTS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(10_000_000);
    let topic = weir_benches::nexmark_topic(events);
    println!("Nexmark joins on {WORKERS} workers over {events} events from a topic");
    println!(
        "{:<6} {:>10} {:>16} {:>14}",
        "query", "M ev/s", "most state keys", "keys at end"
    );
    let outcomes = [
        ("q3", run(&topic, events, "q3")),
        ("q4", run(&topic, events, "q4")),
        ("q7", run(&topic, events, "q7")),
        ("q8", run(&topic, events, "q8")),
    ];
    for (name, outcome) in &outcomes {
        println!(
            "{name:<6} {:>10.2} {:>16} {:>14}",
            outcome.events_per_second / 1e6,
            outcome.most_keys,
            outcome.keys_at_end
        );
    }
    let rate = |name: &str| {
        outcomes
            .iter()
            .find(|(query, _)| *query == name)
            .map_or(0.0, |(_, outcome)| outcome.events_per_second / 1e6)
    };
    println!(
        "targets: q7 and q8 >= 1 M events/s on {WORKERS} workers (measured {:.2} and {:.2}); q4 within 3x of q8 (measured {:.1}x)",
        rate("q7"),
        rate("q8"),
        rate("q8") / rate("q4"),
    );
}
