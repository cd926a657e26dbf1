//! The budget heartbeat: every second this instance announces itself in Redis (so a fallback
//! divides the budget by the live instances), keeps the budget script loaded, returns from the
//! local fallback to the shared budget when Redis answers again, and writes the usage tally.
//!
//! It runs on the request path's runtime, started by the first request: as a Pingora background
//! service on a runtime of its own it cost about a tenth of the proxy's CPU under load
//! (cross-runtime wake-ups; measured in bench/RESULTS.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use asf_core::throttle::Heartbeat;

use crate::redis_link::RedisLink;
use crate::throttle::Throttle;
use crate::usage::UsageTally;

/// How often this instance announces itself and checks on Redis.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

pub struct BudgetHeartbeat {
    heartbeat: Heartbeat,
    instance_id: String,
    redis: Arc<RedisLink>,
    throttle: Arc<Throttle>,
    usage: Arc<UsageTally>,
    started: AtomicBool,
}

impl BudgetHeartbeat {
    pub fn new(
        heartbeat: Heartbeat,
        instance_id: String,
        redis: Arc<RedisLink>,
        throttle: Arc<Throttle>,
        usage: Arc<UsageTally>,
    ) -> Self {
        Self {
            heartbeat,
            instance_id,
            redis,
            throttle,
            usage,
            started: AtomicBool::new(false),
        }
    }

    /// Starts the loop on the current runtime, once.
    pub fn ensure_started(self: &Arc<Self>) {
        if self.started.swap(true, Ordering::Relaxed) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(HEARTBEAT_INTERVAL);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match this.beat().await {
                    // Statistics go last, and only while Redis answers: their failure never holds
                    // up the heartbeat or the way back from the fallback.
                    Ok(()) => this.write_usage().await,
                    Err(e) => tracing::debug!(error = %e, "budget heartbeat failed"),
                }
            }
        });
    }

    async fn beat(&self) -> Result<(), String> {
        let mut conn = self.redis.connection().await.map_err(|e| e.to_string())?;
        let timeout = self.redis.timeout;
        let live = tokio::time::timeout(timeout, self.heartbeat.heartbeat(&mut conn, &self.instance_id))
            .await
            .map_err(|_| "heartbeat timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        self.throttle.set_instances(live);
        if self.throttle.fallback().is_some() {
            tokio::time::timeout(timeout, self.throttle.global.load_script(&mut conn))
                .await
                .map_err(|_| "loading the budget script timed out".to_owned())?
                .map_err(|e| e.to_string())?;
            tokio::time::timeout(timeout, self.throttle.leave_fallback(&mut conn))
                .await
                .map_err(|_| "leaving the fallback timed out".to_owned())?
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    async fn write_usage(&self) {
        if let Ok(mut conn) = self.redis.connection().await {
            self.usage.flush(&mut conn, self.redis.timeout).await;
        }
    }
}
