//! Recording control-plane requests: a middleware writes one audit record per request (login,
//! refresh, logout, admin action, ...), with what the handler adds through an [`AuditNote`] in the
//! response's extensions (who the user was, an admin change's before and after).

use std::net::SocketAddr;
use std::time::Instant;

use asf_core::audit::{AuditRecord, Kind};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::state::AppState;

/// Paths not worth a record: polled by machines, change nothing.
const UNRECORDED: &[&str] = &["/healthz", "/.well-known/jwks.json"];

/// What a handler knows that the middleware cannot see.
#[derive(Debug, Clone, Default)]
pub struct AuditNote {
    pub kind: Option<Kind>,
    pub user_id: Option<String>,
    pub tenant_id: Option<String>,
    pub decision: Option<&'static str>,
    pub detail: Option<Value>,
}

impl AuditNote {
    /// The acting user.
    pub fn by(user_id: impl ToString, tenant_id: impl ToString) -> Self {
        Self {
            user_id: Some(user_id.to_string()),
            tenant_id: Some(tenant_id.to_string()),
            ..Self::default()
        }
    }

    /// An admin's change to `target`, with the state before and after.
    pub fn admin_change(
        admin: &crate::auth::Admin,
        action: &str,
        target: impl ToString,
        before: impl serde::Serialize,
        after: impl serde::Serialize,
    ) -> Self {
        Self {
            kind: Some(Kind::Admin),
            detail: Some(serde_json::json!({
                "action": action,
                "target": target.to_string(),
                "before": before,
                "after": after,
            })),
            ..Self::by(admin.0.user.id, admin.0.user.tenant_id)
        }
    }

    pub fn with_detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }

    /// Attaches the note to a response (success or error alike).
    pub fn attach(self, response: impl IntoResponse) -> Response {
        let mut response = response.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// The middleware: times the request, runs it, and records the outcome.
pub async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if UNRECORDED.contains(&path.as_str()) {
        return next.run(request).await;
    }
    let started = Instant::now();
    let mut record = AuditRecord::new(Kind::Request, "", 0);
    record.method = Some(request.method().as_str().to_owned());
    record.route = request.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
        let forwarded = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok());
        record.client_ip = Some(
            state
                .settings
                .trusted_proxies
                .client_ip(peer.ip(), forwarded)
                .to_string(),
        );
    }
    let response = next.run(request).await;
    let status = response.status();
    let note = response.extensions().get::<AuditNote>().cloned().unwrap_or_default();
    record.kind = note.kind.unwrap_or_else(|| kind_of(&path, status));
    record.decision = note
        .decision
        .unwrap_or_else(|| decision_of(record.kind, status))
        .to_owned();
    record.status = i32::from(status.as_u16());
    record.user_id = note.user_id;
    record.tenant_id = note.tenant_id;
    record.detail = note.detail.map(|d| d.to_string());
    record.path = Some(path);
    record.latency_ms = Some(i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX));
    state.audit.record(record);
    response
}

fn kind_of(path: &str, status: StatusCode) -> Kind {
    match path {
        "/api/login" if status == StatusCode::TOO_MANY_REQUESTS => Kind::Lockout,
        "/api/login" => Kind::Login,
        "/api/refresh" => Kind::Refresh,
        "/api/logout" => Kind::Logout,
        p if p.starts_with("/v1/admin/") => Kind::Admin,
        p if p.starts_with("/v1/vouchers") => Kind::Voucher,
        p if p.starts_with("/v1/billing") => Kind::Billing,
        _ => Kind::Request,
    }
}

fn decision_of(kind: Kind, status: StatusCode) -> &'static str {
    match status.as_u16() {
        _ if kind == Kind::Lockout => "locked_out",
        200..=399 => "ok",
        401 => "refused_auth",
        403 => "refused_authz",
        404 => "not_found",
        429 => "throttled",
        400..=499 => "refused_input",
        _ => "error",
    }
}
