//! The shared budget in Redis ([`GlobalBudget`]): builds the calls of `budget.lua` (one script,
//! three operations: reserve, snapshot, pause) and reads their replies.
//!
//! A reservation is one `EVALSHA` whose reply reads as a [`Decision`]. When Redis lacks the script
//! (restart, failover, `SCRIPT FLUSH`) it answers `NOSCRIPT` having reserved nothing; the call then
//! loads the script and is sent once more.

use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{ErrorKind, RedisError, Script, ScriptInvocation};

use super::clock::Clock;
use super::config::{BudgetConfig, BudgetConfigError, BudgetPlan};
use super::decision::{BudgetSnapshot, Decision, ReserveRequest};
use super::engine::{self, RawSnapshot};
use super::lanes::Lane;
use crate::keyspace::Keyspace;

/// The budget script's source.
const SOURCE: &str = include_str!("budget.lua");

/// The shared upstream budget, enforced in Redis for every process that uses the same keyspace
/// and the same [`BudgetConfig`].
#[derive(Debug, Clone)]
pub struct GlobalBudget {
    keys: Keyspace,
    /// The keys every operation declares, in the script's order (lanes, pause, grant log), made
    /// once rather than on every call.
    common_keys: [String; 5],
    plan: BudgetPlan,
    script: Script,
    clock: Clock,
}

impl GlobalBudget {
    /// The budget of `config` under `keys`; fails if the settings cannot keep their promise.
    /// Every process sharing the keyspace must use the same rate, burst and shares.
    pub fn new(keys: Keyspace, config: &BudgetConfig) -> Result<Self, BudgetConfigError> {
        let [command, account, read] = Lane::ALL.map(|lane| keys.budget_lane(lane));
        Ok(Self {
            common_keys: [command, account, read, keys.budget_pause(), keys.budget_grants()],
            keys,
            plan: BudgetPlan::shared(config)?,
            script: Script::new(SOURCE),
            clock: Clock::Real,
        })
    }

    /// The same budget on another clock. [`Clock::Manual`] is for tests and simulations only: the
    /// script then uses the given time instead of Redis's.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The derived per-lane parameters.
    pub fn plan(&self) -> &BudgetPlan {
        &self.plan
    }

    /// Reserves the request's slot (one `EVALSHA`, loading the script if Redis lacks it). Fails
    /// only on Redis errors; the caller then falls back (see [`super::LocalBudget`]).
    pub async fn reserve(
        &self,
        conn: &mut impl ConnectionLike,
        request: &ReserveRequest,
    ) -> Result<Decision, RedisError> {
        let nonce = nonce();
        self.reserve_invocation(request, &nonce).invoke_async(conn).await
    }

    /// Loads the script into Redis ahead of its first call (a call loads it too when Redis lacks
    /// it, at the cost of two more round trips).
    pub async fn load_script(&self, conn: &mut impl ConnectionLike) -> Result<(), RedisError> {
        self.script.load_async(conn).await.map(|_| ())
    }

    /// Pauses every lane of every process until `duration` from now (Redis's clock), never
    /// shortening a pause in force; for one window after it, the budget runs at half rate.
    /// Slots granted before the pause keep their times. Returns the pause's end (Unix ms).
    pub async fn pause(&self, conn: &mut impl ConnectionLike, duration: Duration) -> Result<i64, RedisError> {
        let mut invocation = self.invocation("pause");
        invocation.arg(self.plan.window_ms()).arg(duration_ms(duration));
        let reply: Vec<i64> = invocation.invoke_async(conn).await?;
        reply.first().copied().ok_or_else(|| unexpected("pause"))
    }

    /// The budget now: each lane's next slot and queue, utilisation, pause state.
    pub async fn snapshot(&self, conn: &mut impl ConnectionLike) -> Result<BudgetSnapshot, RedisError> {
        let mut invocation = self.invocation("snapshot");
        invocation.arg(self.plan.window_ms());
        let reply: Vec<i64> = invocation.invoke_async(conn).await?;
        let raw = match reply.as_slice() {
            [now_ms, pause_end_ms, command, account, read, count, oldest_ms] => RawSnapshot {
                now_ms: *now_ms,
                pause_end_ms: *pause_end_ms,
                tats: [*command, *account, *read],
                count: *count,
                oldest_ms: *oldest_ms,
            },
            _ => return Err(unexpected("snapshot")),
        };
        Ok(engine::snapshot(&self.plan, &raw))
    }

    /// The script call with the keys every operation declares and the common arguments.
    fn invocation(&self, op: &str) -> ScriptInvocation<'_> {
        let mut invocation = self.script.prepare_invoke();
        for key in &self.common_keys {
            invocation.key(key);
        }
        invocation.arg(op);
        match self.clock.manual_ms() {
            Some(now_ms) => invocation.arg("1").arg(now_ms),
            None => invocation.arg("0").arg(0),
        };
        invocation
    }

    fn reserve_invocation(&self, request: &ReserveRequest, nonce: &str) -> ScriptInvocation<'_> {
        let mut invocation = self.invocation("reserve");
        invocation
            .arg(self.plan.limit())
            .arg(self.plan.window_ms())
            .arg(self.plan.max_wait_ms())
            .arg(request.lane.index() + 1);
        for lane in Lane::ALL {
            let params = self.plan.lane(lane);
            invocation.arg(params.emission_ms).arg(params.tolerance_ms);
        }
        match &request.tenant {
            Some(quota) => {
                let (emission_ms, tolerance_ms) = quota.gcra_ms();
                invocation
                    .key(self.keys.tenant_rate(&quota.tenant_id))
                    .key(self.keys.tenant_queue(&quota.tenant_id))
                    .arg("1")
                    .arg(emission_ms)
                    .arg(tolerance_ms)
                    .arg(quota.max_queued);
            }
            None => {
                invocation.arg("0").arg(0).arg(0).arg(0);
            }
        }
        invocation.arg(nonce);
        match &request.precondition {
            Some(precondition) => {
                for key in &precondition.absent {
                    invocation.key(key);
                }
                invocation.arg("1").arg(precondition.absent.len());
                match &precondition.not_before {
                    Some((key, issued_at)) => {
                        invocation.key(key);
                        invocation.arg("1").arg(*issued_at);
                    }
                    None => {
                        invocation.arg("0").arg(0);
                    }
                }
                match &precondition.fetch {
                    Some(key) => {
                        invocation.key(key);
                        invocation.arg("1");
                    }
                    None => {
                        invocation.arg("0");
                    }
                }
                match &precondition.entitlement {
                    Some(guard) => {
                        invocation.key(&guard.key);
                        invocation
                            .arg("1")
                            .arg(&guard.class)
                            .arg(if guard.allowed_when_absent { "1" } else { "0" })
                            .arg(&guard.upgrade_when_absent);
                    }
                    None => {
                        invocation.arg("0").arg("").arg("0").arg("");
                    }
                }
            }
            None => {
                invocation
                    .arg("0")
                    .arg(0)
                    .arg("0")
                    .arg(0)
                    .arg("0")
                    .arg("0")
                    .arg("")
                    .arg("0")
                    .arg("");
            }
        }
        invocation
    }
}

/// A unique member for the grant's entries in the sorted sets.
fn nonce() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn unexpected(op: &'static str) -> RedisError {
    RedisError::from((
        ErrorKind::UnexpectedReturnType,
        "unexpected budget script reply",
        op.to_string(),
    ))
}
