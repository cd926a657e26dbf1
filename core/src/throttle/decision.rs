//! What a caller asks the budget ([`ReserveRequest`], [`TenantQuota`]) and what it answers
//! ([`Decision`], [`BudgetSnapshot`]), including reading the script's reply out of a Redis value.

use std::time::Duration;

use redis::{FromRedisValue, ParsingError, Value};

use super::lanes::{LANES, Lane};

/// A tenant's burst when its plan does not say (an app opening fires a few reads at once).
pub const DEFAULT_TENANT_BURST: u32 = 5;
/// How many queued slots one tenant may hold when its plan does not say.
pub const DEFAULT_TENANT_MAX_QUEUED: u32 = 10;

/// A tenant's limits, from its plan: passed with each reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantQuota {
    /// The tenant's id (part of its keys).
    pub tenant_id: String,
    /// Requests per minute the tenant may make (GCRA on arrival time; 0 refuses every request).
    pub per_minute: u32,
    /// How many requests the tenant may make at once before its rate applies (at least 1).
    pub burst: u32,
    /// How many future (queued) slots the tenant may hold at a time. Only a request that would be
    /// queued is refused by it; one served at once never is.
    pub max_queued: u32,
}

impl TenantQuota {
    /// `per_minute` with the default burst (at most `per_minute`) and queue cap.
    pub fn new(tenant_id: impl Into<String>, per_minute: u32) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            per_minute,
            burst: DEFAULT_TENANT_BURST.min(per_minute).max(1),
            max_queued: DEFAULT_TENANT_MAX_QUEUED,
        }
    }

    /// The same quota with another burst.
    pub fn with_burst(mut self, burst: u32) -> Self {
        self.burst = burst;
        self
    }

    /// The same quota with another queue cap.
    pub fn with_max_queued(mut self, max_queued: u32) -> Self {
        self.max_queued = max_queued;
        self
    }

    /// The tenant's GCRA parameters: `(emission_ms, tolerance_ms)`, emission 0 when it has no access.
    pub(crate) fn gcra_ms(&self) -> (i64, i64) {
        if self.per_minute == 0 {
            return (0, 0);
        }
        let emission = i64::from(60_000u32.div_ceil(self.per_minute));
        (emission, i64::from(self.burst.max(1) - 1) * emission)
    }
}

/// What must hold before a slot is spent on a call, checked in the same atomic step: so that a
/// caller who would be refused anyway (a revoked token, a missing session) costs no budget, and the
/// proxy needs one round trip for its admission and its slot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Precondition {
    /// Keys that must not exist (e.g. the token's revocation marker).
    pub absent: Vec<String>,
    /// A key holding Unix seconds, and the issue time that must not be before them (suspension).
    pub not_before: Option<(String, i64)>,
    /// A key that must exist; its value comes back in [`Reservation::fetched`].
    pub fetch: Option<String>,
    /// The tenant's entitlement must allow the call's route class.
    pub entitlement: Option<EntitlementGuard>,
}

/// The entitlement check of a [`Precondition`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntitlementGuard {
    /// The tenant's entitlement hash (see [`crate::entitlement`]).
    pub key: String,
    /// The call's route class.
    pub class: String,
    /// Whether the call is allowed when the tenant has no entitlement stored (the free plan's
    /// classes: never more than the tenant could have without paying), and the plan to name
    /// otherwise.
    pub allowed_when_absent: bool,
    pub upgrade_when_absent: String,
}

/// One upstream call asking for its slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveRequest {
    /// The kind of call.
    pub lane: Lane,
    /// The calling tenant's limits; `None` for the project's own calls (worker, control plane).
    pub tenant: Option<TenantQuota>,
    /// What must hold for the call to be granted at all.
    pub precondition: Option<Precondition>,
}

impl ReserveRequest {
    /// A call of `lane` outside any tenant's quota.
    pub fn new(lane: Lane) -> Self {
        Self {
            lane,
            tenant: None,
            precondition: None,
        }
    }

    /// A call of `lane` made for a tenant.
    pub fn for_tenant(lane: Lane, quota: TenantQuota) -> Self {
        Self {
            lane,
            tenant: Some(quota),
            precondition: None,
        }
    }

    /// The same request, granted only if `precondition` holds.
    pub fn with_precondition(mut self, precondition: Precondition) -> Self {
        self.precondition = Some(precondition);
        self
    }
}

