//! A reader's rate limit: at most so many records per second since it started, to replay a
//! topic at a steady pace instead of as fast as possible.

use std::time::Instant;

/// Counts the records a reader has read against the number its rate allows by now.
pub(crate) struct Pace {
    rate: u64,
    started: Instant,
    read: u64,
}

impl Pace {
    /// At most `rate` records per second from `now` on.
    pub(crate) fn new(rate: u64, now: Instant) -> Self {
        Pace {
            rate: rate.max(1),
            started: now,
            read: 0,
        }
    }

    /// How many records may be read now.
    pub(crate) fn allowance(&self, now: Instant) -> usize {
        let due = now.duration_since(self.started).as_secs_f64() * self.rate as f64;
        (due as u64).saturating_sub(self.read) as usize
    }

    /// Counts `read` more records read.
    pub(crate) fn count(&mut self, read: usize) {
        self.read += read as u64;
    }
}
