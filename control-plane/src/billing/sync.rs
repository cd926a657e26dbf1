//! Applying a Stripe subscription, as Stripe says it is now, to its tenant: price to plan, status,
//! period end, when it went past due, when it ends. Then the tenant's plan is recomputed.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use stripe_billing::Subscription;
use uuid::Uuid;

use crate::notifications;
use crate::plans::Plans;

/// Why a subscription could not be applied (the event is retried, then dead-lettered).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("plan: {0}")]
    Plan(#[from] crate::plans::effective::PlanError),
    #[error("stripe: {0}")]
    Stripe(String),
    #[error("no tenant has Stripe customer {0}")]
    UnknownCustomer(String),
    #[error("no plan is bought by Stripe price {0}")]
    UnknownPrice(String),
}

/// Statuses under which a subscription is the tenant's current one.
const LIVE: [&str; 3] = ["active", "trialing", "past_due"];

/// The tenant's subscription as last stored.
#[derive(sqlx::FromRow)]
struct StoredSubscription {
    id: Uuid,
    stripe_subscription_id: Option<String>,
    subscription_status: Option<String>,
    past_due_since: Option<DateTime<Utc>>,
    subscription_ended_at: Option<DateTime<Utc>>,
}

fn at(secs: Option<i64>) -> Option<DateTime<Utc>> {
    secs.and_then(|s| DateTime::from_timestamp(s, 0))
}

/// Whether `subscription` is live while its customer's tenant already has another live one.
pub async fn is_second_live(db: &PgPool, subscription: &Subscription) -> Result<bool, SyncError> {
    if !LIVE.contains(&subscription.status.as_str()) {
        return Ok(false);
    }
    let other: Option<bool> = sqlx::query_scalar(
        "select stripe_subscription_id <> $2 and subscription_status = any($3) from tenants \
         where stripe_customer_id = $1",
    )
    .bind(subscription.customer.id().as_str())
    .bind(subscription.id.as_str())
    .bind(LIVE.map(str::to_owned).to_vec())
    .fetch_optional(db)
    .await?
    .flatten();
    Ok(other == Some(true))
}

/// Applies `subscription` to its tenant (found by customer, or by `tenant_hint` from Checkout's
/// metadata); returns the tenant.
pub async fn apply(
    db: &PgPool,
    plans: &Plans,
    subscription: &Subscription,
    tenant_hint: Option<Uuid>,
) -> Result<Uuid, SyncError> {
    let customer = subscription.customer.id().to_string();
    let price = subscription
        .items
        .data
        .first()
        .map(|item| item.price.id.to_string())
        .unwrap_or_default();
    // A price no plan sells any more (an admin replaced it) keeps the plan stored for this
    // subscription; only a live subscription with no known plan at all is an error. A cancellation
    // must always be applied.
    let mapped: Option<String> = sqlx::query_scalar("select name from plans where $1 = any(stripe_price_ids)")
        .bind(&price)
        .fetch_optional(db)
        .await?;
    let status = subscription.status.as_str().to_owned();
    let period_end = subscription.items.data.iter().map(|i| i.current_period_end).max();
    // A cancellation at period end ends the plan then, even if the deletion event is late.
    let ended_at = subscription
        .ended_at
        .or(subscription.cancel_at)
        .or(subscription.cancel_at_period_end.then_some(period_end).flatten());

    let mut tx = db.begin().await?;
    let tenant: Option<StoredSubscription> = sqlx::query_as(
        "select id, stripe_subscription_id, subscription_status, past_due_since, subscription_ended_at \
             from tenants where stripe_customer_id = $1 or ($2::uuid is not null and id = $2) \
             order by (stripe_customer_id = $1) desc nulls last limit 1 for no key update",
    )
    .bind(&customer)
    .bind(tenant_hint)
    .fetch_optional(&mut *tx)
    .await?;
    let StoredSubscription {
        id: tenant,
        stripe_subscription_id: current_id,
        subscription_status: current_status,
        past_due_since,
        subscription_ended_at: previous_end,
    } = tenant.ok_or_else(|| SyncError::UnknownCustomer(customer.clone()))?;
    // An older subscription's news never replaces a live newer one.
    let other_live = current_id.as_deref().is_some_and(|id| id != subscription.id.as_str())
        && current_status.as_deref().is_some_and(|s| LIVE.contains(&s));
    if other_live && !LIVE.contains(&status.as_str()) {
        tx.commit().await?;
        return Ok(tenant);
    }
    let plan = match mapped {
        Some(plan) => Some(plan),
        None => {
            let stored: Option<String> = sqlx::query_scalar(
                "select subscription_plan from tenants where id = $1 and stripe_subscription_id = $2",
            )
            .bind(tenant)
            .bind(subscription.id.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .flatten();
            if stored.is_none() && LIVE.contains(&status.as_str()) {
                return Err(SyncError::UnknownPrice(price.clone()));
            }
            stored
        }
    };
    let past_due_since = match (status.as_str(), past_due_since) {
        ("past_due", Some(since)) => Some(since),
        // Whole seconds, rounded up: plans change on whole seconds, and the grace is never shorter.
        ("past_due", None) => DateTime::from_timestamp(Utc::now().timestamp() + 1, 0),
        _ => None,
    };
    sqlx::query(
        "update tenants set stripe_customer_id = coalesce(stripe_customer_id, $2), stripe_subscription_id = $3, \
         subscription_status = $4, subscription_plan = $5, current_period_end = $6, past_due_since = $7, \
         subscription_ended_at = $8, updated_at = now() where id = $1",
    )
    .bind(tenant)
    .bind(&customer)
    .bind(subscription.id.as_str())
    .bind(&status)
    .bind(&plan)
    .bind(at(period_end))
    .bind(past_due_since)
    .bind(at(ended_at))
    .execute(&mut *tx)
    .await?;
    let ending = at(ended_at).filter(|end| *end > Utc::now());
    if let Some(end) = ending
        && previous_end != Some(end)
    {
        let body = format!("Your subscription ends on {}.", end.format("%Y-%m-%d"));
        let key = format!("subscription_ending:{}:{}", subscription.id, end.timestamp());
        notifications::notify_tenant(
            &mut tx,
            tenant,
            "subscription_ending",
            "Subscription ending",
            &body,
            Some(&key),
        )
        .await?;
    }
    tx.commit().await?;
    plans.recompute(tenant).await?;
    Ok(tenant)
}