/// Why a request was refused at once. A refusal never spends any budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// The request's slot would be further away than the max wait.
    QueueFull,
    /// The tenant is over its per-minute limit.
    TenantLimit,
    /// The request would be queued, and the tenant already holds as many queued slots as it may.
    TenantQueueCap,
    /// Ajax asked for a pause that lasts beyond the max wait.
    Paused,
    /// The request's [`Precondition`] failed: a key that must be absent exists, or the issue time
    /// is before the "not before" time.
    Precondition,
    /// The key the [`Precondition`] fetches does not exist.
    Missing,
}

impl RefusalReason {
    /// The reason's name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::QueueFull => "queue_full",
            RefusalReason::TenantLimit => "tenant_limit",
            RefusalReason::TenantQueueCap => "tenant_queue_cap",
            RefusalReason::Paused => "paused",
            RefusalReason::Precondition => "precondition",
            RefusalReason::Missing => "missing",
        }
    }

    /// The reason of the script's refusal code.
    fn from_code(code: i64) -> Option<Self> {
        match code {
            1 => Some(RefusalReason::QueueFull),
            2 => Some(RefusalReason::TenantLimit),
            3 => Some(RefusalReason::TenantQueueCap),
            4 => Some(RefusalReason::Paused),
            5 => Some(RefusalReason::Precondition),
            6 => Some(RefusalReason::Missing),
            _ => None,
        }
    }
}

/// A granted slot, with what the client hints need.
#[derive(Debug, Clone, PartialEq)]
pub struct Reservation {
    /// When the call may go upstream (Unix ms on the budget's clock: Redis's for the shared budget).
    pub slot_at_ms: i64,
    /// How long the caller must wait for its slot, as of the decision.
    pub wait: Duration,
    /// The lane whose track granted the slot (another lane's when its idle capacity was used).
    pub lane_used: Lane,
    /// About how many more calls the budget can take in the current window: the limit minus the
    /// slots granted in the last window and those booked ahead (`RateLimit-Remaining`).
    pub remaining: u32,
    /// Seconds until the oldest of those slots leaves the window and `remaining` grows (`RateLimit-Reset`).
    pub reset_secs: u64,
    /// Those slots as a fraction of the limit, 0..=1 (for `X-Suggested-Interval` and metrics).
    pub utilisation: f64,
    /// The value of the [`Precondition::fetch`] key, when one was asked for.
    pub fetched: Option<String>,
    /// The tenant's entitlement, when it was checked and is stored.
    pub entitlement: Option<crate::entitlement::SeenEntitlement>,
}

impl Reservation {
    /// How long to wait before sending. Measured when the budget decided, so sleeping it after the
    /// reply arrived sends a little late, never early.
    pub fn wait_duration(&self) -> Duration {
        self.wait
    }
}

/// The budget's answer to a [`ReserveRequest`].
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The call has a slot; it must not go upstream before [`Reservation::slot_at_ms`].
    Granted(Reservation),
    /// The tenant's plan does not allow the call; nothing was spent.
    NotEntitled {
        /// The tenant's plan.
        plan: String,
        /// The cheapest plan that allows the call, if any.
        upgrade: Option<String>,
    },
    /// The call must not go upstream; nothing was spent.
    Refused {
        /// Why.
        reason: RefusalReason,
        /// Whole seconds (at least 1) until a retry could be granted if nothing else arrived
        /// (`Retry-After`).
        retry_after_secs: u64,
    },
}

impl Decision {
    /// The reservation, if granted.
    pub fn reservation(&self) -> Option<&Reservation> {
        match self {
            Decision::Granted(reservation) => Some(reservation),
            Decision::Refused { .. } | Decision::NotEntitled { .. } => None,
        }
    }

    /// Whether a slot was granted.
    pub fn is_granted(&self) -> bool {
        matches!(self, Decision::Granted(_))
    }
}

/// The raw result of one reservation, as the script returns it and the Rust model computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Granted {
        slot_ms: i64,
        now_ms: i64,
        lane: Lane,
        /// Slots granted with a time after `now - window` (past ones and those booked ahead).
        count: i64,
        /// The earliest of them.
        oldest_ms: i64,
        limit: u32,
        window_ms: i64,
    },
    Refused {
        reason: RefusalReason,
        /// Milliseconds until a retry could be granted.
        retry_ms: i64,
    },
}

