//! Every query, run from the registry as the command line runs it, against a plain reference
//! computed over the same generated events, on 1 and 2 workers.

// Test helpers panic on purpose: a failed set-up step is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::fmt::Debug;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::DeserializeOwned;
use weir::operators::changelog::{apply, Change};
use weir::{Destination, EventTime, Job, JobConfig};
use weir_nexmark::queries::{
    EarlyBidRow, Q0Row, Q10Row, Q11Row, Q12Row, Q13Row, Q14Row, Q15Row, Q16Row, Q17Row, Q19Row,
    Q1Row, Q20Row, Q21Row, Q22Row, Q2Row, Q3Row, Q4Row, Q5Row, Q6Row, Q7Row, Q8Row, Q9Row,
    Q6_LAST_AUCTIONS, SIDE_KEYS,
};
use weir_nexmark::{
    Auction, Bid, Event, EventInput, Generator, GeneratorConfig, Input, Output, Person,
};

const EVENTS: u64 = 30_000;

fn config() -> GeneratorConfig {
    GeneratorConfig {
        seed: 42,
        max_disorder_ms: 20,
        ..GeneratorConfig::default()
    }
}

/// Events spread over a minute of event time (500 per second), for the windowed queries.
fn slow_config() -> GeneratorConfig {
    GeneratorConfig {
        rate: 500,
        max_disorder_ms: 700,
        ..config()
    }
}

/// The bids among the first `EVENTS` events, generated one by one without the engine.
fn reference_bids() -> Vec<Bid> {
    bids_of(config())
}

fn bids_of(config: GeneratorConfig) -> Vec<Bid> {
    let generator = Generator::new(config);
    (0..EVENTS)
        .filter_map(|id| match generator.event(id) {
            Event::Bid(bid) => Some(bid),
            _ => None,
        })
        .collect()
}

/// Runs the registry's query `name` on `workers` workers over the events of `config()` and
/// returns its results (an updating query's changelog), as the command line would write them.
fn run<T: DeserializeOwned>(workers: usize, name: &str) -> Vec<T> {
    run_with(config(), workers, name)
}

/// Runs the registry's query `name` over events of `config`.
fn run_with<T: DeserializeOwned>(config: GeneratorConfig, workers: usize, name: &str) -> Vec<T> {
    run_reading(config, workers, name, PathBuf::from("no-side-table.csv"))
}

/// Runs the registry's query `name` over events of `config`, with `side_table` for queries
/// that read one, its results written as JSON lines and read back.
fn run_reading<T: DeserializeOwned>(
    config: GeneratorConfig,
    workers: usize,
    name: &str,
    side_table: PathBuf,
) -> Vec<T> {
    let query = weir_nexmark::query(name).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.jsonl");
    let side_table_read = side_table.clone();
    let output = Output {
        sink: Destination::JsonLines(path.clone()),
        changelog: true,
        side_table,
    };
    let input = EventInput::Generated {
        config,
        events: EVENTS,
    };
    let report = Job::new(JobConfig::default().workers(workers))
        .run(move |p| {
            let events = input.stream(p);
            (query.build)(p, events, &output);
            Ok(())
        })
        .unwrap();
    // A side table's rows are read too: every line but its header.
    let side_rows = if query.reads.contains(&Input::SideTable) {
        std::fs::read_to_string(&side_table_read)
            .unwrap()
            .lines()
            .count() as u64
            - 1
    } else {
        0
    };
    assert_eq!(report.records_in, EVENTS + side_rows);
    let results: Vec<T> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(report.records_out, results.len() as u64);
    results
}

/// Compares two multisets of rows, ordered by their debug text.
fn assert_same_multiset<T: Debug + PartialEq>(mut actual: Vec<T>, mut expected: Vec<T>) {
    let key = |row: &T| format!("{row:?}");
    actual.sort_by_key(key);
    expected.sort_by_key(key);
    assert_eq!(actual.len(), expected.len());
    assert!(actual == expected, "results differ from the reference");
}

#[test]
fn q0_passes_every_bid_through() {
    let expected: Vec<Q0Row> = reference_bids()
        .into_iter()
        .map(|bid| Q0Row {
            auction: bid.auction,
            bidder: bid.bidder,
            price: bid.price,
            date_time: bid.date_time,
            extra: bid.extra.into(),
        })
        .collect();
    assert!(expected.len() > 25_000);
    for workers in [1, 2] {
        assert_same_multiset(run(workers, "q0"), expected.clone());
    }
}

