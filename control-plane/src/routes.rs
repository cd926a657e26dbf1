//! HTTP surface of the control plane: the Ajax-shaped account calls the proxy forwards
//! (`/api/login`, `/api/refresh`, `/api/logout`), the JWKS, and a health check. Handlers are thin:
//! they parse, call `identity`, and shape the answer.

use asf_core::ajax_wire::{LoginRequest, RefreshRequest};
use asf_core::jwk::JwkSet;
use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::audit::AuditNote;
use crate::auth;
use crate::error::ApiError;
use crate::identity;
use crate::signing;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/login", post(login))
        .route("/api/refresh", post(refresh))
        .route("/api/logout", post(logout))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/healthz", get(|| async { "ok" }))
        .merge(crate::admin::router())
        .merge(crate::audit::api::router())
        .merge(crate::plans::api::router())
        .merge(crate::vouchers::api::router())
        .merge(crate::notifications::router())
        .merge(crate::billing::api::router())
}

/// Turns axum's JSON rejections into the app's own error shape.
pub fn body<T>(parsed: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    match parsed {
        Ok(Json(value)) => Ok(value),
        Err(JsonRejection::JsonDataError(e)) => Err(ApiError::Unprocessable(e.body_text())),
        Err(e) => Err(ApiError::BadRequest(e.body_text())),
    }
}

/// The client's IP: the peer's, or what trusted proxies report in `X-Forwarded-For`.
pub fn client_ip(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> std::net::IpAddr {
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok());
    state.settings.trusted_proxies.client_ip(peer.ip(), forwarded)
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    parsed: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let request = body(parsed)?;
    let ip = client_ip(&state, peer, &headers);
    let attempted = json!({ "login": request.login.trim() });
    Ok(match identity::login(&state, request, ip).await {
        Ok(issued) => AuditNote::by(issued.user_id, issued.tenant_id)
            .with_detail(attempted)
            .attach(Json(issued.pair)),
        Err(e) => AuditNote::default().with_detail(attempted).attach(e),
    })
}

async fn refresh(
    State(state): State<AppState>,
    parsed: Result<Json<RefreshRequest>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let request = body(parsed)?;
    let issued = identity::refresh(&state, &request.refresh_token, &request.user_id).await?;
    Ok(AuditNote::by(issued.user_id, issued.tenant_id).attach(Json(issued.pair)))
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<impl IntoResponse, ApiError> {
    let token = auth::token_from(&headers).ok_or(ApiError::Unauthorized("Session token is missing"))?;
    let claims = auth::verify(&state, token, true).await?;
    identity::logout(&state, &claims).await?;
    Ok(AuditNote::by(&claims.sub, &claims.tid).attach(StatusCode::NO_CONTENT))
}

async fn jwks(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let keys = signing::published(&state.db).await?;
    Ok(([(header::CACHE_CONTROL, "max-age=60")], Json(JwkSet { keys })))
}
