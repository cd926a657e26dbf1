//! The time a request is served at: one reading of the monotonic and the wall clock, taken once per
//! request and handed down, so that expiries, two-stage arming and log timestamps are plain functions
//! of it (and unit tests pass any time they like).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One moment, on both clocks.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// For lifetimes and windows: never goes back.
    pub mono: Instant,
    /// For what clients see (log timestamps), in milliseconds since the Unix epoch.
    pub unix_ms: u64,
}

impl Now {
    /// The current time.
    pub fn system() -> Self {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Self {
            mono: Instant::now(),
            unix_ms,
        }
    }

    /// This moment moved forward by `by`.
    pub fn after(self, by: Duration) -> Self {
        Self {
            mono: self.mono + by,
            unix_ms: self
                .unix_ms
                .saturating_add(u64::try_from(by.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}