#[test]
fn q1_converts_prices_to_euros() {
    let expected: Vec<Q1Row> = reference_bids()
        .into_iter()
        .map(|bid| Q1Row {
            auction: bid.auction,
            bidder: bid.bidder,
            price: bid.price as f64 * 0.908,
            date_time: bid.date_time,
            extra: bid.extra.into(),
        })
        .collect();
    for workers in [1, 2] {
        assert_same_multiset(run(workers, "q1"), expected.clone());
    }
}

#[test]
fn q2_selects_every_123rd_auction() {
    let expected: Vec<Q2Row> = reference_bids()
        .into_iter()
        .filter(|bid| bid.auction % 123 == 0)
        .map(|bid| Q2Row {
            auction: bid.auction,
            price: bid.price,
        })
        .collect();
    assert!(!expected.is_empty());
    for workers in [1, 2] {
        assert_same_multiset(run(workers, "q2"), expected.clone());
    }
}

#[test]
fn q5_finds_the_most_bid_auctions_of_every_hopping_window() {
    use std::collections::BTreeMap;
    // Reference: every 10 s window starting on a 2 s boundary that holds bids.
    let mut counts: BTreeMap<(u64, u64), u64> = BTreeMap::new();
    for bid in bids_of(slow_config()) {
        let last_start = window_start(bid.date_time, 2_000);
        for start in (0..5).filter_map(|k| last_start.checked_sub(k * 2_000)) {
            *counts.entry((start, bid.auction)).or_default() += 1;
        }
    }
    let mut max_per_window: BTreeMap<u64, u64> = BTreeMap::new();
    for (&(start, _), &count) in &counts {
        let max = max_per_window.entry(start).or_default();
        *max = (*max).max(count);
    }
    let expected: Vec<Q5Row> = counts
        .iter()
        .filter(|((start, _), count)| max_per_window[start] == **count)
        .map(|(&(_, auction), &num)| Q5Row { auction, num })
        .collect();
    assert!(
        max_per_window.len() > 20,
        "{} windows",
        max_per_window.len()
    );
    for workers in [1, 2] {
        assert_same_multiset(run_with(slow_config(), workers, "q5"), expected.clone());
    }
}

#[test]
fn q11_counts_each_bidders_sessions() {
    use std::collections::BTreeMap;
    let mut times: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for bid in bids_of(slow_config()) {
        times
            .entry(bid.bidder)
            .or_default()
            .push(bid.date_time.millis());
    }
    let mut expected = Vec::new();
    for (bidder, mut times) in times {
        times.sort_unstable();
        let mut session: Option<(u64, u64, u64)> = None;
        for time in times {
            session = match session {
                Some((start, end, count)) if time <= end => {
                    Some((start, end.max(time + 10_000), count + 1))
                }
                finished => {
                    if let Some((starttime, endtime, bid_count)) = finished {
                        expected.push(Q11Row {
                            bidder,
                            bid_count,
                            starttime: EventTime(starttime),
                            endtime: EventTime(endtime),
                        });
                    }
                    Some((time, time + 10_000, 1))
                }
            };
        }
        if let Some((starttime, endtime, bid_count)) = session {
            expected.push(Q11Row {
                bidder,
                bid_count,
                starttime: EventTime(starttime),
                endtime: EventTime(endtime),
            });
        }
    }
    assert!(expected.iter().any(|row| row.bid_count > 1));
    for workers in [1, 2] {
        assert_same_multiset(run_with(slow_config(), workers, "q11"), expected.clone());
    }
}

#[test]
fn q17_summarises_each_auctions_day() {
    use std::collections::BTreeMap;
    let mut prices: BTreeMap<(u64, String), Vec<u64>> = BTreeMap::new();
    for bid in bids_of(slow_config()) {
        let day = weir::datetime::format(bid.date_time)[..10].to_owned();
        prices
            .entry((bid.auction, day))
            .or_default()
            .push(bid.price);
    }
    let expected: Vec<Q17Row> = prices
        .into_iter()
        .map(|((auction, day), prices)| {
            let rank = |range: std::ops::Range<u64>| {
                prices.iter().filter(|p| range.contains(p)).count() as u64
            };
            let sum: u64 = prices.iter().sum();
            Q17Row {
                auction,
                day,
                total_bids: prices.len() as u64,
                rank1_bids: rank(0..10_000),
                rank2_bids: rank(10_000..1_000_000),
                rank3_bids: rank(1_000_000..u64::MAX),
                min_price: *prices.iter().min().unwrap(),
                max_price: *prices.iter().max().unwrap(),
                avg_price: sum as f64 / prices.len() as f64,
                sum_price: sum,
            }
        })
        .collect();
    for workers in [1, 2] {
        assert_same_multiset(run_with(slow_config(), workers, "q17"), expected.clone());
    }
}

