//! `asf-control worker`: background jobs. It keeps the Ajax sessions of recently active users
//! alive by refreshing them shortly before they expire (single-flight with every proxy, so a
//! refresh here and a reactive one at a proxy never collide), moves audit records from the Redis
//! stream into PostgreSQL, and prunes audit records past their retention.

use std::time::Duration;

use asf_core::session_refresh::{RefreshError, SessionRefresher};
use chrono::Utc;
use sqlx::PgPool;

use crate::audit::mover::AuditMover;
use crate::billing::stripe_api::StripeApi;
use crate::plans::Plans;

/// Users seen by a proxy within this long count as active.
const ACTIVE_WINDOW_SECS: i64 = 3600;
/// Sessions expiring within this long are refreshed.
const REFRESH_AHEAD_SECS: i64 = 120;

/// One pass: refreshes every active user's session that is about to expire. Returns how many
/// sessions were refreshed.
pub async fn keep_sessions_alive(refresher: &SessionRefresher) -> Result<usize, redis::RedisError> {
    let now = Utc::now().timestamp();
    let active_key = refresher.keys.active_users();
    let mut redis = refresher.redis.clone();
    let (users,): (Vec<String>,) = redis::pipe()
        .cmd("ZREMRANGEBYSCORE")
        .arg(&active_key)
        .arg("-inf")
        .arg(now - ACTIVE_WINDOW_SECS)
        .ignore()
        .cmd("ZRANGEBYSCORE")
        .arg(&active_key)
        .arg(now - ACTIVE_WINDOW_SECS)
        .arg("+inf")
        .query_async(&mut redis)
        .await?;
    let mut refreshed = 0;
    for user in users {
        match refresher.refresh_if_expiring(&user, REFRESH_AHEAD_SECS, now).await {
            Ok(true) => refreshed += 1,
            Ok(false) => {}
            Err(RefreshError::SessionEnded) => tracing::info!(%user, "Ajax session ended; user must log in again"),
            Err(e) => tracing::warn!(%user, error = %e, "keeping the Ajax session alive failed; will retry"),
        }
    }
    Ok(refreshed)
}

/// How often audit records past their retention are pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// Prunes audit records older than `retention`.
async fn prune_audit(db: &PgPool, key: &[u8; 32], retention: Duration) {
    let cutoff = Utc::now().timestamp_millis() - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    match crate::audit::store::prune(db, key, cutoff).await {
        Ok(0) => {}
        Ok(removed) => tracing::info!(removed, "pruned audit records past retention"),
        Err(e) => tracing::warn!(error = %e, "pruning audit records failed; will retry"),
    }
}

/// How often every tenant's entitlement is published again (Redis may have restarted empty).
const REPUBLISH_INTERVAL: Duration = Duration::from_secs(60);
/// How often plans whose change time has come are recomputed (their expiry is exact to this).
const PLAN_CHANGE_POLL: Duration = Duration::from_millis(500);

/// Plans whose time has come (a grace period, a subscription, a voucher grant ends or starts), and
/// every entitlement again if Redis restarted empty.
async fn apply_due_plan_changes(plans: &Plans) {
    match plans.republish_if_lost().await {
        Ok(true) => tracing::warn!("entitlements were missing from Redis; published them all again"),
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "checking published entitlements failed; will retry"),
    }
    match plans.recompute_due().await {
        Ok(0) => {}
        Ok(count) => tracing::info!(count, "plans changed at their time"),
        Err(e) => tracing::warn!(error = %e, "recomputing plans failed; will retry"),
    }
}

async fn republish_entitlements(plans: &Plans) {
    if let Err(e) = plans.republish(None).await {
        tracing::warn!(error = %e, "publishing entitlements failed; will retry");
    }
}

/// How often the Stripe event inbox is looked at.
const INBOX_POLL: Duration = Duration::from_millis(250);

async fn process_stripe_events(plans: &Plans, stripe: Option<&StripeApi>) {
    let Some(stripe) = stripe else { return };
    match crate::billing::inbox::process_due(&plans.db, stripe, plans).await {
        Ok(0) => {}
        Ok(count) => tracing::info!(count, "Stripe events processed"),
        Err(e) => tracing::warn!(error = %e, "processing Stripe events failed; will retry"),
    }
}

/// The worker's jobs besides session upkeep.
pub struct Jobs {
    pub mover: AuditMover,
    pub plans: Plans,
    pub stripe: Option<StripeApi>,
    pub retention: Duration,
}

/// Runs the jobs until Ctrl-C: session upkeep every `interval`, the audit mover continuously, the
/// Stripe inbox, plan changes at their time, entitlements republished every minute, audit
/// retention hourly.
pub async fn run(refresher: SessionRefresher, interval: Duration, jobs: Jobs) {
    let Jobs {
        mover,
        plans,
        stripe,
        retention,
    } = jobs;
    let chain_key = mover.chain_key;
    let mover = tokio::spawn(mover.run());
    let mut inbox_ticker = tokio::time::interval(INBOX_POLL);
    let mut ticker = tokio::time::interval(interval);
    let mut prune_ticker = tokio::time::interval(PRUNE_INTERVAL);
    let mut republish_ticker = tokio::time::interval(REPUBLISH_INTERVAL);
    let mut plan_ticker = tokio::time::interval(PLAN_CHANGE_POLL);
    // A slow job (a prune, a Stripe batch) delays the next ticks instead of firing them in a burst.
    for ticker in [
        &mut inbox_ticker,
        &mut ticker,
        &mut prune_ticker,
        &mut republish_ticker,
        &mut plan_ticker,
    ] {
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    loop {
        tokio::select! {
            _ = prune_ticker.tick() => prune_audit(&plans.db, &chain_key, retention).await,
            _ = inbox_ticker.tick() => process_stripe_events(&plans, stripe.as_ref()).await,
            _ = republish_ticker.tick() => republish_entitlements(&plans).await,
            _ = plan_ticker.tick() => apply_due_plan_changes(&plans).await,
            _ = ticker.tick() => {
                match keep_sessions_alive(&refresher).await {
                    Ok(0) => {}
                    Ok(count) => tracing::info!(count, "refreshed Ajax sessions"),
                    Err(e) => tracing::warn!(error = %e, "worker pass failed; will retry"),
                }
            }
            _ = tokio::signal::ctrl_c() => {
                mover.abort();
                return;
            }
        }
    }
}
