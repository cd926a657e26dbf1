//! In-app notifications for users (payment failed, subscription ending, plan changed, voucher
//! redeemed): written with the change that causes them, read through `GET /v1/notifications`
//! (newest first, cursor-paginated, bounded pages) and marked read one by one or all at once.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::state::AppState;

const DEFAULT_PAGE: i64 = 20;
const MAX_PAGE: i64 = 100;

/// Notifies every user of a tenant. With a `dedupe_key` (e.g. the Stripe event behind it), the
/// same notification is written once however often its cause is processed.
pub async fn notify_tenant(
    conn: &mut PgConnection,
    tenant: Uuid,
    kind: &str,
    title: &str,
    body: &str,
    dedupe_key: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into notifications (id, user_id, kind, title, body, dedupe_key) \
         select gen_random_uuid(), id, $2, $3, $4, $5 from users where tenant_id = $1 \
         on conflict (user_id, dedupe_key) do nothing",
    )
    .bind(tenant)
    .bind(kind)
    .bind(title)
    .bind(body)
    .bind(dedupe_key)
    .execute(conn)
    .await?;
    Ok(())
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/notifications", get(list))
        .route("/v1/notifications/read-all", post(read_all))
        .route("/v1/notifications/{id}/read", post(read_one))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    cursor: Option<String>,
    limit: Option<i64>,
    #[serde(default)]
    unread: bool,
}

#[derive(Serialize, sqlx::FromRow)]
struct Notification {
    id: Uuid,
    kind: String,
    title: String,
    body: String,
    created_at: DateTime<Utc>,
    read_at: Option<DateTime<Utc>>,
}

async fn list(
    State(state): State<AppState>,
    current: CurrentUser,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit must be between 1 and {MAX_PAGE}")));
    }
    let cursor = query
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<Uuid>()
                .map_err(|_| ApiError::BadRequest("cursor is not one this API returned".into()))
        })
        .transpose()?;
    // Ids are UUIDv7 (time-ordered) or random; order by time, then id, and page from the cursor's row.
    let rows: Vec<Notification> = sqlx::query_as(
        "select id, kind, title, body, created_at, read_at from notifications n where user_id = $1 \
         and (not $2 or read_at is null) \
         and ($3::uuid is null or (created_at, id) < (select created_at, id from notifications where id = $3 and user_id = $1)) \
         order by created_at desc, id desc limit $4",
    )
    .bind(current.user.id)
    .bind(query.unread)
    .bind(cursor)
    .bind(limit + 1)
    .fetch_all(&state.db)
    .await?;
    let more = rows.len() as i64 > limit;
    let items: Vec<&Notification> = rows.iter().take(usize::try_from(limit).unwrap_or(0)).collect();
    let next_cursor = if more {
        items.last().map(|n| n.id.to_string())
    } else {
        None
    };
    Ok(Json(json!({ "items": items, "next_cursor": next_cursor })))
}

async fn read_one(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: Uuid = id.parse().map_err(|_| ApiError::NotFound("No such notification"))?;
    let updated =
        sqlx::query("update notifications set read_at = coalesce(read_at, now()) where id = $1 and user_id = $2")
            .bind(id)
            .bind(current.user.id)
            .execute(&state.db)
            .await?
            .rows_affected();
    if updated == 0 {
        return Err(ApiError::NotFound("No such notification"));
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn read_all(State(state): State<AppState>, current: CurrentUser) -> Result<impl IntoResponse, ApiError> {
    let marked = sqlx::query("update notifications set read_at = now() where user_id = $1 and read_at is null")
        .bind(current.user.id)
        .execute(&state.db)
        .await?
        .rows_affected();
    Ok(Json(json!({ "marked": marked })))
}
