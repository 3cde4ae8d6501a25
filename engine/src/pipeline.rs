//! The typed pipeline API: [`Pipeline`] makes sources, [`Stream`] and [`KeyedStream`] chain
//! transformations and end in sinks. timely's scopes and containers stay inside this module.

use std::hash::Hash;
use std::sync::Arc;

use timely::dataflow::channels::pact::{Exchange, Pipeline as PipelinePact};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::{Concat, Concatenate};
use timely::dataflow::{Scope, StreamVec};

use crate::checkpoint::Checkpoints;
use crate::in_order::each_batch;
use crate::key_group::KeyGroups;
use crate::keyed::{self, KeyedProcess};
use crate::runtime::clock::Alarms;
use crate::runtime::context::Context;
use crate::runtime::job::{JobShared, WorkerInfo};
use crate::sink::{self, Sink, SinkRole};
use crate::source::{self, Source};
use crate::time::{frontier_watermark, EventTime, Time};
use crate::{Data, DeadLetter, EngineError, JobConfig};

/// The handle a pipeline-building closure receives: makes sources on this worker.
pub struct Pipeline<'s> {
    scope: Scope<'s, Time>,
    cx: Context,
    sources: usize,
    dead_letters: Vec<StreamVec<'s, Time, DeadLetter>>,
    dead_letter_output: Option<DeadLetterOutput<'s>>,
}

/// Attaches the dead-letter sink to the merged dead letters of every source.
type DeadLetterOutput<'s> = Box<dyn FnOnce(Stream<'s, DeadLetter>) + 's>;

impl<'s> Pipeline<'s> {
    pub(crate) fn new(
        scope: Scope<'s, Time>,
        job: Arc<JobShared>,
        worker: WorkerInfo,
        checkpoints: Checkpoints,
    ) -> Self {
        Pipeline {
            scope,
            cx: Context::new(job, worker, checkpoints),
            sources: 0,
            dead_letters: Vec::new(),
            dead_letter_output: None,
        }
    }

    /// How this worker's operators ask to run again after a while (the test harness wakes
    /// them).
    pub(crate) fn alarms(&self) -> Alarms {
        self.cx.alarms.clone()
    }

    /// The worker this closure runs on.
    pub fn worker(&self) -> WorkerInfo {
        self.cx.worker
    }

    /// The job's configuration.
    pub fn config(&self) -> &JobConfig {
        &self.cx.job.config
    }

    /// The stream of `source`'s records. Each worker opens its own share when the job starts;
    /// an error opening it fails the job with the source's name and the worker.
    pub fn source<S>(&mut self, source: S) -> Stream<'s, S::Item>
    where
        S: Source + 'static,
        S::Item: Data,
    {
        let streams = source::drive(self.scope, source, self.sources, self.cx.clone());
        self.sources += 1;
        self.dead_letters.push(streams.dead_letters);
        self.wrap(streams.records)
    }

    /// Sends every source's dead letters (records rejected as undecodable or invalid) to
    /// `sink`, and keeps the job running past them. Without a dead-letter output a job is
    /// fail-fast: the first rejected record stops it with that record's reason.
    pub fn dead_letters_to(&mut self, sink: impl Sink<DeadLetter>) {
        self.dead_letter_output = Some(Box::new(move |letters: Stream<'s, DeadLetter>| {
            sink::drive(
                letters.inner,
                Box::new(sink),
                SinkRole::DeadLetters,
                letters.cx,
            )
        }));
    }

    fn wrap<T>(&self, inner: StreamVec<'s, Time, T>) -> Stream<'s, T> {
        Stream {
            inner,
            cx: self.cx.clone(),
        }
    }

    /// Routes the dead letters once the user's pipeline is built, and checks that a restored
    /// checkpoint holds state for exactly this pipeline's stateful operators.
    pub(crate) fn finish(mut self) {
        let operators = self.cx.operators.borrow().ids().clone();
        if let Err(error) = self.cx.checkpoints.set_operators(operators) {
            self.cx.job.fail(error.into());
        }
        let merged = self
            .scope
            .concatenate(std::mem::take(&mut self.dead_letters));
        let letters = self.wrap(merged);
        match self.dead_letter_output.take() {
            Some(attach) => attach(letters),
            None => {
                let job = Arc::clone(&self.cx.job);
                letters
                    .inner
                    .sink(PipelinePact, "fail on dead letter", move |(input, _)| {
                        input.for_each(|_, letters| {
                            if let Some(letter) = letters.first().cloned() {
                                job.fail(EngineError::DeadLetter(Box::new(letter)));
                            }
                        });
                    });
            }
        }
    }
}

