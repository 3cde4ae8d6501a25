//! Micro-benchmarks of the Nexmark generator and the JSON encoding of its events.

// Links the benchmarks crate, which sets the global allocator.
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use weir_benches as _;
use weir_nexmark::{Generator, GeneratorConfig};

fn generator(c: &mut Criterion) {
    let generator = Generator::new(GeneratorConfig::default());
    let mut group = c.benchmark_group("nexmark generator");
    group.throughput(Throughput::Elements(50));
    // 50 consecutive ids: one person, three auctions, 46 bids, the standard mix.
    group.bench_function("generate 50 events", |b| {
        let mut first = 0u64;
        b.iter(|| {
            let events: Vec<_> = (first..first + 50).map(|id| generator.event(id)).collect();
            first += 50;
            events
        })
    });
    group.bench_function("encode 50 events as JSON lines", |b| {
        b.iter_batched(
            || (0..50).map(|id| generator.event(id)).collect::<Vec<_>>(),
            |events| {
                let mut out = Vec::with_capacity(50 * 300);
                for event in &events {
                    serde_json::to_writer(&mut out, event).expect("events encode");
                    out.push(b'\n');
                }
                out
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, generator);
criterion_main!(benches);
