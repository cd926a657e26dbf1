//! A tenant's effective plan: read its subscription and voucher grants, apply
//! [`asf_core::plans::effective_plan`] (never below the deployment's baseline plan), store the result
//! with the time it may next change, tell the tenant's users when it changed, and publish the
//! entitlement to Redis.

use std::time::Duration;

use asf_core::keyspace::Keyspace;
use asf_core::plans::{EffectivePlan, PaidSubscription, PlanSource, SubscriptionStatus, Tier, VoucherGrant};
use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;
use sqlx::PgPool;
use uuid::Uuid;

use super::catalogue::{self, entitlement_of};
use super::publish::publish;
use crate::notifications;

/// Why a plan could not be recomputed or published.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("no such tenant")]
    NoTenant,
    #[error("plan {0:?} is not in the plans table")]
    UnknownPlan(String),
}

/// What recomputing plans needs. Cheap to clone.
#[derive(Clone)]
pub struct Plans {
    pub db: PgPool,
    pub redis: ConnectionManager,
    pub keys: Keyspace,
    /// How long a `past_due` subscription keeps its plan.
    pub grace: Duration,
    /// The plan every tenant has at least (`free` unless the deployment says otherwise).
    pub baseline: Tier,
}

#[derive(sqlx::FromRow)]
struct BillingRow {
    plan: String,
    subscription_plan: Option<String>,
    subscription_status: Option<String>,
    current_period_end: Option<DateTime<Utc>>,
    past_due_since: Option<DateTime<Utc>>,
    subscription_ended_at: Option<DateTime<Utc>>,
}

impl BillingRow {
    fn subscription(&self) -> Option<PaidSubscription> {
        Some(PaidSubscription {
            tier: self.subscription_plan.as_deref()?.parse().ok()?,
            status: self
                .subscription_status
                .as_deref()?
                .parse::<SubscriptionStatus>()
                .ok()?,
            current_period_end: self.current_period_end.map_or(0, |t| t.timestamp()),
            past_due_since: self.past_due_since.map(|t| t.timestamp()),
            ended_at: self.subscription_ended_at.map(|t| t.timestamp()),
        })
    }
}

fn source_name(source: PlanSource) -> &'static str {
    match source {
        PlanSource::Subscription => "subscription",
        PlanSource::Voucher => "voucher",
        PlanSource::Free => "free",
    }
}

/// Whole seconds, rounded up: a grant never ends before its stored time (it starts at its stored
/// second, rounded down, so a fresh redemption counts at once).
fn ceil_secs(t: DateTime<Utc>) -> i64 {
    (t.timestamp_micros() + 999_999).div_euclid(1_000_000)
}

fn at(secs: Option<i64>) -> Option<DateTime<Utc>> {
    secs.and_then(|s| DateTime::from_timestamp(s, 0))
}

impl Plans {
    /// Recomputes the tenant's plan, as [`Plans::recompute`]; when that fails, marks the plan due so
    /// the worker recomputes it shortly, and logs (a change already committed is never undone).
    pub async fn recompute_or_defer(&self, tenant: Uuid) {
        if let Err(e) = self.recompute(tenant).await {
            tracing::warn!(%tenant, error = %e, "recomputing the plan failed; the worker will retry");
            let _ = sqlx::query("update tenants set plan_changes_at = now() where id = $1")
                .bind(tenant)
                .execute(&self.db)
                .await;
        }
    }

