//! Budget operations outside admission: pausing it on Ajax's pushback and reserving a plain slot
//! for a retry, each on the shared budget in Redis or, while Redis is down, on this instance's share.

use std::time::Duration;

use asf_core::throttle::{Decision, ReserveRequest};

use crate::redis_link::RedisLink;
use crate::throttle::Throttle;

/// Pauses every lane (every instance, through Redis) for `duration`.
pub async fn pause_budget(throttle: &Throttle, redis: &RedisLink, duration: Duration) {
    if let Some(local) = throttle.fallback() {
        local.pause(duration);
        return;
    }
    let paused = match redis.connection().await {
        Ok(mut conn) => tokio::time::timeout(redis.timeout, throttle.global.pause(&mut conn, duration)).await,
        Err(_) => {
            tracing::warn!("cannot pause the shared budget: redis unavailable");
            return;
        }
    };
    match paused {
        Ok(Ok(until)) => tracing::warn!(
            pause_secs = duration.as_secs(),
            until_ms = until,
            "Ajax pushed back: budget paused"
        ),
        Ok(Err(e)) => tracing::warn!(error = %e, "pausing the budget failed"),
        Err(_) => tracing::warn!("pausing the budget timed out"),
    }
}

/// Reserves a slot with no tenant and no precondition (a retry of an already admitted request).
pub async fn reserve_plain(throttle: &Throttle, redis: &RedisLink, request: ReserveRequest) -> Option<Decision> {
    if let Some(local) = throttle.fallback() {
        return Some(local.reserve(&request));
    }
    let mut conn = redis.connection().await.ok()?;
    match tokio::time::timeout(redis.timeout, throttle.global.reserve(&mut conn, &request)).await {
        Ok(Ok(decision)) => {
            throttle.observe(&decision);
            Some(decision)
        }
        _ => None,
    }
}
