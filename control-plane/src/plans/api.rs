//! `GET /v1/admin/plans` and `PUT /v1/admin/plans/{name}` (classes, rate, Stripe prices): a change
//! is published at once to every tenant on that plan.

use asf_core::plans::GATED_CLASSES;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::catalogue;
use crate::audit::AuditNote;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::routes::body;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/plans", get(list))
        .route("/v1/admin/plans/{name}", axum::routing::put(update))
}

async fn list(State(state): State<AppState>, _admin: Admin) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(json!({ "plans": catalogue::load_all(&state.db).await? })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanUpdate {
    classes: Vec<String>,
    rate_per_minute: i32,
    #[serde(default)]
    stripe_price_ids: Vec<String>,
}

async fn update(
    State(state): State<AppState>,
    admin: Admin,
    Path(name): Path<String>,
    parsed: Result<Json<PlanUpdate>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let request = body(parsed)?;
    if let Some(bad) = request.classes.iter().find(|c| !GATED_CLASSES.contains(&c.as_str())) {
        return Err(ApiError::Unprocessable(format!(
            "unknown route class {bad:?}; classes are {}",
            GATED_CLASSES.join(", ")
        )));
    }
    if !(1..=1_000_000).contains(&request.rate_per_minute) {
        return Err(ApiError::Unprocessable(
            "rate_per_minute must be between 1 and 1000000".into(),
        ));
    }
    let plans = catalogue::load_all(&state.db).await?;
    let before = plans
        .iter()
        .find(|p| p.name == name)
        .cloned()
        .ok_or(ApiError::NotFound("No such plan"))?;
    let after = catalogue::update(
        &state.db,
        &name,
        &request.classes,
        request.rate_per_minute,
        &request.stripe_price_ids,
    )
    .await?
    .ok_or(ApiError::NotFound("No such plan"))?;
    state.plans.republish(Some(&name)).await?;
    Ok(AuditNote::admin_change(&admin, "update_plan", &name, &before, &after).attach(Json(after)))
}