#[test]
fn q18_keeps_each_bidders_last_bid_per_auction() {
    use std::collections::BTreeMap;
    // Without disorder, event times are unique at this rate: "last" is unambiguous.
    let config = GeneratorConfig {
        max_disorder_ms: 0,
        ..slow_config()
    };
    let mut last: BTreeMap<(u64, u64), Bid> = BTreeMap::new();
    for bid in bids_of(config.clone()) {
        let kept = last
            .entry((bid.bidder, bid.auction))
            .or_insert_with(|| bid.clone());
        if bid.date_time >= kept.date_time {
            *kept = bid;
        }
    }
    let expected: Vec<Bid> = last.into_values().collect();
    assert!(
        expected.len() < bids_of(config.clone()).len(),
        "some pairs bid more than once"
    );
    for workers in [1, 2] {
        assert_same_multiset(run_with(config.clone(), workers, "q18"), expected.clone());
    }
}

/// Bids, distinct bidders and distinct auctions, overall and by price rank.
fn reference_statistics(bids: &[&Bid]) -> ([u64; 4], [u64; 4], [u64; 4]) {
    use std::collections::BTreeSet;
    let rank_of = |price: u64| match price {
        p if p < 10_000 => 1,
        p if p < 1_000_000 => 2,
        _ => 3,
    };
    let mut counts = [0u64; 4];
    let mut bidders: [BTreeSet<u64>; 4] = Default::default();
    let mut auctions: [BTreeSet<u64>; 4] = Default::default();
    for bid in bids {
        for slot in [0, rank_of(bid.price)] {
            counts[slot] += 1;
            bidders[slot].insert(bid.bidder);
            auctions[slot].insert(bid.auction);
        }
    }
    (
        counts,
        bidders.map(|s| s.len() as u64),
        auctions.map(|s| s.len() as u64),
    )
}

#[test]
fn q15_and_q16_count_bids_bidders_and_auctions_per_day_and_channel() {
    use std::collections::BTreeMap;
    let bids = bids_of(slow_config());
    let day = |bid: &Bid| weir::datetime::format(bid.date_time)[..10].to_owned();
    let mut days: BTreeMap<String, Vec<&Bid>> = BTreeMap::new();
    let mut channel_days: BTreeMap<(String, String), Vec<&Bid>> = BTreeMap::new();
    for bid in &bids {
        days.entry(day(bid)).or_default().push(bid);
        channel_days
            .entry((bid.channel.to_string(), day(bid)))
            .or_default()
            .push(bid);
    }
    let q15_expected: Vec<Q15Row> = days
        .iter()
        .map(|(day, bids)| {
            let (b, u, a) = reference_statistics(bids);
            Q15Row {
                day: day.clone(),
                total_bids: b[0],
                rank1_bids: b[1],
                rank2_bids: b[2],
                rank3_bids: b[3],
                total_bidders: u[0],
                rank1_bidders: u[1],
                rank2_bidders: u[2],
                rank3_bidders: u[3],
                total_auctions: a[0],
                rank1_auctions: a[1],
                rank2_auctions: a[2],
                rank3_auctions: a[3],
            }
        })
        .collect();
    let q16_expected: Vec<Q16Row> = channel_days
        .iter()
        .map(|((channel, day), bids)| {
            let (b, u, a) = reference_statistics(bids);
            let latest = bids.iter().map(|bid| bid.date_time).max().unwrap();
            Q16Row {
                channel: channel.as_str().into(),
                day: day.clone(),
                minute: weir::datetime::format(latest)[11..16].to_owned(),
                total_bids: b[0],
                rank1_bids: b[1],
                rank2_bids: b[2],
                rank3_bids: b[3],
                total_bidders: u[0],
                rank1_bidders: u[1],
                rank2_bidders: u[2],
                rank3_bidders: u[3],
                total_auctions: a[0],
                rank1_auctions: a[1],
                rank2_auctions: a[2],
                rank3_auctions: a[3],
            }
        })
        .collect();
    assert!(q16_expected.len() > 100);
    for workers in [1, 2] {
        assert_same_multiset(
            run_with(slow_config(), workers, "q15"),
            q15_expected.clone(),
        );
        assert_same_multiset(
            run_with(slow_config(), workers, "q16"),
            q16_expected.clone(),
        );
    }
}

