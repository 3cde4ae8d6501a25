//! Retention: which whole segments a partition no longer keeps, by size and by age.

use std::time::{Duration, SystemTime};

use super::partition::LogConfig;

/// What retention looks at of one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentInfo {
    /// Offset of the segment's first record.
    pub(crate) base: u64,
    /// Size of its file.
    pub(crate) bytes: u64,
    /// When it was last written.
    pub(crate) modified: SystemTime,
}

/// The bases of the segments to delete, oldest first. `segments` is in offset order and its
/// last one is the active segment, which is never deleted. Age is wall-clock time since a
/// segment was last written (record timestamps are event times, which may lie far in the past).
pub(crate) fn expired(segments: &[SegmentInfo], config: &LogConfig, now: SystemTime) -> Vec<u64> {
    let Some((_active, closed)) = segments.split_last() else {
        return Vec::new();
    };
    let mut total: u64 = segments.iter().map(|segment| segment.bytes).sum();
    let max_age = config.retention_ms.map(Duration::from_millis);
    let mut expired = Vec::new();
    for segment in closed {
        let too_big = config.retention_bytes.is_some_and(|limit| total > limit);
        let too_old = max_age.is_some_and(|max_age| {
            now.duration_since(segment.modified)
                .is_ok_and(|age| age > max_age)
        });
        if !(too_big || too_old) {
            // Retention deletes a prefix: a younger segment never goes before an older one.
            break;
        }
        total -= segment.bytes;
        expired.push(segment.base);
    }
    expired
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(now: SystemTime, ages_and_sizes: &[(u64, u64)]) -> Vec<SegmentInfo> {
        ages_and_sizes
            .iter()
            .enumerate()
            .map(|(at, &(age_secs, bytes))| SegmentInfo {
                base: at as u64 * 100,
                bytes,
                modified: now - Duration::from_secs(age_secs),
            })
            .collect()
    }

    #[test]
    fn size_retention_deletes_the_oldest_until_the_rest_fits() {
        let now = SystemTime::now();
        let infos = segments(now, &[(9, 100), (8, 100), (7, 100), (6, 100)]);
        let config = LogConfig {
            retention_bytes: Some(250),
            ..LogConfig::default()
        };
        assert_eq!(expired(&infos, &config, now), vec![0, 100]);
    }

    #[test]
    fn age_retention_deletes_old_segments_but_never_the_active_one() {
        let now = SystemTime::now();
        let infos = segments(now, &[(90, 10), (70, 10), (10, 10), (80, 10)]);
        let config = LogConfig {
            retention_ms: Some(60_000),
            ..LogConfig::default()
        };
        assert_eq!(expired(&infos, &config, now), vec![0, 100]);
        let all_old = segments(now, &[(90, 10), (90, 10)]);
        assert_eq!(expired(&all_old, &config, now), vec![0]);
    }

    #[test]
    fn no_settings_keep_everything() {
        let now = SystemTime::now();
        let infos = segments(now, &[(1_000_000, 1 << 40), (0, 1)]);
        assert!(expired(&infos, &LogConfig::default(), now).is_empty());
    }
}
