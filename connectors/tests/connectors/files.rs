//! File sources and sinks in jobs: CSV and JSON lines round trips with dead letters, and a
//! Parquet file read back through the parquet crate.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::RowAccessor;
use serde::{Deserialize, Serialize};
use weir_connectors::{CsvSink, CsvSource, JsonLinesSink, JsonLinesSource, ParquetSink};
use weir_engine::checkpoint::FINAL_EPOCH;
use weir_engine::{CollectSink, DeadLetter, Epoch, Job, JobConfig, Sink, Source, WorkerInfo};

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

/// The volumes (record ids) in the published part files of `dir`, read by `read_part`, in
/// part order; hidden pending and partial files are not published.
fn published(dir: &Path, read_part: impl Fn(&Path) -> Vec<u64>) -> Vec<Vec<u64>> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect();
    names.sort();
    names
        .iter()
        .map(|name| read_part(&dir.join(name)))
        .collect()
}

/// Drives a file sink through the two-phase protocol the way a job with checkpoints does,
/// with a crash after the checkpoint of epoch 2 completed but before its commit, while
/// epochs 3 and 4 were pre-committed and epoch 5 half written. The restored sink publishes
/// epoch 2, drops what came later (the restored job writes epoch 3 again and epoch 4 turns out
/// empty), and the output holds every record of epochs 1 to 3 once.
fn two_phase_commit_survives_a_crash<K: Sink<Trade>>(
    extension: &str,
    make_sink: impl Fn(&Path) -> K,
    read_part: impl Fn(&Path) -> Vec<u64>,
) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(format!("out.{extension}"));
    let records = trades(40);
    let epoch = |n: usize| &records[(n - 1) * 10..n * 10];
    let ids = |n: usize| {
        epoch(n)
            .iter()
            .map(|trade| trade.volume)
            .collect::<Vec<_>>()
    };
    let worker = WorkerInfo { index: 0, peers: 1 };

    let mut crashed = make_sink(&out);
    crashed.open(worker).unwrap();
    crashed.start_transactions(None).unwrap();
    crashed.write(epoch(1)).unwrap();
    crashed.pre_commit(Epoch(1)).unwrap();
    crashed.commit(Epoch(1)).unwrap();
    crashed.write(epoch(2)).unwrap();
    crashed.pre_commit(Epoch(2)).unwrap();
    crashed.write(epoch(3)).unwrap();
    crashed.pre_commit(Epoch(3)).unwrap();
    crashed.write(epoch(4)).unwrap();
    crashed.pre_commit(Epoch(4)).unwrap();
    crashed.write(epoch(1)).unwrap();
    drop(crashed);
    assert_eq!(published(&out, &read_part), vec![ids(1)]);

    let mut restored = make_sink(&out);
    restored.open(worker).unwrap();
    restored.start_transactions(Some(Epoch(2))).unwrap();
    assert_eq!(published(&out, &read_part), vec![ids(1), ids(2)]);
    restored.write(epoch(3)).unwrap();
    restored.pre_commit(Epoch(3)).unwrap();
    assert_eq!(
        published(&out, &read_part).len(),
        2,
        "epoch 3 is not committed"
    );
    restored.commit(Epoch(3)).unwrap();
    restored.commit(Epoch(3)).unwrap();
    restored.pre_commit(Epoch(4)).unwrap();
    restored.commit(Epoch(4)).unwrap();
    restored.close().unwrap();
    assert_eq!(published(&out, &read_part), vec![ids(1), ids(2), ids(3)]);
    let hidden: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert_eq!(
        hidden,
        [".ledger.json"],
        "no pending or partial file is left"
    );

    let mut fresh = make_sink(&out);
    fresh.open(worker).unwrap();
    fresh.start_transactions(None).unwrap();
    assert!(
        published(&out, &read_part).is_empty(),
        "a fresh start replaces the output"
    );
}

#[test]
fn json_lines_parts_are_committed_exactly_once() {
    two_phase_commit_survives_a_crash(
        "jsonl",
        |path| JsonLinesSink::create(path),
        |path| {
            std::fs::read_to_string(path)
                .unwrap()
                .lines()
                .map(|line| serde_json::from_str::<Trade>(line).unwrap().volume)
                .collect()
        },
    );
}

#[test]
fn csv_parts_are_committed_exactly_once() {
    two_phase_commit_survives_a_crash(
        "csv",
        |path| CsvSink::create(path),
        |path| {
            csv::Reader::from_path(path)
                .unwrap()
                .deserialize::<Trade>()
                .map(|trade| trade.unwrap().volume)
                .collect()
        },
    );
}

#[test]
fn parquet_parts_are_committed_exactly_once() {
    two_phase_commit_survives_a_crash(
        "parquet",
        |path| ParquetSink::<Trade>::create(path).unwrap(),
        |path| {
            let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
            reader
                .get_row_iter(None)
                .unwrap()
                .map(|row| row.unwrap().get_ulong(2).unwrap())
                .collect()
        },
    );
}

