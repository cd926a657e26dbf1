//! The in-memory budget of one process ([`LocalBudget`]): the fallback while Redis is down, with
//! the same lanes, tenants, pause and decisions as the shared budget, computed by the same model
//! ([`super::engine`]).
//!
//! # Keeping the promise across a Redis outage
//!
//! Each instance takes `1 / share_divisor` of the budget, the divisor being the number of live
//! instances last seen through [`super::Heartbeat`] (or a configured count): the per-instance plans
//! add up to at most the limit in any window (see [`BudgetPlan::per_instance`]).
//!
//! That alone is not enough at the switch: the shared budget may already have granted the whole
//! limit in the last window, and slots up to the max wait ahead. So a fallback budget starts
//! *full*: its tracks are set as if they had just been used at their full share, with the first
//! slot one [`BudgetPlan::handover_gap`] (window + max wait) from now. No window then holds both
//! shared and local slots. (Setting the tracks to "now + window" alone would still let a window
//! hold local slots together with shared slots queued up to the max wait ahead.) The instance's
//! clock is trusted to be within a few milliseconds of Redis's (NTP).
//!
//! Going back is symmetric: local slots of the last window are unknown to the shared tracks. When
//! Redis answers again, call [`super::GlobalBudget::pause`] with the plan's handover gap once
//! before reserving there; the shared budget then resumes after that gap (and ramps up). A Redis
//! outage thus costs about two windows of upstream capacity: that is the price of the promise.
//!
//! Tenant limits are applied per instance while falling back (each instance knows only its own
//! traffic).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::clock::Clock;
use super::config::{BudgetConfig, BudgetConfigError, BudgetPlan};
use super::decision::{BudgetSnapshot, Decision, ReserveRequest};
use super::engine::{self, BudgetState, RawSnapshot, TenantState};
use super::lanes::Lane;

/// Above this many remembered tenants, idle ones are forgotten.
const TENANTS_BEFORE_SWEEP: usize = 4096;

#[derive(Debug, Default)]
struct LocalState {
    budget: BudgetState,
    tenants: HashMap<String, TenantState>,
}

/// A budget held in this process's memory.
#[derive(Debug)]
pub struct LocalBudget {
    plan: BudgetPlan,
    clock: Clock,
    state: Mutex<LocalState>,
}

impl LocalBudget {
    /// The fallback budget of one of `share_divisor` instances, on the system clock, starting full
    /// (see the module doc). Fails if the budget cannot be split that many ways.
    pub fn new(config: &BudgetConfig, share_divisor: u32) -> Result<Self, BudgetConfigError> {
        Self::fallback_with_clock(config, share_divisor, Clock::Real)
    }

    /// [`Self::new`] on a given clock.
    pub fn fallback_with_clock(
        config: &BudgetConfig,
        share_divisor: u32,
        clock: Clock,
    ) -> Result<Self, BudgetConfigError> {
        let plan = BudgetPlan::per_instance(config, share_divisor)?;
        let first_slot = clock.local_now_ms() + i64::try_from(plan.handover_gap().as_millis()).unwrap_or(i64::MAX);
        let mut budget = BudgetState::default();
        for lane in Lane::ALL {
            // A track's first slot is at `tat - tolerance`.
            budget.tats[lane.index()] = first_slot + plan.lane(lane).tolerance_ms;
        }
        Ok(Self::with_state(plan, clock, budget))
    }

    /// The only budget there is (no shared budget, no other instance: a single process or the
    /// sandbox), starting idle.
    pub fn standalone(config: &BudgetConfig, clock: Clock) -> Result<Self, BudgetConfigError> {
        Ok(Self::with_state(
            BudgetPlan::shared(config)?,
            clock,
            BudgetState::default(),
        ))
    }

    fn with_state(plan: BudgetPlan, clock: Clock, budget: BudgetState) -> Self {
        Self {
            plan,
            clock,
            state: Mutex::new(LocalState {
                budget,
                tenants: HashMap::new(),
            }),
        }
    }

    /// The derived per-lane parameters (this instance's part of the budget).
    pub fn plan(&self) -> &BudgetPlan {
        &self.plan
    }

