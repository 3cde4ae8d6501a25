//! A file sink that writes each record into a directory its content names, Hive style:
//! `ROOT/dt=2015-07-15/hour=10/`, as tables partitioned by date are laid out for the query
//! engines that read them back (Nexmark's q10 writes its bids so).
//!
//! Each partition directory is the output of one [`FileSink`]: without checkpoints it holds
//! one file, `part.EXT`, published when the input ends; in a job with checkpoints it holds one
//! part file per checkpoint epoch, published when the checkpoint is complete, with its own
//! ledger. A partition that first receives records mid-run starts its ledger at the epochs the
//! sink has staged so far, so a restore knows it owed nothing before. A restore finds the
//! partitions by their ledgers and recovers each one.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use weir_engine::time::Epoch;
use weir_engine::{BoxError, Sink, SinkPlacement, WorkerInfo};

use super::format::{Csv, EncodeRecords, FileFormat, JsonLines};
use super::part_ledger::LEDGER_FILE;
use super::sink::FileSink;
use crate::durable::create_dir_all;
use crate::error::ConnectorError;

/// The file that holds a partition's records in a job without checkpoints: `part.EXT`.
const SINGLE_FILE: &str = "part";

/// Names the partition of a record: a relative directory path such as `dt=2015-07-15/hour=10`.
pub type PartitionOf<T> = Box<dyn Fn(&T) -> String>;

/// A sink writing records in the format `F` under the directory of their partition.
///
/// ```no_run
/// # use weir_connectors::files::PartitionedFileSink;
/// # fn build(stream: weir_engine::Stream<'_, (String, u64)>) {
/// stream.sink(PartitionedFileSink::json_lines("out", |(day, _): &(String, u64)| {
///     format!("dt={day}")
/// }));
/// # }
/// ```
pub struct PartitionedFileSink<T, F: FileFormat> {
    format: F,
    root: PathBuf,
    partition_of: PartitionOf<T>,
    /// The sink of each partition written to, by its relative path.
    partitions: BTreeMap<String, FileSink<F>>,
    /// In a job with checkpoints: the last epoch staged (or restored), if any.
    transactions: Option<Option<Epoch>>,
}

impl<T, F: FileFormat + Clone> PartitionedFileSink<T, F> {
    /// A sink writing under `root` in `format`, each record in the partition
    /// `partition_of` names.
    pub fn new(
        format: F,
        root: impl Into<PathBuf>,
        partition_of: impl Fn(&T) -> String + 'static,
    ) -> Self {
        PartitionedFileSink {
            format,
            root: root.into(),
            partition_of: Box::new(partition_of),
            partitions: BTreeMap::new(),
            transactions: None,
        }
    }

    /// The sink of the partition `name`, started if it is new.
    fn partition(&mut self, name: &str) -> Result<&mut FileSink<F>, ConnectorError> {
        let vacant = match self.partitions.entry(name.to_owned()) {
            Entry::Occupied(sink) => return Ok(sink.into_mut()),
            Entry::Vacant(vacant) => vacant,
        };
        check_partition(&self.root, name)?;
        let dir = self.root.join(name);
        let extension = self.format.extension();
        let sink = match self.transactions {
            Some(staged_through) => {
                let mut sink =
                    FileSink::with_extension(self.format.clone(), dir, extension.to_owned());
                sink.start_after(staged_through)?;
                sink
            }
            None => {
                create_dir_all(&dir)?;
                FileSink::with_extension(
                    self.format.clone(),
                    dir.join(format!("{SINGLE_FILE}.{extension}")),
                    extension.to_owned(),
                )
            }
        };
        Ok(vacant.insert(sink))
    }
}

impl<T> PartitionedFileSink<T, JsonLines> {
    /// A JSON lines sink writing under `root`, each record in the partition `partition_of`
    /// names.
    pub fn json_lines(
        root: impl Into<PathBuf>,
        partition_of: impl Fn(&T) -> String + 'static,
    ) -> Self {
        PartitionedFileSink::new(JsonLines, root, partition_of)
    }
}