/// A JSON lines sink left by a crash after pre-committing epochs 1 (records), 2 (none), 3
/// (records) and, with `last`, the final epoch (records), having committed epoch 1 when
/// `committed`.
fn crashed_parts(out: &Path, committed: bool, last: bool) {
    let records = trades(30);
    let mut sink = JsonLinesSink::create(out);
    Sink::<Trade>::open(&mut sink, WorkerInfo { index: 0, peers: 1 }).unwrap();
    Sink::<Trade>::start_transactions(&mut sink, None).unwrap();
    sink.write(&records[..10]).unwrap();
    Sink::<Trade>::pre_commit(&mut sink, Epoch(1)).unwrap();
    if committed {
        Sink::<Trade>::commit(&mut sink, Epoch(1)).unwrap();
    }
    Sink::<Trade>::pre_commit(&mut sink, Epoch(2)).unwrap();
    sink.write(&records[10..20]).unwrap();
    Sink::<Trade>::pre_commit(&mut sink, Epoch(3)).unwrap();
    if last {
        sink.write(&records[20..]).unwrap();
        Sink::<Trade>::pre_commit(&mut sink, FINAL_EPOCH).unwrap();
    }
}

/// Restores the JSON lines sink in `out` from checkpoint `epoch`.
fn restore_parts(out: &Path, epoch: Epoch) -> Result<(), String> {
    let mut sink = JsonLinesSink::create(out);
    Sink::<Trade>::open(&mut sink, WorkerInfo { index: 0, peers: 1 }).unwrap();
    Sink::<Trade>::start_transactions(&mut sink, Some(epoch)).map_err(|error| error.to_string())
}

/// The pending name of the part of `epoch` (20 digits, or `final`) of a JSON lines sink.
fn pending(epoch: &str) -> String {
    format!(".part-{epoch}.jsonl.pending")
}

/// The pending part of epoch 3, as [`crashed_parts`] leaves it.
fn third_pending(out: &Path) -> PathBuf {
    out.join(pending(&format!("{:020}", 3)))
}

/// A damage done to a crashed sink's output, and what its restore must say.
struct Damaged {
    case: &'static str,
    /// Epoch 1 committed before the crash.
    committed: bool,
    /// The final epoch staged before the crash.
    last: bool,
    damage: fn(&Path),
    restored: Epoch,
    /// Words of the error, or `None` where the restore must succeed.
    expected: Option<&'static str>,
}

/// A restore needs every part staged up to its checkpoint, as it was staged: a pending part
/// that was deleted or changed, or a lost ledger, fails it naming the file and the epoch,
/// where publishing the rest would leave records out without a word. Epochs without records
/// and parts that readers took away after their commit are no loss.
#[test]
fn a_restore_refuses_a_staged_part_that_is_missing_or_damaged() {
    let cases = [
        Damaged {
            case: "untouched",
            committed: false,
            last: false,
            damage: |_| {},
            restored: Epoch(3),
            expected: None,
        },
        Damaged {
            case: "part 3 deleted",
            committed: false,
            last: false,
            damage: |out| std::fs::remove_file(third_pending(out)).unwrap(),
            restored: Epoch(3),
            expected: Some(
                ".part-00000000000000000003.jsonl.pending: the staged part of epoch 3 is missing",
            ),
        },
        Damaged {
            case: "part 3 deleted, checkpoint 2 restored",
            committed: false,
            last: false,
            damage: |out| std::fs::remove_file(third_pending(out)).unwrap(),
            restored: Epoch(2),
            expected: None,
        },
        Damaged {
            case: "part 3 damaged",
            committed: false,
            last: false,
            damage: |out| {
                let path = third_pending(out);
                let mut bytes = std::fs::read(&path).unwrap();
                bytes[5] ^= 1;
                std::fs::write(path, bytes).unwrap();
            },
            restored: Epoch(3),
            expected: Some("the staged part of epoch 3 is damaged"),
        },
        Damaged {
            case: "ledger deleted",
            committed: false,
            last: false,
            damage: |out| std::fs::remove_file(out.join(".ledger.json")).unwrap(),
            restored: Epoch(3),
            expected: Some(".ledger.json: the sink's ledger cannot be read"),
        },
        Damaged {
            case: "final part deleted",
            committed: false,
            last: true,
            damage: |out| std::fs::remove_file(out.join(pending("final"))).unwrap(),
            restored: FINAL_EPOCH,
            expected: Some("the staged part of epoch final is missing"),
        },
        Damaged {
            case: "committed part taken by a reader",
            committed: true,
            last: false,
            damage: |out| std::fs::remove_file(out.join(format!("part-{:020}.jsonl", 1))).unwrap(),
            restored: Epoch(3),
            expected: None,
        },
    ];
    for damaged in cases {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.jsonl");
        crashed_parts(&out, damaged.committed, damaged.last);
        (damaged.damage)(&out);
        let case = damaged.case;
        match (restore_parts(&out, damaged.restored), damaged.expected) {
            (Ok(()), None) => {}
            (Err(error), Some(expected)) => {
                assert!(error.contains(expected), "{case}: {error}")
            }
            (result, expected) => panic!("{case}: {result:?}, expected {expected:?}"),
        }
    }

    // The final part is published under its own name, after the numbered ones.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    crashed_parts(&out, false, true);
    restore_parts(&out, FINAL_EPOCH).unwrap();
    let read = |path: &Path| -> Vec<u64> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str::<Trade>(line).unwrap().volume)
            .collect()
    };
    let parts = published(&out, read);
    assert_eq!(parts.len(), 3);
    assert_eq!(parts.concat(), (0..30).map(|n| n * 7).collect::<Vec<_>>());
    assert!(out.join("part-final.jsonl").exists());
}