#[test]
fn q19_ranks_the_ten_highest_bids_of_each_auction() {
    use std::collections::BTreeMap;
    // Without disorder, bids arrive in event-time order on every worker count, so price ties
    // rank the same way (earlier bids first).
    let config = GeneratorConfig {
        max_disorder_ms: 0,
        ..slow_config()
    };
    let mut by_auction: BTreeMap<u64, Vec<Bid>> = BTreeMap::new();
    for bid in bids_of(config.clone()) {
        by_auction.entry(bid.auction).or_default().push(bid);
    }
    let expected: Vec<Q19Row> = by_auction
        .into_values()
        .flat_map(|mut bids| {
            bids.sort_by(|a, b| b.price.cmp(&a.price).then(a.date_time.cmp(&b.date_time)));
            bids.into_iter()
                .take(10)
                .zip(1..)
                .map(|(bid, rank_number)| Q19Row {
                    auction: bid.auction,
                    bidder: bid.bidder,
                    price: bid.price,
                    channel: bid.channel,
                    url: bid.url,
                    date_time: bid.date_time,
                    extra: bid.extra,
                    rank_number,
                })
        })
        .collect();
    // Ties at the cut-off may pick different bids: compare what does not depend on them.
    let key = |row: &Q19Row| (row.auction, row.rank_number, row.price);
    for workers in [1, 2] {
        let mut actual: Vec<_> = run_with::<Q19Row>(config.clone(), workers, "q19")
            .iter()
            .map(key)
            .collect();
        let mut wanted: Vec<_> = expected.iter().map(key).collect();
        actual.sort_unstable();
        wanted.sort_unstable();
        assert_eq!(actual, wanted, "{workers} workers");
    }
}

/// Bids over two days of event time, so every hour of the day occurs.
fn day_long_config() -> GeneratorConfig {
    GeneratorConfig {
        rate: 1,
        ..config()
    }
}

/// q10 writes a directory of partitions: every row sits in the partition of its date and
/// hour, and together they hold every bid.
#[test]
fn q10_writes_every_bid_into_the_partition_of_its_date_and_hour() {
    let expected: Vec<Q10Row> = bids_of(day_long_config())
        .into_iter()
        .map(|bid| {
            // The reference reads the date and hour off the formatted time.
            let text = weir::datetime::format(bid.date_time);
            Q10Row {
                auction: bid.auction,
                bidder: bid.bidder,
                price: bid.price,
                date_time: bid.date_time,
                extra: bid.extra.into(),
                dt: text[..10].to_owned(),
                hour: text[11..13].to_owned(),
            }
        })
        .collect();
    let partitions: std::collections::BTreeSet<String> =
        expected.iter().map(Q10Row::partition).collect();
    assert!(partitions.len() > 3, "{partitions:?}");
    for workers in [1, 2] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("bids");
        let output = Output {
            sink: Destination::JsonLines(root.clone()),
            ..Output::discard()
        };
        let input = EventInput::Generated {
            config: day_long_config(),
            events: EVENTS,
        };
        let query = weir_nexmark::query("q10").unwrap();
        Job::new(JobConfig::default().workers(workers))
            .run(move |p| {
                let events = input.stream(p);
                (query.build)(p, events, &output);
                Ok(())
            })
            .unwrap();
        let mut actual = Vec::new();
        for partition in &partitions {
            let file = root.join(partition).join("part.jsonl");
            for line in std::fs::read_to_string(&file).unwrap().lines() {
                let row: Q10Row = serde_json::from_str(line).unwrap();
                assert_eq!(&row.partition(), partition, "{}", file.display());
                actual.push(row);
            }
        }
        assert_same_multiset(actual, expected.clone());
    }
}

#[test]
fn q14_filters_euro_prices_and_tells_the_time_of_day() {
    let expected: Vec<Q14Row> = bids_of(day_long_config())
        .into_iter()
        .filter_map(|bid| {
            let price = bid.price as f64 * 0.908;
            if price <= 1_000_000.0 || price >= 50_000_000.0 {
                return None;
            }
            // The hour, read off the formatted time.
            let hour: u32 = weir::datetime::format(bid.date_time)[11..13]
                .parse()
                .unwrap();
            let bid_time_type = if (8..=18).contains(&hour) {
                "dayTime"
            } else if hour <= 6 || hour >= 20 {
                "nightTime"
            } else {
                "otherTime"
            };
            Some(Q14Row {
                auction: bid.auction,
                bidder: bid.bidder,
                price,
                bid_time_type: bid_time_type.into(),
                date_time: bid.date_time,
                c_counts: bid.extra.matches('c').count() as u64,
                extra: bid.extra.into(),
            })
        })
        .collect();
    for kind in ["dayTime", "nightTime", "otherTime"] {
        assert!(
            expected.iter().any(|row| row.bid_time_type == kind),
            "no {kind} rows"
        );
    }
    for workers in [1, 2] {
        assert_same_multiset(
            run_with(day_long_config(), workers, "q14"),
            expected.clone(),
        );
    }
}