    fn lock(&self) -> MutexGuard<'_, LocalState> {
        // The state is consistent after every statement that can panic, so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserves the request's slot now; the same decision the shared budget would make on this state.
    pub fn reserve(&self, request: &ReserveRequest) -> Decision {
        let now = self.clock.local_now_ms();
        let mut guard = self.lock();
        let state = &mut *guard;
        if state.tenants.len() > TENANTS_BEFORE_SWEEP {
            state.tenants.retain(|_, tenant| !tenant.is_idle(now));
        }
        let outcome = match &request.tenant {
            Some(quota) => {
                let tenant = state.tenants.entry(quota.tenant_id.clone()).or_default();
                engine::reserve(&self.plan, &mut state.budget, Some((quota, tenant)), request.lane, now)
            }
            None => engine::reserve(&self.plan, &mut state.budget, None, request.lane, now),
        };
        outcome.into_decision()
    }

    /// Pauses every lane until `duration` from now (never shortening a pause in force), then ramps
    /// at half rate for one window; returns the pause's end (Unix ms).
    pub fn pause(&self, duration: Duration) -> i64 {
        let now = self.clock.local_now_ms();
        let duration_ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        engine::pause(&mut self.lock().budget, now, duration_ms, self.plan.window_ms())
    }

    /// The budget now.
    pub fn snapshot(&self) -> BudgetSnapshot {
        let now = self.clock.local_now_ms();
        let raw = RawSnapshot::of(&self.lock().budget, now, self.plan.window_ms());
        engine::snapshot(&self.plan, &raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::throttle::clock::ManualClock;
    use crate::throttle::decision::{RefusalReason, TenantQuota};
    use crate::throttle::spec::RateSpec;

    const NOW: i64 = 1_700_000_000_000;

    fn config() -> BudgetConfig {
        BudgetConfig::new(RateSpec::parse("100/60s").expect("rate"))
    }

    #[test]
    fn a_fallback_budget_starts_full_and_grants_only_after_the_handover_gap() {
        let clock = ManualClock::new(NOW);
        let budget = LocalBudget::fallback_with_clock(&config(), 2, Clock::Manual(clock.clone())).expect("budget");
        let refused = budget.reserve(&ReserveRequest::new(Lane::Command));
        // First slot at now + 60 s + 20 s: a retry is admitted 60 s from now.
        assert_eq!(
            refused,
            Decision::Refused {
                reason: RefusalReason::QueueFull,
                retry_after_secs: 60
            }
        );
        clock.advance(Duration::from_secs(60));
        let Decision::Granted(r) = budget.reserve(&ReserveRequest::new(Lane::Command)) else {
            panic!("refused after the gap");
        };
        assert_eq!(r.slot_at_ms, NOW + 80_000);
        assert_eq!(r.wait_duration(), Duration::from_secs(20));
    }

    #[test]
    fn instances_of_a_fallback_split_the_sustained_rate() {
        let clock = ManualClock::new(NOW);
        let budget = LocalBudget::fallback_with_clock(&config(), 4, Clock::Manual(clock.clone())).expect("budget");
        assert_eq!(budget.plan().limit(), 25);
        clock.advance(budget.plan().handover_gap());
        let mut granted = 0;
        for _ in 0..(10 * 60 * 10) {
            if budget.reserve(&ReserveRequest::new(Lane::Read)).is_granted() {
                granted += 1;
            }
            clock.advance(Duration::from_millis(100));
        }
        // (100 - 4 * 3) / 4 = 22 per minute sustained, plus the bursts, over ten minutes.
        assert!((215..=250).contains(&granted), "{granted}");
    }

    #[test]
    fn a_standalone_budget_serves_tenants_and_pauses_like_the_shared_one() {
        let clock = ManualClock::new(NOW);
        let budget = LocalBudget::standalone(&config(), Clock::Manual(clock.clone())).expect("budget");
        let quota = TenantQuota::new("acme", 1).with_burst(1);
        let request = ReserveRequest::for_tenant(Lane::Read, quota);
        assert!(budget.reserve(&request).is_granted());
        assert!(matches!(
            budget.reserve(&request),
            Decision::Refused {
                reason: RefusalReason::TenantLimit,
                retry_after_secs: 60
            }
        ));
        let until = budget.pause(Duration::from_secs(30));
        assert_eq!(until, NOW + 30_000);
        assert!(matches!(
            budget.reserve(&ReserveRequest::new(Lane::Command)),
            Decision::Refused {
                reason: RefusalReason::Paused,
                retry_after_secs: 10
            }
        ));
        let snapshot = budget.snapshot();
        assert_eq!(snapshot.paused_until_ms, Some(NOW + 30_000));
        assert_eq!(snapshot.granted_in_window, 1);
    }
}
