//! weir's benchmarks live in `benches/`: `cargo bench -p weir-benches --bench nexmark` runs
//! the Nexmark throughput harness, `--bench generator` the criterion micro-benchmarks.
