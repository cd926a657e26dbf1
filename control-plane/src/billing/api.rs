//! Billing endpoints: `POST /v1/billing/checkout` (a first subscription through Checkout, or a
//! prorated plan change of the existing one, never a second subscription), `POST /v1/billing/portal`,
//! `GET /v1/billing`, the signed webhook `POST /v1/billing/webhook`, and the admins' view of the
//! event inbox `GET /v1/admin/billing/events`.

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::signature;
use super::stripe_api::StripeApi;
use super::sync;
use crate::auth::{Admin, CurrentUser};
use crate::error::ApiError;
use crate::routes::body;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/billing", get(overview))
        .route("/v1/billing/checkout", post(checkout))
        .route("/v1/billing/portal", post(portal))
        .route("/v1/billing/webhook", post(webhook))
        .route("/v1/admin/billing/events", get(events))
}

const NOT_CONFIGURED: ApiError = ApiError::Unavailable {
    message: "Billing is not configured on this gateway",
    retry_after_secs: 3600,
};

fn stripe(state: &AppState) -> Result<&StripeApi, ApiError> {
    state.stripe.as_ref().ok_or(NOT_CONFIGURED)
}

/// Who may buy for a tenant: anyone for their personal tenant; an organisation's billing is for
/// administrators (an ordinary member must not change what the organisation pays).
async fn may_manage_billing(state: &AppState, current: &CurrentUser) -> Result<(), ApiError> {
    let kind: String = sqlx::query_scalar("select kind from tenants where id = $1")
        .bind(current.user.tenant_id)
        .fetch_one(&state.db)
        .await?;
    if kind == "personal" || current.user.role == "admin" {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "An organisation's billing is managed by its administrators",
        ))
    }
}

fn stripe_failed(e: impl std::fmt::Display) -> ApiError {
    tracing::warn!(error = %e, "Stripe call failed");
    ApiError::BadGateway
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckoutRequest {
    plan: String,
}

#[derive(sqlx::FromRow)]
struct TenantBilling {
    name: String,
    stripe_customer_id: Option<String>,
    stripe_subscription_id: Option<String>,
    subscription_status: Option<String>,
}

async fn checkout(
    State(state): State<AppState>,
    current: CurrentUser,
    parsed: Result<Json<CheckoutRequest>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let request = body(parsed)?;
    let stripe = stripe(&state)?;
    may_manage_billing(&state, &current).await?;
    let prices: Option<Vec<String>> = sqlx::query_scalar("select stripe_price_ids from plans where name = $1")
        .bind(&request.plan)
        .fetch_optional(&state.db)
        .await?;
    let price = prices
        .ok_or_else(|| ApiError::Unprocessable(format!("no plan named {:?}", request.plan)))?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::Unprocessable(format!("the {} plan is not sold", request.plan)))?;
    let tenant = current.user.tenant_id;
    let mut tx = state.db.begin().await?;
    // The tenant row stays locked: two checkouts at once make one customer, never two.
    let billing: TenantBilling = sqlx::query_as(
        "select name, stripe_customer_id, stripe_subscription_id, subscription_status from tenants \
         where id = $1 for no key update",
    )
    .bind(tenant)
    .fetch_one(&mut *tx)
    .await?;
    let live = billing
        .subscription_status
        .as_deref()
        .is_some_and(|s| ["active", "trialing", "past_due"].contains(&s));
    if let (true, Some(id)) = (live, billing.stripe_subscription_id.as_deref()) {
        let subscription = stripe.subscription(id).await.map_err(stripe_failed)?;
        if subscription
            .items
            .data
            .first()
            .is_some_and(|i| i.price.id.as_str() == price)
        {
            return Err(ApiError::refused(
                StatusCode::CONFLICT,
                "already_on_plan",
                format!("You are already subscribed to the {} plan", request.plan),
            ));
        }
        let changed = stripe
            .change_price(&subscription, &price)
            .await
            .map_err(stripe_failed)?;
        tx.commit().await?;
        sync::apply(&state.db, &state.plans, &changed, Some(tenant))
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        return Ok(Json(json!({ "changed": true, "plan": request.plan })));
    }
    let customer = match billing.stripe_customer_id {
        Some(customer) => customer,
        None => {
            let email: String = sqlx::query_scalar("select email from users where id = $1")
                .bind(current.user.id)
                .fetch_one(&mut *tx)
                .await?;
            let customer = stripe
                .create_customer(&tenant.to_string(), &email, &billing.name)
                .await
                .map_err(stripe_failed)?;
            sqlx::query("update tenants set stripe_customer_id = $2, updated_at = now() where id = $1")
                .bind(tenant)
                .bind(&customer)
                .execute(&mut *tx)
                .await?;
            customer
        }
    };
    tx.commit().await?;
    let url = stripe
        .checkout(&tenant.to_string(), &customer, &price)
        .await
        .map_err(stripe_failed)?
        .ok_or_else(|| stripe_failed("Checkout Session without a URL"))?;
    Ok(Json(json!({ "url": url })))
}