/// Whole seconds in `ms`, rounded up.
pub(crate) fn ceil_secs(ms: i64) -> u64 {
    u64::try_from(ms.max(0)).unwrap_or(0).div_ceil(1000)
}

/// `(remaining, reset_secs, utilisation)` from the grant log's count and oldest slot.
pub(crate) fn hints(count: i64, oldest_ms: i64, now_ms: i64, limit: u32, window_ms: i64) -> (u32, u64, f64) {
    let count = u32::try_from(count.max(0)).unwrap_or(u32::MAX);
    let remaining = limit.saturating_sub(count);
    let utilisation = if limit == 0 {
        1.0
    } else {
        (f64::from(count) / f64::from(limit)).min(1.0)
    };
    let reset_secs = if count == 0 {
        0
    } else {
        ceil_secs(oldest_ms + window_ms - now_ms)
    };
    (remaining, reset_secs, utilisation)
}

impl Outcome {
    pub(crate) fn into_decision(self) -> Decision {
        match self {
            Outcome::Granted {
                slot_ms,
                now_ms,
                lane,
                count,
                oldest_ms,
                limit,
                window_ms,
            } => {
                let (remaining, reset_secs, utilisation) = hints(count, oldest_ms, now_ms, limit, window_ms);
                Decision::Granted(Reservation {
                    slot_at_ms: slot_ms,
                    wait: Duration::from_millis(u64::try_from(slot_ms - now_ms).unwrap_or(0)),
                    lane_used: lane,
                    remaining,
                    reset_secs,
                    utilisation,
                    fetched: None,
                    entitlement: None,
                })
            }
            Outcome::Refused { reason, retry_ms } => Decision::Refused {
                reason,
                retry_after_secs: ceil_secs(retry_ms).max(1),
            },
        }
    }

    /// Reads the script's reply: `{1, slot, now, lane (1-based), count, oldest, limit, window}` or
    /// `{0, reason, retry_ms}`.
    fn from_reply(values: &[i64]) -> Result<Self, ParsingError> {
        let bad = || ParsingError::from(format!("unexpected budget script reply {values:?}"));
        match values {
            [1, slot_ms, now_ms, lane, count, oldest_ms, limit, window_ms] => {
                let lane = usize::try_from(*lane - 1)
                    .ok()
                    .filter(|i| *i < LANES)
                    .and_then(Lane::from_index)
                    .ok_or_else(bad)?;
                Ok(Outcome::Granted {
                    slot_ms: *slot_ms,
                    now_ms: *now_ms,
                    lane,
                    count: *count,
                    oldest_ms: *oldest_ms,
                    limit: u32::try_from(*limit).map_err(|_| bad())?,
                    window_ms: *window_ms,
                })
            }
            [0, reason, retry_ms] => Ok(Outcome::Refused {
                reason: RefusalReason::from_code(*reason).ok_or_else(bad)?,
                retry_ms: *retry_ms,
            }),
            _ => Err(bad()),
        }
    }
}

/// Reads a reserve reply, so that a pipeline's result can be typed directly, e.g.
/// `let (values, decision): (Vec<Option<String>>, Decision) = pipe.query_async(&mut conn).await?;`
impl FromRedisValue for Decision {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        let mut items: Vec<Value> = FromRedisValue::from_redis_value(value)?;
        let text = |value: Option<Value>| value.map(String::from_redis_value).transpose();
        // A plan refusal: `{0, NOT_ENTITLED, 0, plan, upgrade}`.
        if items.len() == 5 {
            let upgrade = text(items.pop())?.filter(|u| !u.is_empty());
            let plan = text(items.pop())?.unwrap_or_default();
            return Ok(Decision::NotEntitled { plan, upgrade });
        }
        // A granted reply may end with the entitlement seen (plan, rate, classes), after the
        // precondition's fetched value.
        let entitlement = if items.len() == 12 {
            let classes = text(items.pop())?.unwrap_or_default();
            let rate = text(items.pop())?.unwrap_or_default();
            let plan = text(items.pop())?.unwrap_or_default();
            Some(crate::entitlement::SeenEntitlement::from_parts(plan, &rate, &classes))
        } else {
            None
        };
        let fetched = if items.len() == 9 {
            text(items.pop())?.filter(|f| !f.is_empty())
        } else {
            None
        };
        let values = items
            .into_iter()
            .map(i64::from_redis_value)
            .collect::<Result<Vec<_>, _>>()?;
        let mut decision = Outcome::from_reply(&values)?.into_decision();
        if let Decision::Granted(reservation) = &mut decision {
            reservation.fetched = fetched;
            reservation.entitlement = entitlement;
        }
        Ok(decision)
    }
}

