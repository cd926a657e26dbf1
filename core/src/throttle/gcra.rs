//! The Generic Cell Rate Algorithm on one track, in whole milliseconds: the pure-Rust model of the
//! arithmetic the Lua script does in Redis (and that [`super::LocalBudget`] does in memory).
//!
//! A track with emission interval `T` and tolerance `τ` grants a slot at time `t` only if
//! `t >= tat - τ`, then moves its theoretical arrival time to `max(tat, t) + T`. Reserving means
//! taking the earliest such `t` at or after "now", possibly in the future (the caller waits).

/// One GCRA track. A `tat_ms` of 0 (the value of a missing key) means "idle since long ago".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Track {
    /// Theoretical arrival time: when the track is back to "one request per `emission_ms`".
    pub tat_ms: i64,
    /// Interval between slots at the sustained rate.
    pub emission_ms: i64,
    /// How far ahead of `tat_ms` a slot may be taken: `(burst - 1) * emission_ms`, rounded down.
    pub tolerance_ms: i64,
}

impl Track {
    /// An idle track.
    pub fn new(emission_ms: i64, tolerance_ms: i64) -> Self {
        Self {
            tat_ms: 0,
            emission_ms,
            tolerance_ms,
        }
    }

    /// The earliest conforming slot at or after `not_before`.
    pub fn earliest_slot(&self, not_before_ms: i64) -> i64 {
        not_before_ms.max(self.tat_ms - self.tolerance_ms)
    }

    /// Whether a slot at `at_ms` conforms now, without any wait.
    pub fn is_free_at(&self, at_ms: i64) -> bool {
        self.tat_ms - self.tolerance_ms <= at_ms
    }

    /// Records a granted slot; `step_ms` is the emission interval (doubled while ramping up).
    pub fn commit(&mut self, slot_ms: i64, step_ms: i64) {
        self.tat_ms = self.tat_ms.max(slot_ms) + step_ms;
    }

    /// Reserves the earliest slot at or after `now_ms` unless it is more than `max_wait_ms` away;
    /// a refusal leaves the track unchanged.
    pub fn try_reserve(&mut self, now_ms: i64, max_wait_ms: i64) -> Option<i64> {
        let slot = self.earliest_slot(now_ms);
        if slot - now_ms > max_wait_ms {
            return None;
        }
        self.commit(slot, self.emission_ms);
        Some(slot)
    }

    /// About how many granted slots of this track still lie in the future at `now_ms`.
    pub fn queued_at(&self, now_ms: i64) -> u32 {
        let ahead = self.tat_ms - self.tolerance_ms - now_ms;
        if ahead <= 0 || self.emission_ms <= 0 {
            return 0;
        }
        let intervals = (ahead + self.emission_ms - 1) / self.emission_ms;
        u32::try_from(intervals - 1).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn an_idle_track_grants_its_burst_at_once_then_spaces_slots_by_the_emission_interval() {
        let mut track = Track::new(1000, 2000); // burst 3
        let slots: Vec<_> = (0..5).filter_map(|_| track.try_reserve(NOW, 10_000)).collect();
        assert_eq!(slots, vec![NOW, NOW, NOW, NOW + 1000, NOW + 2000]);
    }

    #[test]
    fn a_slot_beyond_the_max_wait_is_refused_and_changes_nothing() {
        let mut track = Track::new(1000, 0);
        for _ in 0..4 {
            assert!(track.try_reserve(NOW, 3000).is_some());
        }
        let before = track;
        assert_eq!(track.try_reserve(NOW, 3000), None);
        assert_eq!(track, before);
        assert_eq!(track.try_reserve(NOW + 1000, 3000), Some(NOW + 4000));
    }

    #[test]
    fn capacity_comes_back_with_time_but_never_beyond_the_burst() {
        let mut track = Track::new(1000, 1000); // burst 2
        assert_eq!(track.try_reserve(NOW, 0), Some(NOW));
        assert_eq!(track.try_reserve(NOW, 0), Some(NOW));
        assert_eq!(track.try_reserve(NOW, 0), None);
        let later = NOW + 60_000;
        assert_eq!(track.try_reserve(later, 0), Some(later));
        assert_eq!(track.try_reserve(later, 0), Some(later));
        assert_eq!(track.try_reserve(later, 0), None);
    }

    #[test]
    fn the_queued_estimate_counts_future_slots() {
        let mut track = Track::new(1000, 0);
        assert_eq!(track.queued_at(NOW), 0);
        for _ in 0..4 {
            track.try_reserve(NOW, 10_000);
        }
        assert_eq!(track.queued_at(NOW), 3);
        assert_eq!(track.queued_at(NOW + 2500), 1);
        assert_eq!(track.queued_at(NOW + 10_000), 0);
    }

    #[test]
    fn a_doubled_step_halves_the_rate() {
        let mut track = Track::new(1000, 0);
        track.commit(NOW, 2000);
        assert_eq!(track.earliest_slot(NOW), NOW + 2000);
    }
}
