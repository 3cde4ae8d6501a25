//! The figures of one query run, as `weir nexmark run --report FILE` writes them and
//! `weir bench nexmark` reads them back.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir::{JobMetrics, JobReport, LatencyHistogram};

/// What one run of a query measured (this process's part of the job).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    /// The query's name.
    pub query: String,
    /// Events read.
    pub events: u64,
    /// Wall time from launch to the end of the last worker, in seconds.
    pub wall_s: f64,
    /// Events read per second of wall time.
    pub events_per_s: f64,
    /// Result rows written.
    pub output_rows: u64,
    /// CPU seconds of all the process's threads during the run.
    pub cpu_s: f64,
    /// The largest resident memory of the process during the run, in bytes, where known.
    pub peak_memory_bytes: Option<u64>,
    /// Checkpoints completed.
    pub checkpoints: u64,
    /// The mean time a worker took to checkpoint, in milliseconds (once one completed).
    pub checkpoint_mean_ms: Option<f64>,
    /// The state of the largest checkpoint, in bytes (with checkpoints).
    pub state_bytes: Option<u64>,
    /// Latency from ingestion to emission by the sinks.
    pub emission_latency: Option<Latency>,
    /// Latency from ingestion to the commit that made the results visible (exactly-once
    /// sinks with checkpoints).
    pub commit_latency: Option<Latency>,
    /// Restarts from the latest checkpoint after failures.
    pub restarts: u32,
}

/// Latency quantiles, each the upper bound of its histogram bucket in milliseconds (`None`:
/// above the largest bound).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    /// The median's bucket bound.
    pub p50_ms: Option<u64>,
    /// The 99th percentile's bucket bound.
    pub p99_ms: Option<u64>,
    /// Records measured.
    pub samples: u64,
}

impl Latency {
    /// The quantiles of `histogram`, if it counted anything.
    pub fn of(histogram: &LatencyHistogram) -> Option<Latency> {
        let bound = |quantile| {
            histogram.quantile(quantile).map(|bound| {
                (bound != Duration::MAX)
                    .then(|| u64::try_from(bound.as_millis()).unwrap_or(u64::MAX))
            })
        };
        Some(Latency {
            p50_ms: bound(0.5)?,
            p99_ms: bound(0.99)?,
            samples: histogram.count(),
        })
    }
}

impl RunRecord {
    /// The record of a run of `query` that took `cpu` and peaked at `peak_memory`.
    pub fn new(
        query: &str,
        report: &JobReport,
        metrics: &JobMetrics,
        cpu: Duration,
        peak_memory: Option<u64>,
        checkpoints: bool,
    ) -> Self {
        let wall_s = report.wall.as_secs_f64();
        RunRecord {
            query: query.to_owned(),
            events: report.records_in,
            wall_s,
            events_per_s: if wall_s > 0.0 {
                report.records_in as f64 / wall_s
            } else {
                0.0
            },
            output_rows: report.records_out,
            cpu_s: cpu.as_secs_f64(),
            peak_memory_bytes: peak_memory,
            checkpoints: metrics.checkpoints_completed(),
            checkpoint_mean_ms: (checkpoints && metrics.checkpoints_completed() > 0)
                .then(|| metrics.mean_checkpoint_duration().as_secs_f64() * 1e3),
            state_bytes: checkpoints.then(|| metrics.largest_checkpoint_bytes()),
            emission_latency: Latency::of(metrics.emission_latency()),
            commit_latency: Latency::of(metrics.commit_latency()),
            restarts: report.restarts,
        }
    }
}

/// A markdown table of `records`: events, wall and CPU time, throughput, rows and peak memory
/// per query.
pub fn summary_table(records: &[RunRecord]) -> String {
    let mut table = String::from(
        "| query | events | wall (s) | M events/s | output rows | CPU (s) | peak memory (MiB) |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for record in records {
        table.push_str(&format!(
            "| {} | {} | {:.2} | {:.2} | {} | {:.1} | {} |\n",
            record.query,
            record.events,
            record.wall_s,
            record.events_per_s / 1e6,
            record.output_rows,
            record.cpu_s,
            mebibytes(record.peak_memory_bytes),
        ));
    }
    table
}

/// Bytes as MiB with no decimals, or `-` when unknown.
pub fn mebibytes(bytes: Option<u64>) -> String {
    bytes.map_or_else(
        || "-".into(),
        |bytes| format!("{:.0}", bytes as f64 / f64::from(1 << 20)),
    )
}
