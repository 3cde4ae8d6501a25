//! A job's metrics in the Prometheus text exposition format (version 0.0.4).

use std::fmt::Write;

use super::{JobMetrics, LatencyHistogram, BUCKET_BOUNDS_MS};

/// Writes metric families: each a `# HELP` and `# TYPE` line, then its samples.
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        // Writing to a String cannot fail.
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (index, (key, value)) in labels.iter().enumerate() {
                if index > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{key}=\"{}\"", escape(value));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// A family of one sample without labels.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], histogram: &LatencyHistogram) {
        let cumulative = histogram.cumulative();
        for (bound, count) in BUCKET_BOUNDS_MS.iter().zip(&cumulative) {
            let le = format!("{}", *bound as f64 / 1e3);
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&format!("{name}_bucket"), &with_le, *count as f64);
        }
        let mut with_le = labels.to_vec();
        with_le.push(("le", "+Inf"));
        let total = cumulative.last().copied().unwrap_or(0);
        self.sample(&format!("{name}_bucket"), &with_le, total as f64);
        self.sample(
            &format!("{name}_sum"),
            labels,
            histogram.sum().as_secs_f64(),
        );
        self.sample(&format!("{name}_count"), labels, total as f64);
    }
}

/// A label value with `\`, `"` and line feeds escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl JobMetrics {
    /// Every metric of this process of the job, in the Prometheus text format (what
    /// `weir nexmark run --metrics-addr` serves at `/metrics`).
    pub fn prometheus(&self) -> String {
        let mut out = Exposition {
            text: String::new(),
        };
        out.single(
            "weir_records_read_total",
            "counter",
            "Records read by the job's sources.",
            self.records_in() as f64,
        );
        out.single(
            "weir_records_written_total",
            "counter",
            "Result records written by the job's sinks.",
            self.records_out() as f64,
        );
        let operators = self.operators();
        type Counter = fn(&super::OperatorMetrics) -> f64;
        let per_operator: [(&str, &str, &str, Counter); 6] = [
            (
                "weir_operator_records_in_total",
                "counter",
                "Records an operator received (a sink: wrote).",
                |m| m.records_in() as f64,
            ),
            (
                "weir_operator_records_out_total",
                "counter",
                "Records an operator emitted (a source: read).",
                |m| m.records_out() as f64,
            ),
            (
                "weir_dead_letters_total",
                "counter",
                "Input records a source rejected (sent to dead letters).",
                |m| m.dead_letters() as f64,
            ),
            (
                "weir_late_records_total",
                "counter",
                "Records later than an operator's allowed lateness (sent to its late output).",
                |m| m.late_records() as f64,
            ),
            (
                "weir_state_keys",
                "gauge",
                "Keys holding state in a keyed operator.",
                |m| m.state_keys() as f64,
            ),
            (
                "weir_backpressure_seconds_total",
                "counter",
                "How long a source was paused because the sinks were behind (backpressure).",
                |m| m.backpressure().as_secs_f64(),
            ),
        ];
        for (name, kind, help, value) in per_operator {
            out.family(name, kind, help);
            for (operator, metrics) in &operators {
                out.sample(name, &[("operator", operator)], value(metrics));
            }
        }
        let lags = self.lags();
        out.family(
            "weir_source_lag_records",
            "gauge",
            "Records after a source's position in a partition.",
        );
        for (source, lag) in &lags {
            let partition = lag.partition.to_string();
            let labels = [("source", source.as_str()), ("partition", &partition)];
            out.sample("weir_source_lag_records", &labels, lag.records as f64);
        }
        out.family(
            "weir_source_lag_seconds",
            "gauge",
            "How long ago the last record a source read in a partition was written, while records are left.",
        );
        for (source, lag) in &lags {
            let partition = lag.partition.to_string();
            let labels = [("source", source.as_str()), ("partition", &partition)];
            out.sample("weir_source_lag_seconds", &labels, lag.seconds);
        }
        let watermarks = self.watermarks();
        let now = crate::time::wall_clock_millis();
        out.family(
            "weir_watermark_milliseconds",
            "gauge",
            "A source's watermark in this process, in milliseconds since the Unix epoch.",
        );
        for (source, watermark) in &watermarks {
            out.sample(
                "weir_watermark_milliseconds",
                &[("source", source)],
                watermark.0 as f64,
            );
        }
        out.family(
            "weir_watermark_lag_seconds",
            "gauge",
            "How far a source's watermark is behind the wall clock.",
        );
        for (source, watermark) in &watermarks {
            let lag = now.saturating_sub(watermark.0) as f64 / 1e3;
            out.sample("weir_watermark_lag_seconds", &[("source", source)], lag);
        }
        out.family(
            "weir_latency_seconds",
            "histogram",
            "Latency from ingestion at a source to emission by a sink (to), or to the commit of an exactly-once sink's transaction.",
        );
        out.histogram(
            "weir_latency_seconds",
            &[("to", "emission")],
            self.emission_latency(),
        );
        out.histogram(
            "weir_latency_seconds",
            &[("to", "commit")],
            self.commit_latency(),
        );
        out.single(
            "weir_checkpoints_completed_total",
            "counter",
            "Checkpoints completed (job manifests written by this process).",
            self.checkpoints_completed() as f64,
        );
        out.single(
            "weir_checkpoint_duration_seconds",
            "gauge",
            "Mean time a worker took to write its part of a checkpoint.",
            self.mean_checkpoint_duration().as_secs_f64(),
        );
        out.single(
            "weir_checkpoint_size_bytes",
            "gauge",
            "Bytes of state files in the workers' latest checkpoints.",
            self.checkpoint_bytes() as f64,
        );
        if let Some(age) = self.checkpoint_age() {
            out.single(
                "weir_checkpoint_age_seconds",
                "gauge",
                "Time since the last checkpoint completed.",
                age.as_secs_f64(),
            );
        }
        out.single(
            "weir_restore_duration_seconds",
            "gauge",
            "The longest time a worker took to restore its state.",
            self.restore_duration().as_secs_f64(),
        );
        out.single(
            "weir_restarts_total",
            "counter",
            "Times the job restarted from its latest checkpoint after a failure.",
            self.restarts() as f64,
        );
        out.text
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::PartitionLag;

    #[test]
    fn the_exposition_names_operators_partitions_and_buckets() {
        let metrics = JobMetrics::default();
        metrics.add_records_in(7);
        metrics.operator("source \"a\"").add_out(7);
        metrics.set_lags(
            "kafka:b/t",
            &[PartitionLag {
                partition: 3,
                records: 12,
                seconds: 1.5,
            }],
        );
        metrics.record_emission(Duration::from_millis(30));
        let text = metrics.prometheus();
        for line in [
            "weir_records_read_total 7",
            "weir_operator_records_out_total{operator=\"source \\\"a\\\"\"} 7",
            "weir_source_lag_records{source=\"kafka:b/t\",partition=\"3\"} 12",
            "weir_source_lag_seconds{source=\"kafka:b/t\",partition=\"3\"} 1.5",
            "weir_latency_seconds_bucket{to=\"emission\",le=\"0.02\"} 0",
            "weir_latency_seconds_bucket{to=\"emission\",le=\"0.05\"} 1",
            "weir_latency_seconds_bucket{to=\"emission\",le=\"+Inf\"} 1",
            "weir_latency_seconds_count{to=\"commit\"} 0",
            "# TYPE weir_latency_seconds histogram",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }
}