/// One lane as seen by a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct LaneSnapshot {
    /// The lane.
    pub lane: Lane,
    /// The slot a request of this lane would get now (Unix ms, the budget's clock).
    pub next_free_ms: i64,
    /// How long that request would wait.
    pub wait: Duration,
    /// About how many granted slots of the lane's own track are still in the future.
    pub queued: u32,
    /// The lane's interval between slots at its reserved rate.
    pub emission: Duration,
}

/// The budget at one moment: for metrics, client hints and the admin view.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetSnapshot {
    /// The moment (Unix ms, the budget's clock).
    pub now_ms: i64,
    /// The calls allowed per window.
    pub limit: u32,
    /// The window.
    pub window: Duration,
    /// Each lane, in [`Lane::ALL`] order.
    pub lanes: Vec<LaneSnapshot>,
    /// Slots granted in the last window or booked ahead.
    pub granted_in_window: u32,
    /// See [`Reservation::remaining`].
    pub remaining: u32,
    /// See [`Reservation::reset_secs`].
    pub reset_secs: u64,
    /// See [`Reservation::utilisation`].
    pub utilisation: f64,
    /// The end of the current pause, if one is in force.
    pub paused_until_ms: Option<i64>,
    /// The end of the half-capacity ramp after the last pause, if it is not over.
    pub ramp_until_ms: Option<i64>,
}

impl BudgetSnapshot {
    /// The lane's part of the snapshot.
    pub fn lane(&self, lane: Lane) -> Option<&LaneSnapshot> {
        self.lanes.iter().find(|l| l.lane == lane)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_granted_reply_becomes_a_reservation_with_hints() {
        let now = 1_700_000_000_000;
        let reply = Value::Array(
            [1, now + 1500, now, 3, 40, now - 30_000, 100, 60_000]
                .into_iter()
                .map(Value::Int)
                .collect(),
        );
        let decision = Decision::from_redis_value(reply).expect("parsed");
        let reservation = decision.reservation().expect("granted");
        assert_eq!(reservation.slot_at_ms, now + 1500);
        assert_eq!(reservation.wait_duration(), Duration::from_millis(1500));
        assert_eq!(reservation.lane_used, Lane::Read);
        assert_eq!(reservation.remaining, 60);
        assert_eq!(reservation.reset_secs, 30);
        assert!((reservation.utilisation - 0.4).abs() < 1e-9);
    }

    #[test]
    fn a_refused_reply_rounds_retry_after_up_to_whole_seconds() {
        let reply = |retry: i64| Value::Array(vec![Value::Int(0), Value::Int(1), Value::Int(retry)]);
        let decision = Decision::from_redis_value(reply(2001)).expect("parsed");
        assert_eq!(
            decision,
            Decision::Refused {
                reason: RefusalReason::QueueFull,
                retry_after_secs: 3
            }
        );
        let soon = Decision::from_redis_value(reply(0)).expect("parsed");
        assert!(matches!(
            soon,
            Decision::Refused {
                retry_after_secs: 1,
                ..
            }
        ));
    }

    #[test]
    fn an_unexpected_reply_is_a_parse_error() {
        assert!(Decision::from_redis_value(Value::Int(1)).is_err());
        assert!(Decision::from_redis_value(Value::Array(vec![Value::Int(0), Value::Int(9), Value::Int(1)])).is_err());
        let bad_lane = Value::Array([1, 1, 1, 7, 0, 0, 100, 60_000].into_iter().map(Value::Int).collect());
        assert!(Decision::from_redis_value(bad_lane).is_err());
    }

    #[test]
    fn tenant_quotas_become_gcra_parameters() {
        assert_eq!(TenantQuota::new("t", 60).gcra_ms(), (1000, 4000));
        assert_eq!(TenantQuota::new("t", 7).with_burst(1).gcra_ms(), (8572, 0));
        assert_eq!(TenantQuota::new("t", 2).burst, 2);
        assert_eq!(TenantQuota::new("t", 0).gcra_ms(), (0, 0));
    }
}
