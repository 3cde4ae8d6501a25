//! Updating aggregations against a plain reference: applying the emitted changelog gives, per
//! group, the aggregate of the rows inserted and not deleted, on 1 and 2 workers; a chained
//! MAX per key then AVG per group retracts replaced maxima; a running MAX whose keys close
//! drops them when the watermark passes their close, and sends records for closed keys to
//! the late output.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};

use crate::common::{run_script, Step};
use proptest::prelude::*;
use weir_engine::{CollectSink, Data, EventTime, JobConfig, Stream};
use weir_operators::aggregate::{Avg, Count, Max, Min, Sum};
use weir_operators::changelog::{apply, Change, ChangelogExt};
use weir_operators::updating::{RunningExt, UpdatingExt};

/// `(group, item, value)`: items belong to groups, as auctions to categories.
type Row = (u32, u32, u64);

/// Runs `query` over `changes` dealt to workers by group; returns the changelog it emitted.
fn run<T: Data>(
    changes: &[Change<Row>],
    workers: usize,
    query: impl for<'s> Fn(Stream<'s, Change<Row>>) -> Stream<'s, T> + Send + Sync + 'static,
) -> Vec<T> {
    let mut steps = vec![Vec::new(); workers];
    for change in changes {
        steps[change.row().0 as usize % workers].push(Step::Record(change.clone()));
    }
    let sink = CollectSink::new();
    let out = sink.results();
    run_script(
        JobConfig::default().workers(workers),
        steps,
        move |p, script| {
            query(p.source(script)).sink(sink.clone());
            Ok(())
        },
    );
    let results = out.lock().unwrap().clone();
    results
}

/// Inserts of new rows and deletes of rows inserted before; returns the changes and the
/// rows left at the end.
fn changes_strategy() -> impl Strategy<Value = (Vec<Change<Row>>, Vec<Row>)> {
    proptest::collection::vec((0u32..3, 0u32..5, 0u64..50, 0u8..3), 1..60).prop_map(|ops| {
        let mut held: Vec<Row> = Vec::new();
        let mut changes = Vec::new();
        for (group, item, value, op) in ops {
            match held.iter().position(|row| row.0 == group) {
                Some(index) if op == 0 => changes.push(Change::Delete(held.remove(index))),
                _ => {
                    held.push((group, item, value));
                    changes.push(Change::Insert((group, item, value)));
                }
            }
        }
        (changes, held)
    })
}

