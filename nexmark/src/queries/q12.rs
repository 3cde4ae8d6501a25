//! Nexmark q12, processing-time windows: bids per bidder in 10 s windows of wall-clock time.
//!
//! ```sql
//! SELECT B.bidder, count(*) AS bid_count,
//!        TUMBLE_START(B.p_time, INTERVAL '10' SECOND) AS starttime,
//!        TUMBLE_END(B.p_time, INTERVAL '10' SECOND) AS endtime
//! FROM (SELECT *, PROCTIME() AS p_time FROM bid) B
//! GROUP BY B.bidder, TUMBLE(B.p_time, INTERVAL '10' SECOND);
//! ```
//!
//! A window closes when the wall clock passes its end, or when the input ends. Which window a
//! bid falls in depends on when it is processed, so results differ between runs; the total
//! count per bidder does not.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::Event;
use weir::{EventTime, KeyedContext, KeyedProcess, ProcessingTime, Stream};

use super::bids::select_bids;
use super::q11::Q11Row;
use crate::registry::{Input, Query, Results};

/// The wall-clock window length.
pub const Q12_WINDOW: Duration = Duration::from_secs(10);

/// A q12 result: the same columns as q11's, for a window of wall-clock time.
pub type Q12Row = Q11Row;

/// Counts a bidder's bids per wall-clock window.
struct ProcessingTimeCount {
    size: u64,
}

impl KeyedProcess<u64, u64> for ProcessingTimeCount {
    /// Count per window start.
    type State = BTreeMap<u64, u64>;
    type Output = Q12Row;

    fn on_record(
        &mut self,
        cx: &mut KeyedContext<u64, Q12Row, u64>,
        _bidder: &u64,
        counts: &mut BTreeMap<u64, u64>,
        _bid: u64,
        _event_time: EventTime,
    ) {
        let now = cx.now().millis();
        let start = now - now % self.size;
        *counts.entry(start).or_default() += 1;
        cx.set_processing_timer(ProcessingTime(start + self.size));
    }

    fn on_timer(
        &mut self,
        _cx: &mut KeyedContext<u64, Q12Row, u64>,
        _bidder: &u64,
        _counts: &mut BTreeMap<u64, u64>,
        _time: EventTime,
    ) {
    }

    fn on_processing_timer(
        &mut self,
        cx: &mut KeyedContext<u64, Q12Row, u64>,
        bidder: &u64,
        counts: &mut BTreeMap<u64, u64>,
        time: ProcessingTime,
    ) {
        // The timer of the window ending at `time` (it fires early when the input ends).
        let time = time.millis();
        let start = time - self.size;
        if let Some(bid_count) = counts.remove(&start) {
            // The wall-clock window goes in the date-time columns q12 shares with q11.
            cx.emit(Q12Row {
                bidder: *bidder,
                bid_count,
                starttime: EventTime(start),
                endtime: EventTime(time),
            });
        }
    }

    fn is_empty(&self, counts: &BTreeMap<u64, u64>) -> bool {
        counts.is_empty()
    }
}

/// q12: bids per bidder per 10 s of processing time.
pub fn q12<'s>(events: Stream<'s, Event>) -> Stream<'s, Q12Row> {
    let logic = ProcessingTimeCount {
        size: weir::millis(Q12_WINDOW),
    };
    select_bids(events, |bid| Some(bid.bidder))
        .key_by(|bidder| *bidder)
        .process("processing-time count", |_| EventTime::ZERO, logic)
        .results
}

/// q12 in the registry.
pub const Q12: Query = Query {
    name: "q12",
    about: "Processing-time windows: bids per bidder per 10 s of wall-clock time.",
    reads: &[Input::Bids],
    results: Results::Appends,
    build: |_, events, output| output.append(q12(events)),
};
