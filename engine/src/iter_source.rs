//! A source over an in-memory iterator: for tests, examples and small programs.

use crate::error::BoxError;
use crate::runtime::job::WorkerInfo;
use crate::source::{Source, SourcePoll, SourceReader};
use crate::time::Time;
use timely::progress::Timestamp;

/// A source that reads the items of an iterator. Every worker builds the same iterator and
/// keeps the items whose position `i` satisfies `i % peers == worker`, so together the workers
/// read each item exactly once.
///
/// Its watermark stays at the minimum until the iterator ends; event-time results therefore
/// come out when the input has been read.
pub struct IterSource<I> {
    name: String,
    items: I,
}

impl<I: Iterator + 'static> IterSource<I> {
    /// A source named `name` over `items`.
    pub fn new(name: impl Into<String>, items: impl IntoIterator<IntoIter = I>) -> Self {
        IterSource {
            name: name.into(),
            items: items.into_iter(),
        }
    }
}

impl<I: Iterator + 'static> Source for IterSource<I> {
    type Item = I::Item;
    type Reader = IterReader<I>;

    fn name(&self) -> String {
        self.name.clone()
    }

    fn open(self, worker: WorkerInfo) -> Result<Self::Reader, BoxError> {
        Ok(IterReader {
            items: self.items,
            position: 0,
            worker,
        })
    }
}

/// One worker's reader of an [`IterSource`].
pub struct IterReader<I> {
    items: I,
    position: usize,
    worker: WorkerInfo,
}

impl<I: Iterator + 'static> SourceReader for IterReader<I> {
    type Item = I::Item;

    fn poll(&mut self, out: &mut Vec<I::Item>, max: usize) -> Result<SourcePoll, BoxError> {
        for _ in 0..max {
            let Some(item) = self.items.next() else {
                return Ok(SourcePoll::Finished);
            };
            if self.position % self.worker.peers == self.worker.index {
                out.push(item);
            }
            self.position += 1;
        }
        Ok(SourcePoll::Ready {
            watermark: Time::minimum().watermark,
        })
    }
}
