//! File sources and sinks in jobs: CSV and JSON lines round trips with dead letters, and a
//! Parquet file read back through the parquet crate.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::RowAccessor;
use serde::{Deserialize, Serialize};
use weir_connectors::{CsvSink, CsvSource, JsonLinesSink, JsonLinesSource, ParquetSink};
use weir_engine::{CollectSink, DeadLetter, Job, JobConfig, Source};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Trade {
    symbol: String,
    price: f64,
    volume: u64,
    note: Option<String>,
}

fn trades(count: u64) -> Vec<Trade> {
    (0..count)
        .map(|n| Trade {
            symbol: format!("S{}", n % 13),
            price: n as f64 * 0.25,
            volume: n * 7,
            note: (n % 4 == 0).then(|| format!("note, with \"quotes\" and\nnewline {n}")),
        })
        .collect()
}

/// Runs `source` on `workers` workers into a sink and returns records and dead letters.
fn collect<S>(
    workers: usize,
    source: impl Fn() -> S + Send + Sync + 'static,
) -> (Vec<Trade>, Vec<DeadLetter>)
where
    S: Source<Item = Trade> + 'static,
{
    let records = CollectSink::new();
    let letters = CollectSink::new();
    let (records_out, letters_out) = (records.results(), letters.results());
    Job::new(JobConfig {
        workers,
        ..JobConfig::default()
    })
    .run(move |p| {
        p.source(source()).sink(records.clone());
        p.dead_letters_to(letters.clone());
        Ok(())
    })
    .unwrap();
    let mut records = records_out.lock().unwrap().clone();
    records.sort_by_key(|trade| trade.volume);
    let mut letters = letters_out.lock().unwrap().clone();
    letters.sort_by_key(|letter| letter.line);
    (records, letters)
}

/// Writes `trades` through a job on two workers into the sink `make_sink` makes on each.
fn write_with<K: weir_engine::Sink<Trade>>(
    make_sink: impl Fn() -> K + Send + Sync + 'static,
    trades: Vec<Trade>,
) {
    Job::new(JobConfig {
        workers: 2,
        ..JobConfig::default()
    })
    .run(move |p| {
        p.source(weir_engine::IterSource::new("trades", trades.clone()))
            .sink(make_sink());
        Ok(())
    })
    .unwrap();
}

#[test]
fn csv_round_trips_and_bad_rows_become_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trades.csv");
    write_with(
        {
            let path = path.clone();
            move || CsvSink::create(&path)
        },
        trades(300),
    );
    let (read, letters) = collect(2, {
        let path = path.clone();
        move || CsvSource::<Trade>::new(&path)
    });
    assert_eq!(read, trades(300));
    assert!(letters.is_empty());

    let bad: PathBuf = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "symbol,price,volume,note\nA,1.5,3,\nB,cheap,4,x\nC,2.0\nD,2.5,5,\"ok\"\n",
    )
    .unwrap();
    let (read, letters) = collect(1, {
        let bad = bad.clone();
        move || CsvSource::<Trade>::new(&bad)
    });
    assert_eq!(
        read.iter().map(|t| t.symbol.as_str()).collect::<Vec<_>>(),
        vec!["A", "D"]
    );
    let lines: Vec<_> = letters
        .iter()
        .map(|l| (l.line.unwrap(), String::from_utf8(l.raw.clone()).unwrap()))
        .collect();
    assert_eq!(
        lines,
        vec![(3, "B,cheap,4,x".to_owned()), (4, "C,2.0".to_owned())]
    );
    assert!(letters[0].reason.contains("price"), "{}", letters[0].reason);
    assert!(
        letters[1]
            .reason
            .contains("2 fields where the header has 4"),
        "{}",
        letters[1].reason
    );
}

#[test]
fn json_lines_round_trip_on_several_workers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trades.jsonl");
    write_with(
        {
            let path = path.clone();
            move || JsonLinesSink::create(&path)
        },
        trades(1000),
    );
    for workers in [1, 2, 5] {
        let (read, letters) = collect(workers, {
            let path = path.clone();
            move || JsonLinesSource::<Trade>::new(&path)
        });
        assert_eq!(read, trades(1000), "{workers} workers");
        assert!(letters.is_empty());
    }
}

#[test]
fn parquet_holds_every_record_with_its_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trades.parquet");
    write_with(
        {
            let path = path.clone();
            move || ParquetSink::<Trade>::create(&path).unwrap()
        },
        trades(5000),
    );
    let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
    let metadata = reader.metadata();
    assert_eq!(metadata.file_metadata().num_rows(), 5000);
    let columns: Vec<_> = metadata
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    assert_eq!(columns, vec!["symbol", "price", "volume", "note"]);
    let mut volumes = Vec::new();
    for row in reader.get_row_iter(None).unwrap() {
        let row = row.unwrap();
        volumes.push(row.get_ulong(2).unwrap());
    }
    volumes.sort_unstable();
    assert_eq!(volumes, (0..5000).map(|n| n * 7).collect::<Vec<_>>());
}
