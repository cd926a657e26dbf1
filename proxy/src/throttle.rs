//! The proxy's side of the global upstream budget: which lane a route uses, the tenant's quota,
//! falling back to this instance's share of the budget in memory within one failed Redis call
//! (and back, by itself, when Redis answers again), Ajax pushback, and the hints clients read
//! (`RateLimit-*`, `X-Suggested-Interval`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use asf_core::catalogue::RouteClass;
use asf_core::keyspace::Keyspace;
use asf_core::throttle::{
    BudgetConfig, Decision, GlobalBudget, Lane, LocalBudget, Precondition, Reservation, ReserveRequest, TenantQuota,
};

use crate::metrics::Metrics;

/// The slowest polling a client is asked for.
const MAX_SUGGESTED_INTERVAL_SECS: f64 = 600.0;
/// The polling interval suggested when the budget is idle (what clients do by themselves).
const BASE_SUGGESTED_INTERVAL_SECS: f64 = 30.0;
/// How long to pause when Ajax pushes back without saying for how long.
pub const DEFAULT_PUSHBACK: Duration = Duration::from_secs(30);

/// The lane of a route class: security-critical commands have their reserved share.
pub fn lane_of(class: RouteClass) -> Lane {
    match class {
        RouteClass::Command | RouteClass::Panic => Lane::Command,
        RouteClass::Account => Lane::Account,
        RouteClass::HubRead | RouteClass::Read | RouteClass::Settings | RouteClass::Public => Lane::Read,
    }
}

/// The polling interval to suggest at a budget utilisation (0..=1): 30 s when idle, rising as the
/// budget fills (60 s at half, 150 s at 80%), at most 10 minutes.
pub fn suggested_interval_secs(utilisation: f64) -> u64 {
    let headroom = (1.0 - utilisation.clamp(0.0, 1.0)).max(BASE_SUGGESTED_INTERVAL_SECS / MAX_SUGGESTED_INTERVAL_SECS);
    (BASE_SUGGESTED_INTERVAL_SECS / headroom)
        .round()
        .min(MAX_SUGGESTED_INTERVAL_SECS) as u64
}

/// What a proxied answer tells the client about the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hints {
    pub limit: u32,
    pub remaining: u32,
    pub reset_secs: u64,
    pub suggested_interval_secs: u64,
}

impl Hints {
    pub fn of(limit: u32, reservation: &Reservation) -> Self {
        Self {
            limit,
            remaining: reservation.remaining,
            reset_secs: reservation.reset_secs,
            suggested_interval_secs: suggested_interval_secs(reservation.utilisation),
        }
    }
}

/// The global budget as this instance uses it.
pub struct Throttle {
    pub global: GlobalBudget,
    config: BudgetConfig,
    fallback: RwLock<Option<Arc<LocalBudget>>>,
    /// Live instances last seen through heartbeats (at least the configured count).
    instances: AtomicU32,
    configured_instances: u32,
    tenant_per_minute: u32,
    tenant_burst: u32,
    tenant_max_queued: u32,
    metrics: Metrics,
}

/// A tenant's limits until plans exist.
#[derive(Debug, Clone, Copy)]
pub struct TenantDefaults {
    pub per_minute: u32,
    pub burst: u32,
    pub max_queued: u32,
}

