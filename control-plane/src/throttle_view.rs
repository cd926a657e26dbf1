//! `GET /v1/admin/throttle`: the global budget as operators see it — the configured rate, each
//! lane's next free slot and queue, utilisation, a pause in force, and the busiest tenants of the
//! last two minutes.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use chrono::Utc;
use serde_json::json;

use crate::auth::Admin;
use crate::error::ApiError;
use crate::state::AppState;

const TOP_TENANTS: usize = 10;

pub async fn throttle(State(state): State<AppState>, _admin: Admin) -> Result<impl IntoResponse, ApiError> {
    let mut redis = state.sessions.redis.clone();
    let snapshot = state.budget.snapshot(&mut redis).await?;
    let minute = Utc::now().timestamp().div_euclid(60);
    let mut usage: HashMap<String, f64> = HashMap::new();
    for key in [
        state.sessions.keys.tenant_usage(minute),
        state.sessions.keys.tenant_usage(minute - 1),
    ] {
        let counts: Vec<(String, f64)> = redis::cmd("ZREVRANGE")
            .arg(&key)
            .arg(0)
            .arg(TOP_TENANTS * 4)
            .arg("WITHSCORES")
            .query_async(&mut redis)
            .await?;
        for (tenant, count) in counts {
            *usage.entry(tenant).or_default() += count;
        }
    }
    let mut top: Vec<(String, f64)> = usage.into_iter().collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(TOP_TENANTS);
    let lanes: Vec<_> = snapshot
        .lanes
        .iter()
        .map(|lane| {
            json!({
                "lane": lane.lane.as_str(),
                "next_free_ms": lane.next_free_ms,
                "wait_ms": lane.wait.as_millis() as u64,
                "queued": lane.queued,
                "interval_ms": lane.emission.as_millis() as u64,
            })
        })
        .collect();
    Ok(Json(json!({
        "limit": snapshot.limit,
        "window_secs": snapshot.window.as_secs_f64(),
        "granted_in_window": snapshot.granted_in_window,
        "remaining": snapshot.remaining,
        "utilisation": snapshot.utilisation,
        "paused_until_ms": snapshot.paused_until_ms,
        "ramp_until_ms": snapshot.ramp_until_ms,
        "lanes": lanes,
        "top_tenants": top.into_iter().map(|(tenant, requests)| json!({"tenant_id": tenant, "requests": requests as u64})).collect::<Vec<_>>(),
    })))
}
