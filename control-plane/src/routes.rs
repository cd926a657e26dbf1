//! HTTP surface of the control plane: the Ajax-shaped account calls the proxy forwards
//! (`/api/login`, `/api/refresh`, `/api/logout`), the JWKS, and a health check. Handlers are thin:
//! they parse, call `identity`, and shape the answer.

use asf_core::ajax_wire::{LoginRequest, RefreshRequest};
use asf_core::jwk::JwkSet;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};

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
}

/// Turns axum's JSON rejections into the app's own error shape.
fn body<T>(parsed: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    match parsed {
        Ok(Json(value)) => Ok(value),
        Err(JsonRejection::JsonDataError(e)) => Err(ApiError::Unprocessable(e.body_text())),
        Err(e) => Err(ApiError::BadRequest(e.body_text())),
    }
}

async fn login(
    State(state): State<AppState>,
    parsed: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let request = body(parsed)?;
    Ok(Json(identity::login(&state, request).await?))
}

async fn refresh(
    State(state): State<AppState>,
    parsed: Result<Json<RefreshRequest>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let request = body(parsed)?;
    Ok(Json(
        identity::refresh(&state, &request.refresh_token, &request.user_id).await?,
    ))
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<impl IntoResponse, ApiError> {
    let token = bearer_or_session_token(&headers).ok_or(ApiError::Unauthorized("Session token is missing"))?;
    let claims = identity::verify_ignoring_expiry(&state, token).await?;
    identity::logout(&state, &claims).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn jwks(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let keys = signing::published(&state.db).await?;
    Ok(([(header::CACHE_CONTROL, "max-age=60")], Json(JwkSet { keys })))
}

fn bearer_or_session_token(headers: &HeaderMap) -> Option<&str> {
    let session = headers.get("x-session-token").and_then(|v| v.to_str().ok());
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    session.or(bearer).map(str::trim).filter(|t| !t.is_empty())
}