#[test]
fn q21_and_q22_extract_channel_numbers_and_url_directories() {
    let bids = reference_bids();
    let q21_expected: Vec<Q21Row> = bids
        .iter()
        .filter_map(|bid| {
            let known = ["apple", "google", "facebook", "baidu"]
                .iter()
                .position(|name| bid.channel.eq_ignore_ascii_case(name))
                .map(|index| index.to_string());
            // The parameters after '?', as name=value pairs.
            let from_url = bid.url.split_once('?').and_then(|(_, query)| {
                query
                    .split('&')
                    .find_map(|pair| pair.strip_prefix("channel_id=").map(str::to_owned))
            });
            Some(Q21Row {
                auction: bid.auction,
                bidder: bid.bidder,
                price: bid.price,
                channel: bid.channel.clone(),
                channel_id: known.or(from_url)?,
            })
        })
        .collect();
    let q22_expected: Vec<Q22Row> = bids
        .iter()
        .map(|bid| {
            let parts: Vec<&str> = bid.url.split('/').collect();
            let dir = |index: usize| parts.get(index).map(|part| part.to_string());
            Q22Row {
                auction: bid.auction,
                bidder: bid.bidder,
                price: bid.price,
                channel: bid.channel.clone(),
                dir1: dir(3),
                dir2: dir(4),
                dir3: dir(5),
            }
        })
        .collect();
    assert!(q21_expected.iter().any(|row| row.channel_id == "1"));
    assert!(q21_expected.iter().any(|row| row.channel_id.len() > 1));
    for workers in [1, 2] {
        assert_same_multiset(run(workers, "q21"), q21_expected.clone());
        assert_same_multiset(run(workers, "q22"), q22_expected.clone());
    }
}

#[test]
fn q12_counts_every_bid_of_every_bidder_in_processing_time_windows() {
    use std::collections::BTreeMap;
    let mut expected: BTreeMap<u64, u64> = BTreeMap::new();
    for bid in reference_bids() {
        *expected.entry(bid.bidder).or_default() += 1;
    }
    for workers in [1, 2] {
        let rows: Vec<Q12Row> = run(workers, "q12");
        // Which window a bid lands in depends on the wall clock; the totals do not.
        let mut totals: BTreeMap<u64, u64> = BTreeMap::new();
        for row in &rows {
            assert_eq!(row.endtime.since(row.starttime), Duration::from_secs(10));
            assert_eq!(row.starttime.millis() % 10_000, 0);
            *totals.entry(row.bidder).or_default() += row.bid_count;
        }
        assert_eq!(totals, expected, "{workers} workers");
    }
}

