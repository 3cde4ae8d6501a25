//! weir's benchmarks live in `benches/`: `cargo bench -p weir-benches --bench nexmark` runs
//! the Nexmark throughput harness, `--bench log` reads the events from a log topic and a JSON
//! lines file, `--bench generator` runs the criterion micro-benchmarks.

/// The benchmarks allocate with mimalloc, as the `weir` binary does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