impl<T> PartitionedFileSink<T, Csv> {
    /// A CSV sink writing under `root`, each record in the partition `partition_of` names.
    pub fn csv(root: impl Into<PathBuf>, partition_of: impl Fn(&T) -> String + 'static) -> Self {
        PartitionedFileSink::new(Csv, root, partition_of)
    }
}

/// Checks that a partition's name is a relative path of plain directory names.
fn check_partition(root: &Path, name: &str) -> Result<(), ConnectorError> {
    let plain = !name.is_empty()
        && Path::new(name)
            .components()
            .all(|component| matches!(component, Component::Normal(part) if !part.to_string_lossy().starts_with('.')));
    if plain {
        return Ok(());
    }
    Err(ConnectorError::Format {
        path: root.to_owned(),
        reason: format!(
            "a record's partition {name:?} is not a relative path of directory names \
             (none empty, `..` or starting with a dot)"
        ),
    })
}

/// The partitions under `root` that hold a ledger, by relative path (`/`-separated).
fn find_partitions(root: &Path) -> Result<Vec<String>, ConnectorError> {
    let mut found = Vec::new();
    let mut pending = vec![(root.to_owned(), String::new())];
    while let Some((dir, name)) = pending.pop() {
        if dir.join(LEDGER_FILE).exists() {
            found.push(name);
            continue;
        }
        let io = |error| ConnectorError::io(&dir, error);
        let entries = match std::fs::read_dir(&dir) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            entries => entries.map_err(io)?,
        };
        for entry in entries {
            let entry = entry.map_err(io)?;
            let child = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().map_err(io)?.is_dir() && !child.starts_with('.') {
                let child_name = if name.is_empty() {
                    child
                } else {
                    format!("{name}/{child}")
                };
                pending.push((entry.path(), child_name));
            }
        }
    }
    found.sort();
    Ok(found)
}