impl Throttle {
    pub fn new(
        keys: Keyspace,
        config: BudgetConfig,
        tenant: TenantDefaults,
        instance_count: u32,
        metrics: Metrics,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            global: GlobalBudget::new(keys, &config)?,
            config,
            fallback: RwLock::new(None),
            instances: AtomicU32::new(instance_count.max(1)),
            configured_instances: instance_count.max(1),
            tenant_per_minute: tenant.per_minute,
            tenant_burst: tenant.burst.clamp(1, tenant.per_minute.max(1)),
            tenant_max_queued: tenant.max_queued,
            metrics,
        })
    }

    /// The calls allowed per window.
    pub fn limit(&self) -> u32 {
        self.config.rate.limit()
    }

    /// The reservation of a tenant's call of `class`, granted only if `precondition` holds. The
    /// tenant's rate is its plan's when known (`plan_rate`), never above the configured tenant rate,
    /// which is also the rate of a tenant not seen yet.
    pub fn request(
        &self,
        class: RouteClass,
        tenant: &str,
        plan_rate: Option<u32>,
        precondition: Precondition,
    ) -> ReserveRequest {
        let per_minute = plan_rate.map_or(self.tenant_per_minute, |rate| rate.min(self.tenant_per_minute));
        let quota = TenantQuota::new(tenant, per_minute)
            .with_burst(self.tenant_burst)
            .with_max_queued(self.tenant_max_queued);
        ReserveRequest::for_tenant(lane_of(class), quota).with_precondition(precondition)
    }

    /// This instance's in-memory budget while Redis is down.
    pub fn fallback(&self) -> Option<Arc<LocalBudget>> {
        self.fallback.read().ok().and_then(|guard| guard.clone())
    }

    /// Switches to this instance's share of the budget (idempotent).
    pub fn enter_fallback(&self) -> Option<Arc<LocalBudget>> {
        let mut guard = self.fallback.write().ok()?;
        if let Some(local) = guard.as_ref() {
            return Some(local.clone());
        }
        let divisor = self.instances.load(Ordering::Relaxed).max(1);
        match LocalBudget::new(&self.config, divisor) {
            Ok(local) => {
                tracing::warn!(divisor, "redis unavailable: using this instance's share of the budget");
                self.metrics.fallback.set(1);
                let local = Arc::new(local);
                *guard = Some(local.clone());
                Some(local)
            }
            Err(e) => {
                tracing::error!(error = %e, divisor, "cannot split the budget; refusing until redis is back");
                None
            }
        }
    }

    /// Back to the shared budget: first pauses it for the hand-over gap, so that no window holds
    /// slots granted here and there (see `asf_core::throttle::local`).
    pub async fn leave_fallback(&self, conn: &mut impl redis::aio::ConnectionLike) -> Result<(), redis::RedisError> {
        let Some(local) = self.fallback() else { return Ok(()) };
        self.global.pause(conn, local.plan().handover_gap()).await?;
        if let Ok(mut guard) = self.fallback.write() {
            *guard = None;
        }
        self.metrics.fallback.set(0);
        tracing::info!("redis is back: using the shared budget again");
        Ok(())
    }

    /// Records the live instance count from a heartbeat.
    /// The configured count stays a floor: an instance that has served nothing yet has not
    /// announced itself.
    pub fn set_instances(&self, count: usize) {
        let live = u32::try_from(count).unwrap_or(u32::MAX);
        self.instances
            .store(live.max(self.configured_instances), Ordering::Relaxed);
    }

    /// Records a decision in the metrics.
    pub fn observe(&self, decision: &Decision) {
        match decision {
            Decision::Granted(reservation) => {
                self.metrics.budget_remaining.set(i64::from(reservation.remaining));
                self.metrics.budget_utilisation.set(reservation.utilisation);
                self.metrics
                    .suggested_interval
                    .set(suggested_interval_secs(reservation.utilisation) as i64);
            }
            Decision::Refused { reason, .. } => {
                self.metrics.refusals.with_label_values(&[reason.as_str()]).inc();
            }
            Decision::NotEntitled { .. } => {
                self.metrics.refusals.with_label_values(&["not_entitled"]).inc();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_panic_ride_the_command_lane() {
        assert_eq!(lane_of(RouteClass::Command), Lane::Command);
        assert_eq!(lane_of(RouteClass::Panic), Lane::Command);
        assert_eq!(lane_of(RouteClass::Read), Lane::Read);
        assert_eq!(lane_of(RouteClass::Settings), Lane::Read);
    }

    #[test]
    fn suggested_interval_rises_with_utilisation() {
        assert_eq!(suggested_interval_secs(0.0), 30);
        assert_eq!(suggested_interval_secs(0.5), 60);
        assert_eq!(suggested_interval_secs(0.8), 150);
        assert_eq!(suggested_interval_secs(1.0), 600);
        let mut last = 0;
        for step in 0..=100 {
            let interval = suggested_interval_secs(f64::from(step) / 100.0);
            assert!(interval >= last);
            last = interval;
        }
    }
}