    /// Recomputes the tenant's plan as of now, stores it, and publishes its entitlement.
    pub async fn recompute(&self, tenant: Uuid) -> Result<EffectivePlan, PlanError> {
        let now = Utc::now().timestamp();
        let mut tx = self.db.begin().await?;
        let billing: BillingRow = sqlx::query_as(
            "select plan, subscription_plan, subscription_status, current_period_end, past_due_since, \
             subscription_ended_at from tenants where id = $1 for no key update",
        )
        .bind(tenant)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(PlanError::NoTenant)?;
        let grants: Vec<(String, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
            "select plan, starts_at, ends_at from voucher_grants where tenant_id = $1 and ends_at > now()",
        )
        .bind(tenant)
        .fetch_all(&mut *tx)
        .await?;
        let grants: Vec<VoucherGrant> = grants
            .into_iter()
            .filter_map(|(plan, starts, ends)| {
                Some(VoucherGrant {
                    tier: plan.parse().ok()?,
                    starts_at: starts.timestamp(),
                    ends_at: ceil_secs(ends),
                })
            })
            .collect();
        let grace = i64::try_from(self.grace.as_secs()).unwrap_or(i64::MAX);
        let mut effective = asf_core::plans::effective_plan(billing.subscription().as_ref(), &grants, grace, now);
        let source = if self.baseline > effective.tier {
            effective.tier = self.baseline;
            "baseline"
        } else {
            source_name(effective.source)
        };
        sqlx::query(
            "update tenants set plan = $2, plan_source = $3, plan_changes_at = $4, updated_at = now() where id = $1",
        )
        .bind(tenant)
        .bind(effective.tier.as_str())
        .bind(source)
        .bind(at(effective.next_change_at))
        .execute(&mut *tx)
        .await?;
        if billing.plan != effective.tier.as_str() {
            let body = format!(
                "Your plan changed from {} to {}.",
                billing.plan,
                effective.tier.as_str()
            );
            notifications::notify_tenant(&mut tx, tenant, "plan_changed", "Plan changed", &body, None).await?;
        }
        // Published while the tenant's row is locked, with the plan catalogue read under that lock
        // too: every publication does so, so an older value can never be written after a newer one.
        let plans = catalogue::load_all(&mut *tx).await?;
        self.publish_among(&plans, tenant, effective.tier.as_str()).await?;
        tx.commit().await?;
        Ok(effective)
    }

    async fn publish_among(&self, plans: &[catalogue::PlanRow], tenant: Uuid, plan: &str) -> Result<(), PlanError> {
        let row = plans
            .iter()
            .find(|p| p.name == plan)
            .ok_or_else(|| PlanError::UnknownPlan(plan.to_owned()))?;
        let entitlement = entitlement_of(row, plans);
        publish(&mut self.redis.clone(), &self.keys, &tenant.to_string(), &entitlement).await?;
        Ok(())
    }

    /// Recomputes the plans whose change time has come; returns how many.
    pub async fn recompute_due(&self) -> Result<usize, PlanError> {
        let due: Vec<Uuid> = sqlx::query_scalar(
            "select id from tenants where plan_changes_at <= now() order by plan_changes_at limit 500",
        )
        .fetch_all(&self.db)
        .await?;
        for tenant in &due {
            self.recompute(*tenant).await?;
        }
        Ok(due.len())
    }

    /// Publishes every tenant's current entitlement again (after a Redis restart lost them, or a
    /// plan's definition changed); returns how many.
    pub async fn republish(&self, only_plan: Option<&str>) -> Result<usize, PlanError> {
        let tenants: Vec<Uuid> = sqlx::query_scalar("select id from tenants where $1::text is null or plan = $1")
            .bind(only_plan)
            .fetch_all(&self.db)
            .await?;
        for tenant in &tenants {
            // The plan and its definition are read under the row lock a recompute takes too (see
            // `recompute`), so an admin's edit published meanwhile is never overwritten.
            let mut tx = self.db.begin().await?;
            let plan: Option<String> = sqlx::query_scalar("select plan from tenants where id = $1 for no key update")
                .bind(tenant)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(plan) = plan {
                let plans = catalogue::load_all(&mut *tx).await?;
                self.publish_among(&plans, *tenant, &plan).await?;
            }
            tx.commit().await?;
        }
        Ok(tenants.len())
    }

    /// Publishes every entitlement again if Redis lost them (it restarted empty); returns whether
    /// it had to.
    pub async fn republish_if_lost(&self) -> Result<bool, PlanError> {
        let marker = self.keys.entitlements_published();
        let mut redis = self.redis.clone();
        let present: bool = redis::cmd("EXISTS").arg(&marker).query_async(&mut redis).await?;
        if present {
            return Ok(false);
        }
        self.republish(None).await?;
        redis::cmd("SET")
            .arg(&marker)
            .arg(1)
            .query_async::<()>(&mut redis)
            .await?;
        Ok(true)
    }
}
