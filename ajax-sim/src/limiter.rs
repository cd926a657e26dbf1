//! The key's rate limit and the budget witness: admits or refuses each call with a valid key against
//! a rolling window (`--rate N/W`), and measures `max_in_window`, the largest number of accepted
//! calls that ever fell in one window of the witness length, exactly, from the accepted calls'
//! timestamps.
//!
//! A rolling window holds the calls in `(now - W, now]`. Both the limit and the witness are counted
//! over one deque of accepted timestamps, kept sorted by taking `now` under the lock and pruned to
//! the longer of the two windows.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::RateLimit;

/// The limiter's answer to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Accepted,
    /// Over the limit; the oldest call in the window leaves it after `retry_after`.
    Refused {
        retry_after: Duration,
    },
}

/// What `/_sim/stats` shows of the limiter.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LimiterView {
    pub accepted_total: u64,
    pub max_in_window: usize,
    pub window_ms: u64,
    pub rate_limit: Option<u32>,
    pub rate_window_ms: Option<u64>,
}

/// Accepted-call history, the limit and the witness.
#[derive(Debug)]
pub struct Limiter {
    rate: Option<RateLimit>,
    witness: Duration,
    accepted: VecDeque<Instant>,
    accepted_total: u64,
    max_in_window: usize,
}

impl Limiter {
    pub fn new(rate: Option<RateLimit>, witness: Duration) -> Self {
        Self {
            rate,
            witness,
            accepted: VecDeque::new(),
            accepted_total: 0,
            max_in_window: 0,
        }
    }

    /// Admits a call made at `now` (take it while holding the limiter, so timestamps stay ordered),
    /// recording it when accepted.
    pub fn admit(&mut self, now: Instant) -> Admission {
        // Calls are timestamped in lock order; never let the deque go out of order.
        let now = self.accepted.back().map_or(now, |last| now.max(*last));
        if let Some(rate) = self.rate {
            let in_window = self.count_within(now, rate.window);
            if in_window >= rate.limit as usize {
                let oldest = self.accepted.len().checked_sub(in_window.max(1));
                let leaves_at = oldest
                    .and_then(|index| self.accepted.get(index))
                    .map_or(now + rate.window, |t| *t + rate.window);
                return Admission::Refused {
                    retry_after: leaves_at.saturating_duration_since(now),
                };
            }
        }
        self.accepted.push_back(now);
        self.accepted_total += 1;
        let in_witness = self.count_within(now, self.witness);
        self.max_in_window = self.max_in_window.max(in_witness);
        self.prune(now);
        Admission::Accepted
    }

    /// Accepted calls in `(now - window, now]`.
    fn count_within(&self, now: Instant, window: Duration) -> usize {
        match now.checked_sub(window) {
            Some(start) => self.accepted.len() - self.accepted.partition_point(|t| *t <= start),
            None => self.accepted.len(),
        }
    }

    fn prune(&mut self, now: Instant) {
        let keep = self.rate.map_or(self.witness, |r| r.window.max(self.witness));
        if let Some(start) = now.checked_sub(keep) {
            while self.accepted.front().is_some_and(|t| *t <= start) {
                self.accepted.pop_front();
            }
        }
    }

    pub fn view(&self) -> LimiterView {
        LimiterView {
            accepted_total: self.accepted_total,
            max_in_window: self.max_in_window,
            window_ms: millis(self.witness),
            rate_limit: self.rate.map(|r| r.limit),
            rate_window_ms: self.rate.map(|r| millis(r.window)),
        }
    }

    /// Forgets every accepted call: the window starts empty and the witness at zero.
    pub fn reset(&mut self) {
        self.accepted.clear();
        self.accepted_total = 0;
        self.max_in_window = 0;
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `Retry-After` for a wait: whole seconds, rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(limit: u32, ms: u64) -> Option<RateLimit> {
        Some(RateLimit {
            limit,
            window: Duration::from_millis(ms),
        })
    }

    #[test]
    fn calls_beyond_the_limit_in_one_window_are_refused_until_the_oldest_leaves() {
        let start = Instant::now();
        let mut limiter = Limiter::new(rate(3, 1000), Duration::from_millis(1000));
        for i in 0..3 {
            let at = start + Duration::from_millis(i * 100);
            assert_eq!(limiter.admit(at), Admission::Accepted);
        }
        let refused = limiter.admit(start + Duration::from_millis(300));
        assert_eq!(
            refused,
            Admission::Refused {
                retry_after: Duration::from_millis(700)
            }
        );
        // The first call, made at 0, is outside (1000 - 1000, 1000].
        assert_eq!(limiter.admit(start + Duration::from_millis(1000)), Admission::Accepted);
        assert_eq!(limiter.view().max_in_window, 3);
        assert_eq!(limiter.view().accepted_total, 4);
    }

    #[test]
    fn refused_calls_do_not_count_towards_the_window() {
        let start = Instant::now();
        let mut limiter = Limiter::new(rate(1, 1000), Duration::from_millis(1000));
        assert_eq!(limiter.admit(start), Admission::Accepted);
        for i in 1..10 {
            let refused = limiter.admit(start + Duration::from_millis(i * 50));
            assert!(matches!(refused, Admission::Refused { .. }));
        }
        let later = start + Duration::from_millis(1001);
        assert_eq!(limiter.admit(later), Admission::Accepted);
        assert_eq!(limiter.view().max_in_window, 1);
    }

    #[test]
    fn the_witness_measures_the_busiest_window_without_a_limit() {
        let start = Instant::now();
        let mut limiter = Limiter::new(None, Duration::from_millis(1000));
        // 4 calls in the first half second, then 2 more just after the first window closes.
        for ms in [0, 100, 200, 300, 1050, 1100] {
            assert_eq!(limiter.admit(start + Duration::from_millis(ms)), Admission::Accepted);
        }
        // (100, 1100] holds 200, 300, 1050, 1100 = 4; (0, 1000] would too. Never 5.
        assert_eq!(limiter.view().max_in_window, 4);
        assert_eq!(limiter.view().window_ms, 1000);
        assert_eq!(limiter.view().rate_limit, None);
    }

    #[test]
    fn out_of_order_timestamps_are_clamped_not_lost() {
        let start = Instant::now();
        let mut limiter = Limiter::new(rate(2, 1000), Duration::from_millis(1000));
        assert_eq!(limiter.admit(start + Duration::from_millis(10)), Admission::Accepted);
        assert_eq!(limiter.admit(start), Admission::Accepted);
        assert!(matches!(limiter.admit(start), Admission::Refused { .. }));
    }

    #[test]
    fn reset_forgets_the_history() {
        let start = Instant::now();
        let mut limiter = Limiter::new(rate(1, 1000), Duration::from_millis(1000));
        assert_eq!(limiter.admit(start), Admission::Accepted);
        limiter.reset();
        assert_eq!(limiter.view().max_in_window, 0);
        assert_eq!(limiter.admit(start), Admission::Accepted);
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(700)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1000)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(59)), 59);
    }
}
