//! Processing time: the wall clock while a job runs, a clock moved by hand under the test
//! harness. Operators read processing time and ask to run again later only through here, so
//! that a test decides when time passes.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use timely::scheduling::Activator;

use crate::time::{wall_clock_millis, ProcessingTime};

/// Where a job's processing time comes from.
#[derive(Clone, Debug, Default)]
pub(crate) enum Clock {
    /// The wall clock.
    #[default]
    System,
    /// A clock that stands still until the test harness moves it: milliseconds since the Unix
    /// epoch.
    Manual(Arc<AtomicU64>),
}

impl Clock {
    /// Processing time now.
    pub(crate) fn now(&self) -> ProcessingTime {
        ProcessingTime(match self {
            Clock::System => wall_clock_millis(),
            Clock::Manual(now) => now.load(Ordering::SeqCst),
        })
    }

    /// Whether a test moves this clock by hand.
    pub(crate) fn is_manual(&self) -> bool {
        matches!(self, Clock::Manual(_))
    }

    /// Processing time passed since `earlier` (a reading of [`now`](Clock::now)).
    pub(crate) fn since(&self, earlier: ProcessingTime) -> Duration {
        self.now().since(earlier)
    }
}

/// How the operators of one worker ask to run again after a while of processing time.
///
/// On the wall clock that is timely's delayed activation. On a manual clock an operator waits
/// until the harness wakes every waiting operator, after it has pushed input or moved the
/// clock; the operator then checks for itself whether its time has come.
#[derive(Clone, Default)]
pub(crate) struct Alarms {
    clock: Clock,
    waiting: Rc<RefCell<Vec<Activator>>>,
}

impl Alarms {
    /// The alarms of a worker whose processing time comes from `clock`.
    pub(crate) fn new(clock: Clock) -> Self {
        Alarms {
            clock,
            waiting: Rc::default(),
        }
    }

    /// Runs the operator of `activator` again once `delay` of processing time has passed (or,
    /// on a manual clock, at the harness's next wake-up).
    pub(crate) fn wake_after(&self, activator: &Activator, delay: Duration) {
        match self.clock {
            Clock::System => activator.activate_after(delay),
            Clock::Manual(_) => self.waiting.borrow_mut().push(activator.clone()),
        }
    }

    /// Runs every waiting operator again.
    pub(crate) fn wake_all(&self) {
        for activator in self.waiting.borrow_mut().drain(..) {
            activator.activate();
        }
    }
}