async fn portal(State(state): State<AppState>, current: CurrentUser) -> Result<impl IntoResponse, ApiError> {
    let stripe = stripe(&state)?;
    may_manage_billing(&state, &current).await?;
    let customer: Option<String> = sqlx::query_scalar("select stripe_customer_id from tenants where id = $1")
        .bind(current.user.tenant_id)
        .fetch_one(&state.db)
        .await?;
    let customer = customer.ok_or_else(|| {
        ApiError::refused(
            StatusCode::CONFLICT,
            "no_billing_account",
            "There is no subscription to manage yet",
        )
    })?;
    let url = stripe.portal(&customer).await.map_err(stripe_failed)?;
    Ok(Json(json!({ "url": url })))
}

#[derive(sqlx::FromRow)]
struct Overview {
    plan: String,
    plan_source: String,
    plan_changes_at: Option<DateTime<Utc>>,
    stripe_customer_id: Option<String>,
    subscription_status: Option<String>,
    subscription_plan: Option<String>,
    current_period_end: Option<DateTime<Utc>>,
    subscription_ended_at: Option<DateTime<Utc>>,
}

async fn overview(State(state): State<AppState>, current: CurrentUser) -> Result<impl IntoResponse, ApiError> {
    may_manage_billing(&state, &current).await?;
    let tenant = current.user.tenant_id;
    let row: Overview = sqlx::query_as(
        "select plan, plan_source, plan_changes_at, stripe_customer_id, subscription_status, subscription_plan, \
         current_period_end, subscription_ended_at from tenants where id = $1",
    )
    .bind(tenant)
    .fetch_one(&state.db)
    .await?;
    let grants: Vec<(String, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "select plan, starts_at, ends_at from voucher_grants where tenant_id = $1 and ends_at > now() order by starts_at",
    )
    .bind(tenant)
    .fetch_all(&state.db)
    .await?;
    let invoices = match (&state.stripe, &row.stripe_customer_id) {
        (Some(stripe), Some(customer)) => match stripe.invoices(customer).await {
            Ok(invoices) => json!(
                invoices
                    .iter()
                    .map(|i| json!({
                        "id": i.id.as_ref().map(|id| id.to_string()),
                        "status": i.status.as_ref().map(|s| s.as_str().to_owned()),
                        "amount_due": i.amount_due,
                        "amount_paid": i.amount_paid,
                        "currency": i.currency.to_string(),
                        "created": i.created,
                        "hosted_invoice_url": i.hosted_invoice_url,
                    }))
                    .collect::<Vec<_>>()
            ),
            Err(e) => {
                tracing::warn!(error = %e, "listing invoices failed");
                Value::Null
            }
        },
        _ => json!([]),
    };
    let renews = row.subscription_ended_at.is_none() && row.subscription_status.as_deref() == Some("active");
    Ok(Json(json!({
        "plan": row.plan,
        "source": row.plan_source,
        "plan_changes_at": row.plan_changes_at,
        "subscription": row.subscription_status.as_ref().map(|status| json!({
            "status": status,
            "plan": row.subscription_plan,
            "current_period_end": row.current_period_end,
            "renews": renews,
            "ends_at": row.subscription_ended_at,
        })),
        "voucher_grants": grants.iter().map(|(plan, starts, ends)| json!({"plan": plan, "starts_at": starts, "ends_at": ends})).collect::<Vec<_>>(),
        "invoices": invoices,
    })))
}

/// Stores a verified event once and acknowledges it; the worker processes it.
async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let stripe = stripe(&state)?;
    let header = headers.get("stripe-signature").and_then(|v| v.to_str().ok());
    signature::verify(header, &body, &stripe.settings.webhook_secret, Utc::now().timestamp())
        .map_err(|e| ApiError::refused(StatusCode::BAD_REQUEST, "bad_signature", e.to_string()))?;
    let event: Value =
        serde_json::from_slice(&body).map_err(|_| ApiError::BadRequest("the event is not JSON".into()))?;
    let (Some(id), Some(kind)) = (event["id"].as_str(), event["type"].as_str()) else {
        return Err(ApiError::BadRequest("the event has no id or type".into()));
    };
    let stored =
        sqlx::query("insert into stripe_events (id, type, payload) values ($1, $2, $3) on conflict (id) do nothing")
            .bind(id)
            .bind(kind)
            .bind(&event)
            .execute(&state.db)
            .await?
            .rows_affected();
    Ok(Json(json!({ "received": true, "duplicate": stored == 0 })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    status: Option<String>,
    limit: Option<i64>,
}

#[derive(serde::Serialize, sqlx::FromRow)]
struct EventView {
    id: String,
    #[sqlx(rename = "type")]
    #[serde(rename = "type")]
    kind: String,
    status: String,
    attempts: i32,
    last_error: Option<String>,
    received_at: DateTime<Utc>,
    processed_at: Option<DateTime<Utc>>,
}

async fn events(
    State(state): State<AppState>,
    _admin: Admin,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if query
        .status
        .as_deref()
        .is_some_and(|s| !["pending", "done", "dead"].contains(&s))
    {
        return Err(ApiError::BadRequest("status must be pending, done or dead".into()));
    }
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::BadRequest("limit must be between 1 and 500".into()));
    }
    let events: Vec<EventView> = sqlx::query_as(
        "select id, type, status, attempts, last_error, received_at, processed_at from stripe_events \
         where $1::text is null or status = $1 order by received_at desc limit $2",
    )
    .bind(&query.status)
    .bind(limit)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(json!({ "events": events })))
}
