//! A file sink that writes each record into a directory its content names, Hive style:
//! `ROOT/dt=2015-07-15/hour=10/`, as tables partitioned by date are laid out for the query
//! engines that read them back (Nexmark's q10 writes its bids so).
//!
//! Each partition directory is the output of one [`FileSink`]: without checkpoints it holds
//! one file, `part.EXT`, published when the input ends; in a job with checkpoints it holds one
//! part file per checkpoint epoch, published when the checkpoint is complete, with its own
//! ledger. (Without checkpoints the partitions' files are published one after the other when
//! the input ends: a run that fails meanwhile leaves those published so far, and a partition
//! that a run did not write keeps an earlier run's file. Exactly-once output needs
//! checkpoints.)
//!
//! In a job with checkpoints the sink also keeps a list of its partitions in the root,
//! `.partitions.json`, with the last epoch it had staged when each one appeared; the list is
//! written durably before the partition's directory. A restore recovers exactly the listed
//! partitions (never a directory another sink left under the root), and a listed partition
//! whose ledger is missing fails it, unless the partition appeared after the restored epoch
//! was staged (a crash before its first ledger was written), when it owes nothing.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use weir_engine::checkpoint::epoch_name;
use weir_engine::time::Epoch;
use weir_engine::{BoxError, Sink, SinkPlacement, WorkerInfo};

use super::format::{EncodeRecords, FileFormat, JsonLines};
use super::part_ledger::LEDGER_FILE;
use super::sink::FileSink;
use crate::durable::{create_dir_all, write_json_atomically};
use crate::error::ConnectorError;

/// The file that holds a partition's records in a job without checkpoints: `part.EXT`.
const SINGLE_FILE: &str = "part";
/// The sink's list of its partitions, in the root (a job with checkpoints).
const MANIFEST: &str = ".partitions.json";

/// The partitions of a sink with checkpoints: for each, the last epoch the sink had staged
/// when it appeared (`None`: before the first).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    partitions: BTreeMap<String, Option<Epoch>>,
}

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
    partition_of: Box<dyn Fn(&T) -> String>,
    /// The sink of each partition written to, by its relative path.
    partitions: BTreeMap<String, FileSink<F>>,
    /// In a job with checkpoints: the last epoch staged (or restored), if any, and the list of
    /// partitions.
    transactions: Option<(Option<Epoch>, Manifest)>,
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

    /// A sink for the partition directory `name`, its part files named like the format: a
    /// directory of them with `transactions`, else one file.
    fn partition_sink(&self, name: &str, transactions: bool) -> FileSink<F> {
        let extension = self.format.extension();
        let path = match transactions {
            true => self.root.join(name),
            false => self
                .root
                .join(name)
                .join(format!("{SINGLE_FILE}.{extension}")),
        };
        FileSink::with_extension(self.format.clone(), path, extension.to_owned())
    }

    /// The sink of a partition not found under the name `name`: found under its canonical
    /// name, or started.
    fn new_partition(&mut self, name: &str) -> Result<&mut FileSink<F>, ConnectorError> {
        let name = canonical_partition(&self.root, name)?;
        if self.partitions.contains_key(&name) {
            return Ok(self
                .partitions
                .entry(name)
                .or_insert_with(|| unreachable!()));
        }
        if let Some(other) = self.partitions.keys().find(|other| nested(other, &name)) {
            return Err(ConnectorError::Format {
                path: self.root.clone(),
                reason: format!(
                    "a record's partition {name:?} lies inside or around the partition \
                     {other:?}: partitions cannot nest"
                ),
            });
        }
        let mut sink = self.partition_sink(&name, self.transactions.is_some());
        match &mut self.transactions {
            Some((staged, manifest)) => {
                // Listed before its directory exists: a restore knows every partition it owns.
                manifest.partitions.insert(name.clone(), *staged);
                write_manifest(&self.root, manifest)?;
                sink.start_after(*staged)?;
            }
            None => create_dir_all(&self.root.join(&name))?,
        }
        Ok(self.partitions.entry(name).or_insert(sink))
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

/// A partition's name as a relative path of plain directory names joined by `/`
/// (`a//b` is `a/b`), or an error naming it.
fn canonical_partition(root: &Path, name: &str) -> Result<String, ConnectorError> {
    let plain = |component: &Component| matches!(component, Component::Normal(part) if !part.to_string_lossy().starts_with('.'));
    let components: Vec<Component> = Path::new(name).components().collect();
    if components.is_empty() || !components.iter().all(plain) {
        return Err(ConnectorError::Format {
            path: root.to_owned(),
            reason: format!(
                "a record's partition {name:?} is not a relative path of directory names \
                 (none empty, `..` or starting with a dot)"
            ),
        });
    }
    let parts: Vec<_> = components
        .iter()
        .map(|component| component.as_os_str().to_string_lossy())
        .collect();
    Ok(parts.join("/"))
}

/// Whether one partition's directory lies inside the other's.
fn nested(one: &str, other: &str) -> bool {
    let inside = |inner: &str, outer: &str| {
        inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.starts_with('/'))
    };
    inside(one, other) || inside(other, one)
}

