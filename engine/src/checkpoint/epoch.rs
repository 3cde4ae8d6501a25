//! One operator's side of the epoch protocol, shared by sources, keyed operators and sinks.
//!
//! Every participant works on one epoch at a time. A source *starts* epochs (each checkpoint
//! interval, once its worker has checkpointed the epoch before the last); a keyed operator or
//! a sink *finishes* its epoch once its input frontier has passed it, holding input of later
//! epochs back until then. Finishing an epoch does the operator's own part of the checkpoint
//! (write state changes, pre-commit) and then reports the epoch done to the worker's
//! coordinator, which checkpoints the worker once every participant has.

use super::{Checkpoints, FINAL_EPOCH};
use crate::checkpoint::positions::Positions;
use crate::time::{Epoch, Time};

/// A participant's current epoch, and its reports to the coordinator.
pub(crate) struct EpochCursor {
    checkpoints: Checkpoints,
    participant: usize,
    epoch: Epoch,
}

impl EpochCursor {
    /// Registers a keyed operator or a sink; it starts in the run's first epoch.
    pub(crate) fn new(checkpoints: &Checkpoints) -> Self {
        EpochCursor::registered(checkpoints, checkpoints.register())
    }

    /// Registers source `number` named `name`, whose reports carry its positions.
    pub(crate) fn for_source(checkpoints: &Checkpoints, number: usize, name: String) -> Self {
        EpochCursor::registered(checkpoints, checkpoints.register_source(number, name))
    }

    fn registered(checkpoints: &Checkpoints, participant: usize) -> Self {
        EpochCursor {
            checkpoints: checkpoints.clone(),
            participant,
            epoch: checkpoints.first_epoch(),
        }
    }

    /// The epoch this participant works on.
    pub(crate) fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// Reports the current epoch done and moves to the next; with `last`, reports the final
    /// epoch instead (the participant's input has ended).
    pub(crate) fn finish(&mut self, last: bool) {
        self.checkpoints
            .done(self.participant, self.done_epoch(last));
        self.epoch = self.epoch.next();
    }

    /// The epoch a finish reports: the current one, or the final epoch with `last`.
    pub(crate) fn done_epoch(&self, last: bool) -> Epoch {
        if last {
            FINAL_EPOCH
        } else {
            self.epoch
        }
    }

    /// A source: reports the current epoch done at `positions` (the final epoch with `last`)
    /// and moves to the next.
    pub(crate) fn finish_source(&mut self, last: bool, positions: Option<Positions>) {
        self.checkpoints
            .source_done(self.participant, self.done_epoch(last), positions);
        self.epoch = self.epoch.next();
    }

    /// A source: whether the next epoch may start (see [`Checkpoints::may_start_epoch`]).
    pub(crate) fn may_start_next(&self) -> bool {
        self.checkpoints.may_start_epoch(self.epoch.next())
    }

    /// Whether the current epoch's state may be written to the store yet.
    pub(crate) fn may_write(&self) -> bool {
        self.checkpoints.may_write(self.epoch)
    }
}

/// Where a keyed operator's or sink's current epoch stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EpochStatus {
    /// Input of this epoch may still arrive, or is held.
    Open,
    /// No input of this epoch can arrive any more, and later input may.
    Complete,
    /// The input has ended and nothing is held: this epoch is the last.
    Ended,
}

/// Input batches held back because they belong to epochs after the current one.
pub(crate) struct HeldInput<B> {
    batches: Vec<(Time, B)>,
}

impl<B> Default for HeldInput<B> {
    fn default() -> Self {
        HeldInput {
            batches: Vec::new(),
        }
    }
}

impl<B> HeldInput<B> {
    /// Holds `batch`, which arrived at `time`.
    pub(crate) fn hold(&mut self, time: Time, batch: B) {
        self.batches.push((time, batch));
    }

    /// Takes the batches of `epoch` and earlier, in arrival order.
    pub(crate) fn take_through(&mut self, epoch: Epoch) -> impl Iterator<Item = (Time, B)> + '_ {
        self.batches
            .extract_if(.., move |(time, _)| time.epoch <= epoch)
    }

    /// The times of the batches held.
    pub(crate) fn times(&self) -> impl Iterator<Item = &Time> {
        self.batches.iter().map(|(time, _)| time)
    }

    /// Drops every batch held (a failed job drains).
    pub(crate) fn clear(&mut self) {
        self.batches.clear();
    }

    /// Where `epoch` stands, given the input `frontier` and what is held.
    pub(crate) fn status(&self, epoch: Epoch, frontier: &[Time]) -> EpochStatus {
        let oldest = frontier
            .iter()
            .chain(self.times())
            .map(|time| time.epoch)
            .min();
        match oldest {
            None => EpochStatus::Ended,
            Some(oldest) if oldest <= epoch => EpochStatus::Open,
            Some(_) => EpochStatus::Complete,
        }
    }
}