fn by_group(rows: &[Row]) -> BTreeMap<u32, Vec<u64>> {
    let mut groups: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for row in rows {
        groups.entry(row.0).or_default().push(row.2);
    }
    groups
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn updating_aggregates_apply_to_the_aggregates_of_the_rows_left(
        (changes, rows) in changes_strategy(),
        workers in 1usize..3,
    ) {
        let groups = by_group(&rows);
        let emitted = run(&changes, workers, |changes| {
            let keyed = || changes.clone().key_by(|change| change.row().0);
            let max = keyed().aggregate_changes(Max::of(|row: &Row| row.2).retractable()).map(|c| c.map(|(g, v)| (g, 0u8, v.unwrap_or_default())));
            let min = keyed().aggregate_changes(Min::of(|row: &Row| row.2).retractable()).map(|c| c.map(|(g, v)| (g, 1, v.unwrap_or_default())));
            let count = keyed().aggregate_changes(Count).map(|c| c.map(|(g, v)| (g, 2, v)));
            let sum = keyed().aggregate_changes(Sum::of(|row: &Row| row.2)).map(|c| c.map(|(g, v)| (g, 3, v)));
            max.union(min).union(count).union(sum)
        });
        let table = apply(emitted).map_err(TestCaseError::fail)?;
        let mut expected = HashMap::new();
        for (group, values) in &groups {
            expected.insert((*group, 0u8, *values.iter().max().unwrap()), 1);
            expected.insert((*group, 1, *values.iter().min().unwrap()), 1);
            expected.insert((*group, 2, values.len() as u64), 1);
            expected.insert((*group, 3, values.iter().sum()), 1);
        }
        prop_assert_eq!(table, expected);
    }

    #[test]
    fn max_per_item_then_average_per_group_retracts_replaced_maxima(
        (changes, rows) in changes_strategy(),
        workers in 1usize..3,
    ) {
        // Reference: per group, the mean over items of each item's largest value.
        let mut maxima: BTreeMap<(u32, u32), u64> = BTreeMap::new();
        for (group, item, value) in &rows {
            let max = maxima.entry((*group, *item)).or_default();
            *max = (*max).max(*value);
        }
        let mut expected: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
        for ((group, _), max) in &maxima {
            let (sum, count) = expected.entry(*group).or_default();
            *sum += max;
            *count += 1;
        }
        let averages = run(&changes, workers, |changes| {
            changes
                .key_by(|change| (change.row().0, change.row().1))
                .aggregate_changes(Max::of(|row: &Row| row.2).retractable())
                .key_by(|change| change.row().0 .0)
                .aggregate_changes(Avg::of(|((_, _), max): &((u32, u32), Option<u64>)| max.unwrap_or_default() as f64))
                .map(|change| change.map(|(group, average)| (group, (average * 1000.0).round() as u64)))
                .final_view()
        });
        let mut averages: Vec<(u32, u64)> = averages;
        averages.sort_unstable();
        let expected: Vec<(u32, u64)> = expected
            .into_iter()
            .map(|(group, (sum, count))| (group, (sum as f64 / count as f64 * 1000.0).round() as u64))
            .collect();
        prop_assert_eq!(averages, expected);
    }

    #[test]
    fn a_running_max_until_a_close_drops_closed_keys_and_sends_their_stragglers_late(
        ops in proptest::collection::vec((0u64..6, 0u64..100, 0u8..4), 1..80),
        workers in 1usize..3,
    ) {
        // Key k closes at (k + 1) * 100; a step of 3 raises its worker's watermark by 60.
        let until = |key: u64| (key + 1) * 100;
        let mut steps = vec![Vec::new(); workers];
        let mut watermarks = vec![0u64; workers];
        let mut maxima: BTreeMap<u64, u64> = BTreeMap::new();
        let mut late = 0;
        for (index, (key, value, op)) in ops.into_iter().enumerate() {
            let worker = index % workers;
            if op == 3 {
                watermarks[worker] += 60;
                steps[worker].push(Step::Watermark(watermarks[worker]));
            } else if until(key) < watermarks[worker] {
                late += 1;
                steps[worker].push(Step::Record((key, value)));
            } else {
                let max = maxima.entry(key).or_default();
                *max = (*max).max(value);
                steps[worker].push(Step::Record((key, value)));
            }
        }
        let sink = CollectSink::new();
        let out = sink.results();
        let metrics = run_script(JobConfig::default().workers(workers), steps, move |p, script| {
            p.source(script)
                .key_by(|(key, _)| *key)
                .aggregate_running_until(Max::of(|(_, value): &(u64, u64)| *value), move |(key, _)| {
                    EventTime(until(*key))
                })
                .results
                .sink(sink.clone());
            Ok(())
        });
        let emitted = out.lock().unwrap().clone();
        let table = apply(emitted).map_err(TestCaseError::fail)?;
        let expected: HashMap<_, _> = maxima.into_iter().map(|(key, max)| ((key, Some(max)), 1)).collect();
        prop_assert_eq!(table, expected);
        prop_assert_eq!(metrics.late_records(), late);
        let (_, running) = metrics
            .operators()
            .into_iter()
            .find(|(name, _)| name.contains("running aggregate"))
            .unwrap();
        prop_assert_eq!(running.state_keys(), 0, "every key closed by the end");
    }
}
