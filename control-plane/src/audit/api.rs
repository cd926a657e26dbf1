//! Reading the audit trail over HTTP: `GET /v1/admin/audit` (admins: every record, with filters)
//! and `GET /v1/audit` (a user's own logins and commands). Newest first, cursor-paginated, pages
//! bounded.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::store::StoredRow;
use crate::auth::{Admin, CurrentUser};
use crate::error::ApiError;
use crate::state::AppState;

const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 500;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/audit", get(admin_audit))
        .route("/v1/audit", get(own_audit))
}

/// Filters as given in the query string.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    user: Option<String>,
    tenant: Option<String>,
    kind: Option<String>,
    decision: Option<String>,
    status: Option<i32>,
    class: Option<String>,
    /// RFC 3339 times: `from` inclusive, `to` exclusive.
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

/// Checked filters.
struct Filters {
    user: Option<String>,
    tenant: Option<String>,
    kind: Option<String>,
    decision: Option<String>,
    status: Option<i32>,
    class: Option<String>,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    before_seq: Option<i64>,
    limit: i64,
    /// Only logins, refreshes, logouts and commands (a user's own view).
    own_view: bool,
}

fn time_ms(name: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.timestamp_millis())
                .map_err(|_| {
                    ApiError::BadRequest(format!("{name} must be an RFC 3339 time, e.g. 2026-12-04T10:00:00Z"))
                })
        })
        .transpose()
}

impl AuditQuery {
    fn check(self, own_view: bool) -> Result<Filters, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ApiError::BadRequest(format!("limit must be between 1 and {MAX_PAGE}")));
        }
        if let Some(kind) = &self.kind {
            kind.parse::<asf_core::audit::Kind>().map_err(ApiError::BadRequest)?;
        }
        if self.status.is_some_and(|s| !(100..=599).contains(&s)) {
            return Err(ApiError::BadRequest("status must be an HTTP status code".into()));
        }
        let before_seq = self
            .cursor
            .as_deref()
            .map(|c| c.parse::<i64>().ok().filter(|seq| *seq > 0))
            .map(|seq| seq.ok_or_else(|| ApiError::BadRequest("cursor is not one this API returned".into())))
            .transpose()?;
        Ok(Filters {
            from_ms: time_ms("from", self.from.as_deref())?,
            to_ms: time_ms("to", self.to.as_deref())?,
            user: self.user,
            tenant: self.tenant,
            kind: self.kind,
            decision: self.decision,
            status: self.status,
            class: self.class,
            before_seq,
            limit,
            own_view,
        })
    }
}

fn parse_query(query: Result<Query<AuditQuery>, QueryRejection>) -> Result<AuditQuery, ApiError> {
    query.map(|Query(q)| q).map_err(|e| ApiError::BadRequest(e.body_text()))
}

async fn admin_audit(
    State(state): State<AppState>,
    _admin: Admin,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let filters = parse_query(query)?.check(false)?;
    page(&state, filters).await
}

async fn own_audit(
    State(state): State<AppState>,
    current: CurrentUser,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let mut query = parse_query(query)?;
    if query.user.is_some() || query.tenant.is_some() {
        return Err(ApiError::BadRequest(
            "user and tenant filters are for administrators".into(),
        ));
    }
    query.user = Some(current.user.id.to_string());
    page(&state, query.check(true)?).await
}

async fn page(state: &AppState, f: Filters) -> Result<Json<Value>, ApiError> {
    let rows: Vec<StoredRow> = sqlx::query_as(concat!(
        "select ",
        audit_columns!(),
        " from audit_log where ($1::text is null or user_id = $1) and ($2::text is null or tenant_id = $2) \
         and ($3::text is null or kind = $3) and ($4::text is null or decision = $4) \
         and ($5::int is null or status = $5) and ($6::text is null or route_class = $6) \
         and ($7::bigint is null or at_ms >= $7) and ($8::bigint is null or at_ms < $8) \
         and ($9::bigint is null or seq < $9) \
         and (not $10 or kind in ('login', 'refresh', 'logout', 'lockout') or route_class in ('command', 'panic')) \
         order by seq desc limit $11"
    ))
    .bind(f.user)
    .bind(f.tenant)
    .bind(f.kind)
    .bind(f.decision)
    .bind(f.status)
    .bind(f.class)
    .bind(f.from_ms)
    .bind(f.to_ms)
    .bind(f.before_seq)
    .bind(f.own_view)
    .bind(f.limit + 1)
    .fetch_all(&state.db)
    .await?;
    let more = rows.len() as i64 > f.limit;
    let items: Vec<Value> = rows
        .iter()
        .take(usize::try_from(f.limit).unwrap_or(0))
        .map(item)
        .collect();
    let next_cursor = if more {
        rows.get(usize::try_from(f.limit - 1).unwrap_or(0))
            .map(|r| r.seq.to_string())
    } else {
        None
    };
    Ok(Json(json!({ "items": items, "next_cursor": next_cursor })))
}

fn item(row: &StoredRow) -> Value {
    let time = DateTime::<Utc>::from_timestamp_millis(row.at_ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default();
    json!({
        "request_id": row.record_id,
        "time": time,
        "kind": row.kind,
        "user_id": row.user_id,
        "tenant_id": row.tenant_id,
        "client_ip": row.client_ip,
        "method": row.method,
        "route": row.route,
        "path": row.path,
        "class": row.route_class,
        "decision": row.decision,
        "status": row.status,
        "upstream_status": row.upstream_status,
        "queue_wait_ms": row.queue_wait_ms,
        "latency_ms": row.latency_ms,
        "detail": row.detail.as_deref().and_then(|d| serde_json::from_str::<Value>(d).ok()),
    })
}
