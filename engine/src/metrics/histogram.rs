//! A latency histogram with fixed buckets, cheap to record into from every worker.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in milliseconds (the last bucket has none).
pub const BUCKET_BOUNDS_MS: [u64; 16] = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000, 300_000,
];

/// Counts of latencies by bucket, with their sum: what Prometheus calls a histogram.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// `counts[i]`: latencies up to `BUCKET_BOUNDS_MS[i]` and above the bound before; the last
    /// counts those above every bound.
    counts: [AtomicU64; BUCKET_BOUNDS_MS.len() + 1],
    sum_micros: AtomicU64,
}

impl LatencyHistogram {
    /// Counts one latency.
    pub fn record(&self, latency: Duration) {
        let millis = latency.as_secs_f64() * 1e3;
        let bucket = BUCKET_BOUNDS_MS
            .iter()
            .position(|bound| millis <= *bound as f64)
            .unwrap_or(BUCKET_BOUNDS_MS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(latency.as_micros() as u64, Ordering::Relaxed);
    }

    /// Latencies counted so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// The sum of the latencies counted.
    pub fn sum(&self) -> Duration {
        Duration::from_micros(self.sum_micros.load(Ordering::Relaxed))
    }

    /// The counts of latencies up to each bound, cumulative, as Prometheus exposes them (the
    /// last is the count of all).
    pub fn cumulative(&self) -> Vec<u64> {
        self.counts
            .iter()
            .scan(0, |total, count| {
                *total += count.load(Ordering::Relaxed);
                Some(*total)
            })
            .collect()
    }

    /// The `q` quantile (0 to 1), as the upper bound of the bucket it falls in (`None` before
    /// the first latency; `Duration::MAX` above every bound).
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let cumulative = self.cumulative();
        let total = *cumulative.last()?;
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).ceil().max(1.0) as u64;
        let bucket = cumulative.iter().position(|count| *count >= rank)?;
        Some(
            BUCKET_BOUNDS_MS
                .get(bucket)
                .map_or(Duration::MAX, |bound| Duration::from_millis(*bound)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_bucket_bounds() {
        let histogram = LatencyHistogram::default();
        assert_eq!(histogram.quantile(0.5), None);
        for millis in [3, 4, 4, 7, 150] {
            histogram.record(Duration::from_millis(millis));
        }
        assert_eq!(histogram.count(), 5);
        assert_eq!(histogram.sum(), Duration::from_millis(168));
        assert_eq!(histogram.quantile(0.5), Some(Duration::from_millis(5)));
        assert_eq!(histogram.quantile(0.8), Some(Duration::from_millis(10)));
        assert_eq!(histogram.quantile(0.99), Some(Duration::from_millis(200)));
        histogram.record(Duration::from_secs(1_000));
        assert_eq!(histogram.quantile(1.0), Some(Duration::MAX));
        assert_eq!(histogram.cumulative().last(), Some(&6));
    }
}