/// On the harness's clock: each bid counts in the window of the processing time it is handled
/// at, whatever its event time, and a window closes exactly when the clock reaches its end.
#[test]
fn q12_puts_each_bid_in_the_window_of_the_processing_time_it_is_handled_at() {
    use std::time::Duration;
    use weir::testing::TestJob;
    use weir::CollectSink;
    use weir_nexmark::queries::q12;

    let bid = |bidder: u64, date_time: u64| {
        Event::Bid(Bid {
            auction: 1,
            bidder,
            price: 100,
            channel: "web".into(),
            url: "https://x".into(),
            date_time: EventTime(date_time),
            extra: Box::default(),
        })
    };
    let row = |bidder, bid_count, starttime: u64| Q12Row {
        bidder,
        bid_count,
        starttime: EventTime(starttime),
        endtime: EventTime(starttime + 10_000),
    };
    let mut job = TestJob::new(JobConfig::default().workers(2)).unwrap();
    let events = job.input::<Event>("events");
    let sink = CollectSink::new();
    let rows = sink.results();
    let source = events.clone();
    job.build(move |p| {
        q12(p.source(source.source())).sink(sink.clone());
        Ok(())
    })
    .unwrap();
    let closed = |rows: &std::sync::Mutex<Vec<Q12Row>>| {
        let mut rows = rows.lock().unwrap().clone();
        rows.sort_by_key(|row| (row.starttime, row.bidder));
        rows
    };

    // Handled at 1.000 s: window [0 s, 10 s), whatever the bids' event times.
    job.set_clock(weir::ProcessingTime(1_000));
    events.push([bid(1, 50_000), bid(1, 3), bid(2, 70_000), bid(1, 900_000)]);
    job.run().unwrap();
    job.advance_clock(Duration::from_millis(8_999));
    job.run().unwrap();
    assert_eq!(closed(&rows), vec![], "open until the clock reaches 10 s");
    job.advance_clock(Duration::from_millis(1));
    job.run().unwrap();
    assert_eq!(closed(&rows), vec![row(1, 3, 0), row(2, 1, 0)]);

    // Handled at 12.5 s and at 21 s: the next two windows.
    job.set_clock(weir::ProcessingTime(12_500));
    events.push([bid(1, 1), bid(1, 2)]);
    job.run().unwrap();
    job.set_clock(weir::ProcessingTime(21_000));
    job.run().unwrap();
    events.push([bid(2, 5)]);
    job.run().unwrap();
    assert_eq!(
        closed(&rows),
        vec![row(1, 3, 0), row(2, 1, 0), row(1, 2, 10_000)]
    );
    // The input ends before 30 s: the last window closes with it.
    job.run_to_end().unwrap();
    assert_eq!(
        closed(&rows),
        vec![
            row(1, 3, 0),
            row(2, 1, 0),
            row(1, 2, 10_000),
            row(2, 1, 20_000)
        ]
    );
}

/// Every event of `config` among the first `EVENTS`, generated one by one without the engine.
fn events_of(config: GeneratorConfig) -> Vec<Event> {
    let generator = Generator::new(config);
    (0..EVENTS).map(|id| generator.event(id)).collect()
}

/// The start, in milliseconds, of the tumbling window of `size` ms that holds `at`.
fn window_start(at: EventTime, size: u64) -> u64 {
    at.millis() - at.millis() % size
}

#[test]
fn q7_finds_the_highest_bids_of_every_window() {
    use std::collections::BTreeMap;
    // Reference: a nested loop of every bid against its window's maximum.
    let bids = bids_of(slow_config());
    let mut max_per_window: BTreeMap<u64, u64> = BTreeMap::new();
    for bid in &bids {
        let max = max_per_window
            .entry(window_start(bid.date_time, 10_000))
            .or_default();
        *max = (*max).max(bid.price);
    }
    let expected: Vec<Q7Row> = bids
        .iter()
        .filter(|bid| max_per_window[&window_start(bid.date_time, 10_000)] == bid.price)
        .map(|bid| Q7Row {
            auction: bid.auction,
            bidder: bid.bidder,
            price: bid.price,
            date_time: bid.date_time,
            extra: bid.extra.to_string(),
        })
        .collect();
    assert!(max_per_window.len() > 5, "{} windows", max_per_window.len());
    for workers in [1, 2] {
        assert_same_multiset(run_with(slow_config(), workers, "q7"), expected.clone());
    }
}

#[test]
fn q8_finds_people_who_opened_auctions_in_the_window_they_registered_in() {
    // Reference: a nested loop of people and auctions.
    let events = events_of(slow_config());
    let people = events.iter().filter_map(|event| match event {
        Event::Person(person) => Some(person),
        _ => None,
    });
    let auctions: Vec<_> = events
        .iter()
        .filter_map(|event| match event {
            Event::Auction(auction) => Some(auction),
            _ => None,
        })
        .collect();
    let expected: Vec<Q8Row> = people
        .filter(|person| {
            auctions.iter().any(|auction| {
                auction.seller == person.id
                    && window_start(auction.date_time, 10_000)
                        == window_start(person.date_time, 10_000)
            })
        })
        .map(|person| Q8Row {
            id: person.id,
            name: person.name.clone(),
            starttime: EventTime(window_start(person.date_time, 10_000)),
        })
        .collect();
    assert!(expected.len() > 20, "{} rows", expected.len());
    for workers in [1, 2] {
        assert_same_multiset(run_with(slow_config(), workers, "q8"), expected.clone());
    }
}

fn people_and_auctions(events: &[Event]) -> (Vec<&Person>, Vec<&Auction>) {
    let mut people = Vec::new();
    let mut auctions = Vec::new();
    for event in events {
        match event {
            Event::Person(person) => people.push(&**person),
            Event::Auction(auction) => auctions.push(&**auction),
            Event::Bid(_) => {}
        }
    }
    (people, auctions)
}

