//! The `/_sim` endpoints tests and benchmarks steer the simulator with (no API key needed):
//! stats and reset, fault knobs, and expiring a user's tokens on demand.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use crate::clock::Now;
use crate::faults::{Faults, FaultsPatch};
use crate::reply::{self, AjaxError, parse_json};
use crate::state::Sim;

/// The `/_sim` routes.
pub fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/_sim/health", get(health))
        .route("/_sim/stats", get(stats))
        .route("/_sim/reset", post(reset))
        .route("/_sim/faults", get(faults).post(set_faults).delete(clear_faults))
        .route("/_sim/sessions/expire", post(expire_sessions))
        .route("/_sim/sessions/expire-refresh", post(expire_refreshes))
}

async fn health() -> Response {
    reply::json(StatusCode::OK, &json!({ "status": "ok" }))
}

/// `GET /_sim/stats`.
async fn stats(State(sim): State<Arc<Sim>>) -> Response {
    let limiter = sim.limiter().view();
    let stats = sim.stats();
    reply::json_of(StatusCode::OK, &stats.view(limiter))
}

/// `POST /_sim/reset`: counters, the limiter's window and recorded requests start afresh;
/// accounts, sessions and faults stay.
async fn reset(State(sim): State<Arc<Sim>>) -> Response {
    sim.limiter().reset();
    *sim.stats() = Default::default();
    reply::empty(StatusCode::NO_CONTENT)
}

/// `GET /_sim/faults`.
async fn faults(State(sim): State<Arc<Sim>>) -> Response {
    let current = sim.faults().clone();
    reply::json_of(StatusCode::OK, &current)
}

/// `POST /_sim/faults`: sets the knobs the body names; answers the knobs as they now stand.
async fn set_faults(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let patch: FaultsPatch = match parse_json(&body) {
        Ok(patch) => patch,
        Err(error) => return error.into_response(),
    };
    let mut faults = sim.faults();
    if let Err(message) = faults.apply(patch) {
        return AjaxError::validation("Faults", "error_rate", "invalid", message).into_response();
    }
    let current = faults.clone();
    drop(faults);
    tracing::info!(?current, "faults set");
    reply::json_of(StatusCode::OK, &current)
}

/// `DELETE /_sim/faults`: every knob back to none.
async fn clear_faults(State(sim): State<Arc<Sim>>) -> Response {
    *sim.faults() = Faults::default();
    reply::json_of(StatusCode::OK, &Faults::default())
}

#[derive(Deserialize)]
struct UserBody {
    #[serde(rename = "userId")]
    user_id: String,
}

/// `POST /_sim/sessions/expire` `{"userId"}`: the user's session tokens die now.
async fn expire_sessions(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    expire(&sim, &body, false)
}

/// `POST /_sim/sessions/expire-refresh` `{"userId"}`: session and refresh tokens die now.
async fn expire_refreshes(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    expire(&sim, &body, true)
}

fn expire(sim: &Sim, body: &[u8], refresh_too: bool) -> Response {
    let user_id = match parse_json::<UserBody>(body) {
        Ok(body) => body.user_id,
        Err(error) => return error.into_response(),
    };
    if sim.world().account(&user_id).is_none() {
        return AjaxError::not_found().into_response();
    }
    let now = Now::system().mono;
    let mut sessions = sim.sessions();
    let expired = if refresh_too {
        json!({
            "userId": user_id,
            "refreshTokensExpired": sessions.expire_refreshes(&user_id, now),
        })
    } else {
        json!({
            "userId": user_id,
            "sessionsExpired": sessions.expire_sessions(&user_id, now),
        })
    };
    drop(sessions);
    tracing::info!(%user_id, refresh_too, "tokens expired");
    reply::json(StatusCode::OK, &expired)
}