fn read_manifest(root: &Path) -> Result<Manifest, ConnectorError> {
    let path = root.join(MANIFEST);
    match std::fs::read(&path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
        Err(error) => Err(ConnectorError::io(&path, error)),
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| ConnectorError::BadOutput {
            path,
            reason: format!("the partitioned sink's list of partitions is not valid: {error}"),
        }),
    }
}

fn write_manifest(root: &Path, manifest: &Manifest) -> Result<(), ConnectorError> {
    create_dir_all(root)?;
    write_json_atomically(&root.join(MANIFEST), manifest)
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
        let mut manifest = read_manifest(&self.root)?;
        for (name, appeared) in std::mem::take(&mut manifest.partitions) {
            let mut sink = self.partition_sink(&name, true);
            let ledger = self.root.join(&name).join(LEDGER_FILE);
            match restored {
                Some(restored) if !ledger.exists() => {
                    // Appeared after the restored epoch was staged, crashed before its ledger
                    // was written: it owes that checkpoint nothing.
                    if appeared.is_none_or(|appeared| appeared < restored) {
                        return Err(Box::new(ConnectorError::BadOutput {
                            path: ledger,
                            reason: format!(
                                "the partition's ledger is missing, but the sink's list {} \
                                 says it took part in checkpoint {}",
                                self.root.join(MANIFEST).display(),
                                epoch_name(restored)
                            ),
                        }));
                    }
                    sink.start_after(Some(restored))?;
                    manifest.partitions.insert(name.clone(), Some(restored));
                }
                _ => {
                    Sink::<T>::start_transactions(&mut sink, restored)?;
                    // After a fresh start every part is gone: the partition owes nothing.
                    manifest
                        .partitions
                        .insert(name.clone(), restored.and(appeared));
                }
            }
            self.partitions.insert(name, sink);
        }
        write_manifest(&self.root, &manifest)?;
        self.transactions = Some((restored, manifest));
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
            let run = &records[start..end];
            match self.partitions.get_mut(&name) {
                Some(sink) => sink.write(run)?,
                None => self.new_partition(&name)?.write(run)?,
            }
            start = end;
        }
        Ok(())
    }

    fn pre_commit(&mut self, epoch: Epoch) -> Result<(), BoxError> {
        for sink in self.partitions.values_mut() {
            Sink::<T>::pre_commit(sink, epoch)?;
        }
        if let Some((staged, _)) = &mut self.transactions {
            *staged = Some(epoch);
        }
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
    fn spellings_of_one_partition_share_it_and_partitions_do_not_nest() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = PartitionedFileSink::json_lines(dir.path(), |name: &String| name.clone());
        sink.open(worker()).unwrap();
        sink.start_transactions(None).unwrap();
        sink.write(&[
            "dt=1/hour=2".into(),
            "dt=1//hour=2".into(),
            "dt=1/hour=2/".into(),
        ])
        .unwrap();
        assert_eq!(sink.partitions.len(), 1);
        for nested in ["dt=1", "dt=1/hour=2/minute=3"] {
            let error = sink.write(&[nested.into()]).unwrap_err().to_string();
            assert!(error.contains("cannot nest"), "{error}");
        }
    }

    #[test]
    fn a_restore_recovers_only_its_own_partitions_and_misses_none() {
        let dir = tempfile::tempdir().unwrap();
        // Another sink's part files under the root are not this sink's to delete.
        let foreign = dir.path().join("elsewhere");
        std::fs::create_dir_all(&foreign).unwrap();
        std::fs::write(foreign.join(LEDGER_FILE), b"{}").unwrap();
        std::fs::write(foreign.join("part-final.jsonl"), b"1\n").unwrap();
        let mut sink = by_hour(dir.path());
        sink.open(worker()).unwrap();
        sink.start_transactions(None).unwrap();
        sink.write(&[(1, 10), (2, 20)]).unwrap();
        sink.pre_commit(Epoch(1)).unwrap();
        sink.commit(Epoch(1)).unwrap();
        drop(sink);
        assert!(foreign.join("part-final.jsonl").exists());

        // A partition that took part in checkpoint 1 has lost its ledger: the restore fails,
        // naming it.
        let lost = dir.path().join("dt=2015-07-15/hour=02").join(LEDGER_FILE);
        std::fs::remove_file(&lost).unwrap();
        let mut restored = by_hour(dir.path());
        restored.open(worker()).unwrap();
        let error = restored
            .start_transactions(Some(Epoch(1)))
            .unwrap_err()
            .to_string();
        assert!(error.contains(&lost.display().to_string()), "{error}");
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
