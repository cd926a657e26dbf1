//! The admin API under `/v1/admin/` (admins only: 401 without a valid token, 403 for others) and
//! the user's own `/v1/me`. Suspension and tenant moves take effect at every proxy at once through
//! the user's "not before" time in Redis.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::accounts;
use crate::audit::AuditNote;
use crate::auth::{Admin, CurrentUser};
use crate::error::ApiError;
use crate::routes::body;
use crate::state::AppState;

const MAX_PAGE_SIZE: i64 = 100;
/// How long a user's "not before" time is kept: past it, every token it refuses has expired anyway.
const NOT_BEFORE_TTL_SECS: i64 = 31 * 24 * 3600;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/me", get(me))
        .route("/v1/admin/users", get(list_users))
        .route("/v1/admin/users/{id}", get(get_user))
        .route("/v1/admin/users/{id}/suspend", post(suspend))
        .route("/v1/admin/users/{id}/unsuspend", post(unsuspend))
        .route("/v1/admin/users/{id}/tenant", post(move_user))
        .route("/v1/admin/tenants", post(create_tenant))
        .route("/v1/admin/throttle", get(crate::throttle_view::throttle))
}

async fn me(State(state): State<AppState>, current: CurrentUser) -> Result<impl IntoResponse, ApiError> {
    let mut conn = state.db.acquire().await?;
    let user = accounts::view(&mut conn, current.user.id)
        .await?
        .ok_or(ApiError::Unauthorized("Unknown user"))?;
    let tenant = accounts::tenant(&mut conn, user.tenant_id).await?;
    Ok(Json(json!({ "user": user, "tenant": tenant })))
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    q: String,
    page: Option<i64>,
    per_page: Option<i64>,
}

async fn list_users(
    State(state): State<AppState>,
    _admin: Admin,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let per_page = query.per_page.unwrap_or(20).clamp(1, MAX_PAGE_SIZE);
    let page = query.page.unwrap_or(1).max(1);
    let mut conn = state.db.acquire().await?;
    let (items, total) = accounts::search(&mut conn, &query.q, per_page, (page - 1).saturating_mul(per_page)).await?;
    Ok(Json(
        json!({ "items": items, "page": page, "per_page": per_page, "total": total }),
    ))
}

fn user_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound("No such user"))
}

async fn get_user(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let mut conn = state.db.acquire().await?;
    let user = accounts::view(&mut conn, user_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound("No such user"))?;
    let tenant = accounts::tenant(&mut conn, user.tenant_id).await?;
    Ok(Json(json!({ "user": user, "tenant": tenant })))
}

async fn suspend(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = user_id(&id)?;
    if id == admin.0.user.id {
        return Err(ApiError::Unprocessable("Admins cannot suspend themselves".into()));
    }
    let mut conn = state.db.acquire().await?;
    let before = accounts::view(&mut conn, id)
        .await?
        .ok_or(ApiError::NotFound("No such user"))?;
    // Redis first: if the database write then fails, the user is merely logged out, never left
    // able to act while shown as suspended.
    state
        .sessions
        .set_user_not_before(&id.to_string(), Utc::now().timestamp() + 1, NOT_BEFORE_TTL_SECS)
        .await?;
    let user = accounts::set_status(&mut conn, id, "suspended")
        .await?
        .ok_or(ApiError::NotFound("No such user"))?;
    tracing::info!(admin = %admin.0.user.id, user = %id, "user suspended");
    Ok(AuditNote::admin_change(&admin, "suspend_user", id, &before, &user).attach(Json(user)))
}

async fn unsuspend(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = user_id(&id)?;
    let mut conn = state.db.acquire().await?;
    let before = accounts::view(&mut conn, id)
        .await?
        .ok_or(ApiError::NotFound("No such user"))?;
    let user = accounts::set_status(&mut conn, id, "active")
        .await?
        .ok_or(ApiError::NotFound("No such user"))?;
    tracing::info!(admin = %admin.0.user.id, user = %id, "user unsuspended");
    Ok(AuditNote::admin_change(&admin, "unsuspend_user", id, &before, &user).attach(Json(user)))
}

#[derive(Deserialize)]
struct MoveRequest {
    tenant_id: Uuid,
}

async fn move_user(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    parsed: Result<Json<MoveRequest>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let id = user_id(&id)?;
    let request = body(parsed)?;
    let mut tx = state.db.begin().await?;
    let before = accounts::view(&mut tx, id)
        .await?
        .ok_or(ApiError::NotFound("No such user"))?;
    accounts::tenant(&mut tx, request.tenant_id)
        .await?
        .ok_or(ApiError::NotFound("No such tenant"))?;
    let user = accounts::move_to_tenant(&mut tx, id, request.tenant_id)
        .await?
        .ok_or(ApiError::NotFound("No such user"))?;
    // Tokens carry the tenant: the user's current ones are refused, and the next refresh carries the new one.
    state
        .sessions
        .set_user_not_before(&id.to_string(), Utc::now().timestamp(), NOT_BEFORE_TTL_SECS)
        .await?;
    tx.commit().await?;
    tracing::info!(admin = %admin.0.user.id, user = %id, tenant = %request.tenant_id, "user moved");
    Ok(AuditNote::admin_change(&admin, "move_user", id, &before, &user).attach(Json(user)))
}

#[derive(Deserialize)]
struct TenantRequest {
    name: String,
}

async fn create_tenant(
    State(state): State<AppState>,
    admin: Admin,
    parsed: Result<Json<TenantRequest>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let request = body(parsed)?;
    let name = request.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(ApiError::Unprocessable("name must be 1 to 200 characters".into()));
    }
    let mut conn = state.db.acquire().await?;
    let tenant = accounts::create_organisation(&mut conn, name).await?;
    tracing::info!(admin = %admin.0.user.id, tenant = %tenant.id, "organisation tenant created");
    let note = AuditNote::admin_change(&admin, "create_tenant", tenant.id, Option::<()>::None, &tenant);
    Ok(note.attach((StatusCode::CREATED, Json(tenant))))
}
