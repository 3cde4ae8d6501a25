//! The Nexmark throughput harness: each query on 1 and 2 workers over generated events, next
//! to a reference point, a hand-written timely program (a keyed 10 s tumbling count over
//! in-memory `(key, time)` tuples: an exchange and a hash count, no strings). Prints events/s;
//! checks only that every event was counted.
//!
//! `cargo bench -p weir-benches --bench nexmark` (set `WEIR_BENCH_EVENTS`, default 10 M).

// Links the benchmarks crate, which sets the global allocator.
use std::collections::HashMap;
use std::time::Instant;
use weir_benches as _;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::{source, Operator};
use weir::{Job, JobConfig};
use weir_nexmark::{EventInput, GeneratorConfig};

/// Events per second of one benchmark on a number of workers.
type Measure = Box<dyn Fn(usize) -> f64>;

fn run_query(workers: usize, events: u64, name: &str) -> f64 {
    let input = EventInput::Generated {
        config: GeneratorConfig::default(),
        events,
    };
    let job = Job::new(JobConfig::default().workers(workers));
    let report = weir_benches::run_query(job, input, events, name);
    events as f64 / report.wall.as_secs_f64()
}

/// A keyed 10 s tumbling count over in-memory `(key, time)` tuples, written directly against
/// timely: what the machine can do without records worth the name.
fn ceiling(workers: usize, events: u64) -> f64 {
    const WINDOW_MS: u64 = 10_000;
    let started = Instant::now();
    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        let (index, peers) = (worker.index() as u64, worker.peers() as u64);
        let fired = std::rc::Rc::new(std::cell::Cell::new(0u64));
        let fired_in_sink = std::rc::Rc::clone(&fired);
        worker.dataflow::<u64, _, _>(|scope| {
            source::<_, CapacityContainerBuilder<Vec<(u64, u64)>>, _, _>(
                scope,
                "tuples",
                |capability, info| {
                    let activator = scope.activator_for(info.address);
                    let mut capability = Some(capability);
                    let mut next = index;
                    move |output| {
                        let Some(cap) = capability.as_mut() else {
                            return;
                        };
                        {
                            let mut session = output.session(&*cap);
                            for _ in 0..65_536 {
                                if next >= events {
                                    break;
                                }
                                // 10,000 keys; 100 tuples per millisecond of event time.
                                session.give((next.wrapping_mul(0x9E37_79B9) % 10_000, next / 100));
                                next += peers;
                            }
                        }
                        if next >= events {
                            capability = None;
                        } else {
                            cap.downgrade(&(next / 100));
                            activator.activate();
                        }
                    }
                },
            )
            .sink(Exchange::new(|(key, _): &(u64, u64)| *key), "count", {
                let mut counts: HashMap<(u64, u64), u64> = HashMap::new();
                move |(input, frontier)| {
                    input.for_each(|_time, tuples| {
                        for (key, time) in tuples.drain(..) {
                            *counts.entry((key, time / WINDOW_MS)).or_default() += 1;
                        }
                    });
                    let watermark = frontier.frontier().first().copied().unwrap_or(u64::MAX);
                    counts.retain(|(_, window), count| {
                        let closed = (window + 1) * WINDOW_MS <= watermark;
                        if closed {
                            fired_in_sink.set(fired_in_sink.get() + *count);
                        }
                        !closed
                    });
                }
            });
        });
        while worker.step_or_park(None) {}
        fired.get()
    })
    .expect("the ceiling program starts");
    let counted: u64 = guards
        .join()
        .into_iter()
        .map(|result| result.expect("the ceiling program runs"))
        .sum();
    assert_eq!(
        counted, events,
        "every tuple was counted in a closed window"
    );
    events as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let events: u64 = std::env::var("WEIR_BENCH_EVENTS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(10_000_000);
    println!("Nexmark from the generator, {events} events, events/s (M):");
    println!("{:<34} {:>10} {:>10}", "", "1 worker", "2 workers");
    let queries: [(&str, Measure); 4] = [
        ("q0", Box::new(move |w| run_query(w, events, "q0"))),
        ("q1", Box::new(move |w| run_query(w, events, "q1"))),
        ("q2", Box::new(move |w| run_query(w, events, "q2"))),
        (
            "ceiling: timely keyed 10 s count",
            Box::new(move |w| ceiling(w, events)),
        ),
    ];
    for (name, run) in &queries {
        let (one, two) = (run(1), run(2));
        println!("{name:<34} {:>10.2} {:>10.2}", one / 1e6, two / 1e6);
    }
}
