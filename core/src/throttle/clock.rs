//! Where the budget's "now" comes from. In production the shared budget reads Redis's own clock
//! (`TIME` inside the script) and the local limiter the system clock; tests and simulations inject a
//! [`ManualClock`] so that no test sleeps.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A clock that only moves when told to (Unix milliseconds). Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock showing `now_ms`.
    pub fn new(now_ms: i64) -> Self {
        Self(Arc::new(AtomicI64::new(now_ms)))
    }

    /// The time shown.
    pub fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Shows `now_ms` from now on.
    pub fn set(&self, now_ms: i64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.0.fetch_add(by, Ordering::SeqCst);
    }
}

/// The budget's source of time.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The real clock: Redis's `TIME` for the shared budget, the system clock for a local one.
    #[default]
    Real,
    /// An injected clock, for tests and simulations only. With the shared budget it makes the
    /// script use the given time instead of Redis's (keys still expire on Redis's real clock,
    /// which the script never relies on).
    Manual(ManualClock),
}

impl Clock {
    /// The injected time, if any.
    pub(crate) fn manual_ms(&self) -> Option<i64> {
        match self {
            Clock::Real => None,
            Clock::Manual(clock) => Some(clock.now_ms()),
        }
    }

    /// The time in Unix ms: the injected one, or the system clock.
    pub(crate) fn local_now_ms(&self) -> i64 {
        self.manual_ms().unwrap_or_else(system_now_ms)
    }
}

/// The system clock in Unix ms (0 if it reads before 1970).
pub(crate) fn system_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