/// A stream of records of type `T`, spread over the workers.
pub struct Stream<'s, T> {
    inner: StreamVec<'s, Time, T>,
    cx: Context,
}

impl<T: Data> Clone for Stream<'_, T> {
    fn clone(&self) -> Self {
        Stream {
            inner: self.inner.clone(),
            cx: self.cx.clone(),
        }
    }
}

impl<'s, T: Data> Stream<'s, T> {
    /// The same job and worker, another timely stream.
    fn with<U>(
        self,
        inner: impl FnOnce(StreamVec<'s, Time, T>) -> StreamVec<'s, Time, U>,
    ) -> Stream<'s, U> {
        Stream {
            inner: inner(self.inner),
            cx: self.cx,
        }
    }

    /// Transforms every record.
    ///
    /// ```
    /// # use weir_engine::{CollectSink, IterSource, Job, JobConfig};
    /// let sink = CollectSink::new();
    /// let results = sink.results();
    /// Job::new(JobConfig::default()).run(move |p| {
    ///     let words = p.source(IterSource::new("words", ["a", "bb"].map(String::from)));
    ///     words.map(|word| word.len()).sink(sink.clone());
    ///     Ok(())
    /// }).unwrap();
    /// assert_eq!(*results.lock().unwrap(), [1, 2]);
    /// ```
    pub fn map<U: Data>(self, mut logic: impl FnMut(T) -> U + 'static) -> Stream<'s, U> {
        self.with(|inner| {
            each_batch(inner, PipelinePact, "map", move |records, out| {
                out.extend(records.drain(..).map(&mut logic));
            })
        })
    }

    /// Keeps the records for which `predicate` holds.
    pub fn filter(self, mut predicate: impl FnMut(&T) -> bool + 'static) -> Stream<'s, T> {
        self.with(|inner| {
            each_batch(inner, PipelinePact, "filter", move |records, out| {
                records.retain(|record| predicate(record));
                std::mem::swap(records, out);
            })
        })
    }

    /// Replaces every record with the records `logic` returns for it (none, one or many).
    pub fn flat_map<I>(self, mut logic: impl FnMut(T) -> I + 'static) -> Stream<'s, I::Item>
    where
        I: IntoIterator,
        I::Item: Data,
    {
        self.with(|inner| {
            each_batch(inner, PipelinePact, "flat_map", move |records, out| {
                // A result per record, up front: a flat map's size hint is zero, and growing
                // the output push by push reallocates and copies it as it goes.
                out.reserve(records.len());
                out.extend(records.drain(..).flat_map(&mut logic));
            })
        })
    }

    /// Calls `observe` on every record as it passes, without changing the stream.
    pub fn inspect(self, mut observe: impl FnMut(&T) + 'static) -> Stream<'s, T> {
        self.with(|inner| {
            each_batch(inner, PipelinePact, "inspect", move |records, out| {
                records.iter().for_each(&mut observe);
                std::mem::swap(records, out);
            })
        })
    }

    /// The records of this stream and of `other`, as one stream. Its watermark is the lower of
    /// the two streams' watermarks.
    pub fn union(self, other: Stream<'s, T>) -> Stream<'s, T> {
        self.with(|inner| inner.concat(other.inner))
    }

    /// Partitions the stream by a key: every record with the same key goes to the worker that
    /// owns the key's key group, where keyed operators keep its state.
    ///
    /// ```
    /// # use weir_engine::{CollectSink, IterSource, Job, JobConfig};
    /// let sink = CollectSink::new();
    /// let seen = sink.results();
    /// Job::new(JobConfig::default().workers(2)).run(move |p| {
    ///     let worker = p.worker().index;
    ///     p.source(IterSource::new("numbers", 0..1000u64))
    ///         .key_by(|n| n % 10)
    ///         .into_stream()
    ///         .map(move |(key, _n)| (key, worker))
    ///         .sink(sink.clone());
    ///     Ok(())
    /// }).unwrap();
    /// // Every key was handled by exactly one worker.
    /// let mut pairs = seen.lock().unwrap().clone();
    /// pairs.sort();
    /// pairs.dedup();
    /// assert_eq!(pairs.len(), 10);
    /// ```
    pub fn key_by<K>(self, key_of: impl Fn(&T) -> K + 'static) -> KeyedStream<'s, K, T>
    where
        K: Data + Hash,
    {
        let key_groups: KeyGroups = self.cx.job.key_groups;
        let stream = self
            .map(move |record| (key_of(&record), record))
            .with(|inner| {
                // The exchange "hash" is the target worker itself: timely routes by
                // `hash % peers`.
                let to_worker = move |(key, _): &(K, T)| key_groups.worker_of_key(key) as u64;
                each_batch(inner, Exchange::new(to_worker), "key_by", std::mem::swap)
            });
        KeyedStream { stream }
    }

    /// Calls `observe` with this stream's watermark each time it advances: every record with
    /// a smaller event time that is still to come is late.
    pub fn on_watermark(self, mut observe: impl FnMut(EventTime) + 'static) -> Stream<'s, T> {
        self.with(|inner| {
            inner.unary_frontier(PipelinePact, "on watermark", |_capability, _info| {
                let mut last = None;
                move |(input, frontier), output| {
                    input.for_each(|time, records| {
                        output.session(&time).give_container(records);
                    });
                    let watermark = frontier_watermark(frontier.frontier().as_ref());
                    if last != Some(watermark) {
                        last = Some(watermark);
                        observe(watermark);
                    }
                }
            })
        })
    }

    /// Writes every record to `sink`.
    pub fn sink(self, sink: impl Sink<T>) {
        sink::drive(self.inner, Box::new(sink), SinkRole::Results, self.cx);
    }
}

/// The two outputs of every keyed operator (windows, joins, dedupe, [`KeyedStream::process`]):
/// its results, and the records that came later than it allows.
pub struct KeyedOutput<'s, O, T> {
    /// The operator's results.
    pub results: Stream<'s, O>,
    /// Records later than the operator allows (also counted in the job's metrics). Operators
    /// that judge nothing late leave it empty.
    pub late: Stream<'s, T>,
}

/// A stream partitioned by key: records with equal keys are on the same worker.
pub struct KeyedStream<'s, K, T> {
    stream: Stream<'s, (K, T)>,
}

impl<'s, K: Data + Hash, T: Data> KeyedStream<'s, K, T> {
    /// The `(key, record)` pairs as a plain stream (still on the key's worker).
    pub fn into_stream(self) -> Stream<'s, (K, T)> {
        self.stream
    }

    /// The records without their keys (still on the key's worker).
    pub fn values(self) -> Stream<'s, T> {
        self.stream.map(|(_key, record)| record)
    }

    /// Transforms every record, keeping its key (and its worker).
    pub fn map_values<U: Data>(
        self,
        mut logic: impl FnMut(T) -> U + 'static,
    ) -> KeyedStream<'s, K, U> {
        KeyedStream {
            stream: self.stream.map(move |(key, record)| (key, logic(record))),
        }
    }

    /// The records of this keyed stream and of `other`, keyed alike, as one keyed stream (as
    /// the two sides of a join). Its watermark is the lower of the two streams' watermarks.
    pub fn union(self, other: KeyedStream<'s, K, T>) -> KeyedStream<'s, K, T> {
        KeyedStream {
            stream: self.stream.union(other.stream),
        }
    }

    /// Runs `logic` on every record with per-key state, event-time timers and a late side
    /// output (the building block of windows, dedupe and user-defined keyed operators).
    /// `event_time` says when each record happened. Returns the results and the late records.
    pub fn process<P>(
        self,
        name: &str,
        event_time: impl Fn(&T) -> EventTime + 'static,
        logic: P,
    ) -> KeyedOutput<'s, P::Output, T>
    where
        K: Eq,
        P: KeyedProcess<K, T>,
    {
        let Stream { inner, cx } = self.stream;
        let (results, late) = keyed::process(inner, cx.clone(), name, event_time, logic);
        let results = Stream {
            inner: results,
            cx: cx.clone(),
        };
        KeyedOutput {
            results,
            late: Stream { inner: late, cx },
        }
    }

    /// Calls `observe` on every key and record as they pass.
    pub fn inspect(self, mut observe: impl FnMut(&K, &T) + 'static) -> Self {
        KeyedStream {
            stream: self
                .stream
                .inspect(move |(key, record)| observe(key, record)),
        }
    }
}