/// Applies a changelog, failing on a delete of a row never inserted.
fn table<T: std::hash::Hash + Eq + Debug>(changes: Vec<Change<T>>) -> HashMap<T, u64> {
    apply(changes).unwrap()
}

fn count_rows<T: std::hash::Hash + Eq>(rows: impl IntoIterator<Item = T>) -> HashMap<T, u64> {
    let mut table = HashMap::new();
    for row in rows {
        *table.entry(row).or_insert(0) += 1;
    }
    table
}

#[test]
fn q3_joins_category_10_auctions_with_their_western_sellers() {
    let events = events_of(slow_config());
    let (people, auctions) = people_and_auctions(&events);
    let expected = count_rows(
        auctions
            .iter()
            .filter(|a| a.category == 10)
            .flat_map(|auction| {
                people
                    .iter()
                    .filter(|p| {
                        p.id == auction.seller && ["OR", "ID", "CA"].contains(&p.state.as_str())
                    })
                    .map(|p| Q3Row {
                        name: p.name.clone(),
                        city: p.city.clone(),
                        state: p.state.clone(),
                        id: auction.id,
                    })
            }),
    );
    assert!(expected.len() > 3, "{} rows", expected.len());
    for workers in [1, 2] {
        assert_eq!(
            table(run_with::<Change<Q3Row>>(slow_config(), workers, "q3")),
            expected,
            "{workers} workers"
        );
    }
}

#[test]
fn q20_expands_bids_on_category_10_auctions() {
    let events = events_of(slow_config());
    let (_, auctions) = people_and_auctions(&events);
    let expected = count_rows(bids_of(slow_config()).into_iter().flat_map(|bid| {
        auctions
            .iter()
            .filter(|a| a.id == bid.auction && a.category == 10)
            .map(|a| {
                (
                    bid.auction,
                    bid.bidder,
                    bid.price,
                    bid.date_time,
                    a.item_name.clone(),
                )
            })
            .collect::<Vec<_>>()
    }));
    assert!(expected.len() > 100, "{} rows", expected.len());
    for workers in [1, 2] {
        let rows = table(run_with::<Change<Q20Row>>(slow_config(), workers, "q20"));
        let rows: HashMap<_, u64> = rows
            .into_iter()
            .map(|(r, n)| {
                (
                    (r.auction, r.bidder, r.price, r.bid_date_time, r.item_name),
                    n,
                )
            })
            .collect();
        assert_eq!(rows, expected, "{workers} workers");
    }
}

/// Per auction, the bids placed while it was open, by nested loops.
fn bids_on_open_auctions(events: &[Event]) -> Vec<(&Auction, Vec<Bid>)> {
    let (_, auctions) = people_and_auctions(events);
    let bids = bids_of(slow_config());
    auctions
        .into_iter()
        .map(|auction| {
            let on_it = bids
                .iter()
                .filter(|b| b.auction == auction.id)
                .filter(|b| (auction.date_time..=auction.expires).contains(&b.date_time))
                .cloned()
                .collect();
            (auction, on_it)
        })
        .collect()
}

#[test]
fn q4_averages_the_closing_prices_per_category() {
    use std::collections::BTreeMap;
    let events = events_of(slow_config());
    let mut finals: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (auction, bids) in bids_on_open_auctions(&events) {
        if let Some(max) = bids.iter().map(|b| b.price).max() {
            finals.entry(auction.category).or_default().push(max);
        }
    }
    let expected: BTreeMap<u64, i64> = finals
        .iter()
        .map(|(category, maxima)| {
            let avg = maxima.iter().sum::<u64>() as f64 / maxima.len() as f64;
            (*category, (avg * 1000.0).round() as i64)
        })
        .collect();
    assert!(expected.len() >= 3, "{expected:?}");
    for workers in [1, 2] {
        let changes: Vec<Change<Q4Row>> = run_with(slow_config(), workers, "q4");
        let view: BTreeMap<u64, i64> = table(
            changes
                .into_iter()
                .map(|c| c.map(|r| (r.category, (r.avg * 1000.0).round() as i64)))
                .collect(),
        )
        .into_keys()
        .collect();
        assert_eq!(view, expected, "{workers} workers");
    }
}

