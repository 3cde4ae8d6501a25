//! Where a query's results go: the sink, and for updating queries whether the changelog or
//! the final view is written.

use std::path::PathBuf;

use weir::operators::changelog::Change;
use weir::{Data, Destination, Stream};

/// Where q13's standard side table is written and read unless told otherwise.
pub const DEFAULT_SIDE_TABLE: &str = "nexmark-side-input.csv";

/// How a query writes its results.
#[derive(Clone, Debug)]
pub struct Output {
    /// Where the results go.
    pub sink: Destination,
    /// For updating queries: write each change as `{"op":"+"|"-","row":{...}}` instead of
    /// the view that holds when the input ends.
    pub changelog: bool,
    /// The CSV side table of queries that read one (q13).
    pub side_table: PathBuf,
}

impl Output {
    /// Results counted and dropped; the standard side table's default place.
    pub fn discard() -> Self {
        Output {
            sink: Destination::Discard,
            changelog: false,
            side_table: PathBuf::from(DEFAULT_SIDE_TABLE),
        }
    }

    /// Writes rows that only append.
    pub fn append<T: Data>(&self, rows: Stream<'_, T>) {
        self.sink.append(rows);
    }

    /// Writes rows that only append, a JSON lines output partitioned as
    /// [`Destination::partitioned`] says.
    pub fn partitioned<T: Data>(&self, rows: Stream<'_, T>, partition_of: fn(&T) -> String) {
        self.sink.partitioned(rows, partition_of);
    }

    /// Writes an updating query's changes: as they are with [`Output::changelog`] or when
    /// the results are dropped, otherwise the view `view` makes of them when the input ends.
    /// (A view holds every row until the end; when nobody reads it, building it would cost
    /// a query like q20 most of its time and memory. Flink's blackhole sink, which the
    /// benchmark compares with, takes the changes too.)
    pub fn updates<'s, T: Data>(
        &self,
        changes: Stream<'s, Change<T>>,
        view: impl FnOnce(Stream<'s, Change<T>>) -> Stream<'s, T>,
    ) {
        if self.changelog || matches!(self.sink, Destination::Discard) {
            self.append(changes);
        } else {
            self.append(view(changes));
        }
    }
}