impl<T: 'static, F: EncodeRecords<T> + Clone> Sink<T> for PartitionedFileSink<T, F> {
    fn name(&self) -> String {
        format!("{} partitioned {}", self.format.name(), self.root.display())
    }

    fn placement(&self) -> SinkPlacement {
        SinkPlacement::FirstWorker
    }

    fn open(&mut self, _worker: WorkerInfo) -> Result<(), BoxError> {
        Ok(())
    }

    fn start_transactions(&mut self, restored: Option<Epoch>) -> Result<(), BoxError> {
        self.transactions = Some(restored);
        for name in find_partitions(&self.root)? {
            let mut sink = FileSink::with_extension(
                self.format.clone(),
                self.root.join(&name),
                self.format.extension().to_owned(),
            );
            Sink::<T>::start_transactions(&mut sink, restored)?;
            self.partitions.insert(name, sink);
        }
        Ok(())
    }

    fn write(&mut self, records: &[T]) -> Result<(), BoxError> {
        // Records of one partition tend to come together: each run of them is one write.
        let mut start = 0;
        while start < records.len() {
            let name = (self.partition_of)(&records[start]);
            let end = records[start + 1..]
                .iter()
                .position(|record| (self.partition_of)(record) != name)
                .map_or(records.len(), |run| start + 1 + run);
            self.partition(&name)?.write(&records[start..end])?;
            start = end;
        }
        Ok(())
    }

    fn pre_commit(&mut self, epoch: Epoch) -> Result<(), BoxError> {
        for sink in self.partitions.values_mut() {
            Sink::<T>::pre_commit(sink, epoch)?;
        }
        self.transactions = Some(Some(epoch));
        Ok(())
    }

    fn commit(&mut self, epoch: Epoch) -> Result<(), BoxError> {
        for sink in self.partitions.values_mut() {
            Sink::<T>::commit(sink, epoch)?;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), BoxError> {
        for sink in self.partitions.values_mut() {
            Sink::<T>::close(sink)?;
        }
        Ok(())
    }

    fn abort(&mut self) {
        for sink in self.partitions.values_mut() {
            Sink::<T>::abort(sink);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records `(hour, value)`, partitioned by hour.
    fn by_hour(root: &Path) -> PartitionedFileSink<(u32, u64), JsonLines> {
        PartitionedFileSink::json_lines(root, |(hour, _): &(u32, u64)| {
            format!("dt=2015-07-15/hour={hour:02}")
        })
    }

    /// The values in the published files of each partition under `root`, by partition.
    fn published(root: &Path) -> BTreeMap<String, Vec<u64>> {
        let mut found = BTreeMap::new();
        for hour in std::fs::read_dir(root.join("dt=2015-07-15")).unwrap() {
            let dir = hour.unwrap().path();
            let mut names: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with("part"))
                .collect();
            names.sort();
            let mut values = Vec::new();
            for name in names {
                for line in std::fs::read_to_string(dir.join(name)).unwrap().lines() {
                    let (_, value): (u32, u64) = serde_json::from_str(line).unwrap();
                    values.push(value);
                }
            }
            found.insert(
                dir.file_name().unwrap().to_string_lossy().into_owned(),
                values,
            );
        }
        found
    }

    fn worker() -> WorkerInfo {
        WorkerInfo { index: 0, peers: 1 }
    }

    #[test]
    fn records_land_in_their_partition_when_the_input_ends() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = by_hour(dir.path());
        sink.open(worker()).unwrap();
        sink.write(&[(1, 10), (1, 11), (2, 20), (1, 12)]).unwrap();
        assert!(!dir.path().join("dt=2015-07-15/hour=01/part.jsonl").exists());
        sink.close().unwrap();
        let expected = BTreeMap::from([
            ("hour=01".into(), vec![10, 11, 12]),
            ("hour=02".into(), vec![20]),
        ]);
        assert_eq!(published(dir.path()), expected);
    }

    #[test]
    fn a_restore_keeps_the_committed_epochs_of_every_partition_and_drops_later_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = by_hour(dir.path());
        sink.open(worker()).unwrap();
        sink.start_transactions(None).unwrap();
        sink.write(&[(1, 10)]).unwrap();
        sink.pre_commit(Epoch(1)).unwrap();
        sink.commit(Epoch(1)).unwrap();
        // Hour 2 first appears in epoch 2; hour 3 in epoch 3, staged but never committed.
        sink.write(&[(1, 11), (2, 20)]).unwrap();
        sink.pre_commit(Epoch(2)).unwrap();
        sink.write(&[(3, 30), (2, 21)]).unwrap();
        sink.pre_commit(Epoch(3)).unwrap();
        // Hour 5 appears in epoch 4 and is never staged.
        sink.write(&[(3, 31), (5, 50)]).unwrap();
        drop(sink); // the crash: epoch 2's checkpoint completed, epoch 3's did not

        let mut restored = by_hour(dir.path());
        restored.open(worker()).unwrap();
        restored.start_transactions(Some(Epoch(2))).unwrap();
        let expected = BTreeMap::from([
            ("hour=01".into(), vec![10, 11]),
            ("hour=02".into(), vec![20]),
            ("hour=03".into(), vec![]),
            ("hour=05".into(), vec![]),
        ]);
        assert_eq!(published(dir.path()), expected);
        restored.write(&[(2, 21), (3, 30), (4, 40)]).unwrap();
        restored.pre_commit(Epoch(3)).unwrap();
        restored.commit(Epoch(3)).unwrap();
        restored.close().unwrap();
        let expected = BTreeMap::from([
            ("hour=01".into(), vec![10, 11]),
            ("hour=02".into(), vec![20, 21]),
            ("hour=03".into(), vec![30]),
            ("hour=04".into(), vec![40]),
            ("hour=05".into(), vec![]),
        ]);
        assert_eq!(published(dir.path()), expected);

        // A partition that appeared after the restored checkpoint owes nothing to it.
        let mut again = by_hour(dir.path());
        again.open(worker()).unwrap();
        again.start_transactions(Some(Epoch(1))).unwrap();
        assert_eq!(published(dir.path())["hour=01"], vec![10]);
        assert_eq!(published(dir.path())["hour=04"], Vec::<u64>::new());
    }

    #[test]
    fn a_partition_that_is_not_a_plain_relative_path_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "../escape", "/abs", "dt=1/.hidden"] {
            let mut sink =
                PartitionedFileSink::json_lines(dir.path(), move |_: &u64| bad.to_owned());
            sink.open(worker()).unwrap();
            let error = sink.write(&[1]).unwrap_err().to_string();
            assert!(error.contains(&format!("{bad:?}")), "{error}");
        }
    }
}