#[test]
fn q6_averages_each_sellers_last_ten_closed_auctions() {
    use std::collections::{BTreeMap, VecDeque};
    // Reference: per seller, the auctions with a bid that meets the reserve, in closing order,
    // each emitting the integer mean of the last ten final prices.
    let events = events_of(slow_config());
    let mut closed: BTreeMap<u64, Vec<(EventTime, u64, u64)>> = BTreeMap::new();
    for (auction, bids) in bids_on_open_auctions(&events) {
        let valid = bids.iter().filter(|bid| bid.price >= auction.reserve);
        if let Some(price) = valid.map(|bid| bid.price).max() {
            closed
                .entry(auction.seller)
                .or_default()
                .push((auction.expires, auction.id, price));
        }
    }
    let mut expected: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (seller, mut auctions) in closed {
        auctions.sort_unstable();
        let mut last = VecDeque::new();
        for (_, _, price) in auctions {
            if last.len() == Q6_LAST_AUCTIONS {
                last.pop_front();
            }
            last.push_back(price);
            let average = last.iter().sum::<u64>() / last.len() as u64;
            expected.entry(seller).or_default().push(average);
        }
    }
    let rows: usize = expected.values().map(Vec::len).sum();
    assert!(rows > 100, "{rows} closed auctions");
    assert!(
        expected
            .values()
            .any(|averages| averages.len() > Q6_LAST_AUCTIONS),
        "no seller closed more than {Q6_LAST_AUCTIONS} auctions: the window never slid"
    );
    for workers in [1, 2] {
        // One seller's averages come from one worker, in closing order.
        let mut actual: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for row in run_with::<Q6Row>(slow_config(), workers, "q6") {
            actual.entry(row.seller).or_default().push(row.avg_price);
        }
        assert_eq!(actual, expected, "{workers} workers");
    }
}

#[test]
fn q9_finds_each_auctions_winning_bid() {
    use std::cmp::Reverse;
    let events = events_of(slow_config());
    let expected: HashMap<(u64, u64, u64, EventTime), u64> = count_rows(
        bids_on_open_auctions(&events)
            .into_iter()
            .filter_map(|(auction, bids)| {
                bids.into_iter()
                    .max_by_key(|b| (b.price, Reverse(b.date_time), b.bidder))
                    .map(|b| (auction.id, b.bidder, b.price, b.date_time))
            }),
    );
    assert!(expected.len() > 100, "{} auctions", expected.len());
    for workers in [1, 2] {
        let changes: Vec<Change<Q9Row>> = run_with(slow_config(), workers, "q9");
        let rows = table(
            changes
                .into_iter()
                .map(|c| c.map(|r| (r.id, r.bidder, r.price, r.bid_date_time)))
                .collect(),
        );
        assert_eq!(rows, expected, "{workers} workers");
    }
}

#[test]
fn q13_joins_bids_with_the_side_table_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let side_input = dir.path().join("side.csv");
    // Half the keys, so that bids on the others find no row.
    let mut csv = String::from("key,value\n");
    for key in (0..SIDE_KEYS).step_by(2) {
        csv.push_str(&format!("{key},v{key}\n"));
    }
    std::fs::write(&side_input, csv).unwrap();
    let expected: Vec<Q13Row> = reference_bids()
        .into_iter()
        .filter(|bid| (bid.auction % SIDE_KEYS).is_multiple_of(2))
        .map(|bid| Q13Row {
            auction: bid.auction,
            bidder: bid.bidder,
            price: bid.price,
            date_time: bid.date_time,
            value: format!("v{}", bid.auction % SIDE_KEYS),
        })
        .collect();
    assert!(expected.len() > 1_000 && expected.len() < reference_bids().len());
    for workers in [1, 2] {
        let actual = run_reading(config(), workers, "q13", side_input.clone());
        assert_same_multiset(actual, expected.clone());
    }
}

#[test]
fn early_bids_are_the_bids_within_10_s_of_their_auction_opening() {
    let events = events_of(slow_config());
    let (_, auctions) = people_and_auctions(&events);
    let expected: Vec<EarlyBidRow> = bids_of(slow_config())
        .into_iter()
        .filter(|bid| {
            auctions.iter().any(|a| {
                a.id == bid.auction
                    && (a.date_time..=a.date_time + Duration::from_secs(10))
                        .contains(&bid.date_time)
            })
        })
        .map(|bid| EarlyBidRow {
            auction: bid.auction,
            bidder: bid.bidder,
            price: bid.price,
            date_time: bid.date_time,
        })
        .collect();
    assert!(expected.len() > 1_000, "{} rows", expected.len());
    for workers in [1, 2] {
        assert_same_multiset(
            run_with(slow_config(), workers, "early-bids"),
            expected.clone(),
        );
    }
}
