//! Voucher endpoints: admins generate (`POST /v1/admin/vouchers`), list and search
//! (`GET /v1/admin/vouchers`) and revoke (`POST /v1/admin/vouchers/{id}/revoke`); users redeem
//! (`POST /v1/vouchers/redeem`).

use std::net::SocketAddr;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::issue::{self, BatchRequest, ListQuery};
use super::redeem;
use crate::audit::AuditNote;
use crate::auth::{Admin, CurrentUser};
use crate::error::ApiError;
use crate::routes::body;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/vouchers", post(generate).get(list))
        .route("/v1/admin/vouchers/{id}/revoke", post(revoke))
        .route("/v1/vouchers/redeem", post(redeem_code))
}

async fn generate(
    State(state): State<AppState>,
    admin: Admin,
    parsed: Result<Json<BatchRequest>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let request = body(parsed)?;
    let batch = issue::generate(&state.db, &request, Some(admin.0.user.id)).await?;
    let note = AuditNote::admin_change(
        &admin,
        "generate_vouchers",
        batch.batch_id,
        Option::<()>::None,
        json!({"count": request.count, "plan": request.plan, "duration_days": request.duration_days,
               "redeem_by": request.redeem_by, "max_redemptions": request.max_redemptions.unwrap_or(1)}),
    );
    Ok(note.attach((StatusCode::CREATED, Json(batch))))
}

async fn list(
    State(state): State<AppState>,
    _admin: Admin,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(Json(json!({ "vouchers": issue::list(&state.db, &query).await? })))
}

async fn revoke(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: Uuid = id.parse().map_err(|_| ApiError::NotFound("No such voucher"))?;
    let voucher = issue::revoke(&state.db, id)
        .await?
        .ok_or(ApiError::NotFound("No such voucher"))?;
    let note = AuditNote::admin_change(&admin, "revoke_voucher", id, Option::<()>::None, &voucher);
    Ok(note.attach(Json(voucher)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedeemRequest {
    code: String,
}

async fn redeem_code(
    State(state): State<AppState>,
    current: CurrentUser,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    parsed: Result<Json<RedeemRequest>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let request = body(parsed)?;
    let ip = crate::routes::client_ip(&state, peer, &headers);
    let note = AuditNote::by(current.user.id, current.user.tenant_id);
    Ok(match redeem::redeem(&state, &current.user, &request.code, ip).await {
        Ok(redeemed) => {
            let detail = json!({"plan": redeemed.plan, "ends_at": redeemed.ends_at});
            note.with_detail(detail).attach(Json(redeemed))
        }
        Err(e) => note.attach(e),
    })
}
