//! The `/v1` API: customers, Checkout Sessions, subscriptions, billing portal sessions and
//! invoices. Every call needs `Authorization: Bearer sk_test_...`; bodies are form-encoded.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::HeaderValue;
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::app::App;
use crate::billing;
use crate::clock::unix_now;
use crate::error::ApiError;
use crate::form;
use crate::objects::{self, SessionSpec, new_id};
use crate::store::{Kind, Pending};

type Reply = Result<Json<Value>, ApiError>;

/// The `/v1` routes, behind the API key check.
pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/customers", post(create_customer))
        .route("/v1/customers/{id}", get(get_customer))
        .route("/v1/checkout/sessions", post(create_session))
        .route("/v1/checkout/sessions/{id}", get(get_session))
        .route("/v1/subscriptions", get(list_subscriptions))
        .route(
            "/v1/subscriptions/{id}",
            get(get_subscription)
                .post(update_subscription)
                .delete(cancel_subscription),
        )
        .route("/v1/billing_portal/sessions", post(create_portal_session))
        .route("/v1/invoices", get(list_invoices))
        .route("/v1/invoices/{id}", get(get_invoice))
        .route_layer(middleware::from_fn(authenticate))
}

/// 401 unless the caller presents a test-mode secret key; every answer carries a `Request-Id`.
async fn authenticate(request: Request, next: Next) -> Response {
    let key = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let mut response = match key {
        Some(key) if key.starts_with("sk_test_") && key.len() > 8 => next.run(request).await,
        Some(key) => {
            // Header values are visible ASCII, so byte offsets are character offsets.
            let shown = format!(
                "{}****{}",
                key.get(..8).unwrap_or(key),
                key.get(key.len().saturating_sub(4)..).unwrap_or("")
            );
            ApiError::Unauthorized(format!("Invalid API Key provided: {shown}")).into_response()
        }
        None => ApiError::Unauthorized(
            "You did not provide an API key. You need to provide your API key in the Authorization header, using \
             Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
                .into(),
        )
        .into_response(),
    };
    if let Ok(id) = HeaderValue::from_str(&new_id("req_")) {
        response.headers_mut().insert("request-id", id);
    }
    response
}

fn form_of(body: &[u8]) -> Result<Value, ApiError> {
    Ok(form::parse(&String::from_utf8_lossy(body))?)
}

fn text<'a>(form: &'a Value, key: &str) -> Option<&'a str> {
    form.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

async fn create_customer(State(app): State<Arc<App>>, body: Bytes) -> Reply {
    let form = form_of(&body)?;
    let id = new_id("cus_");
    let customer = objects::customer(
        &id,
        text(&form, "email"),
        text(&form, "name"),
        objects::metadata(&form),
        unix_now(),
    );
    app.store().insert(Kind::Customer, customer.clone());
    Ok(Json(customer))
}

async fn get_customer(State(app): State<Arc<App>>, Path(id): Path<String>) -> Reply {
    Ok(Json(app.store().get(Kind::Customer, &id)?.clone()))
}

/// Subscription mode with one line item of a configured price; 400 otherwise.
async fn create_session(State(app): State<Arc<App>>, body: Bytes) -> Reply {
    let form = form_of(&body)?;
    match text(&form, "mode") {
        Some("subscription") => {}
        Some(mode) => {
            return Err(ApiError::invalid(
                format!("stripe-fake supports only mode=subscription, not {mode}"),
                "mode",
            ));
        }
        None => return Err(ApiError::invalid("Missing required param: mode.", "mode")),
    }
    let lines = form
        .get("line_items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let [line] = lines.as_slice() else {
        return Err(ApiError::invalid(
            "stripe-fake supports exactly one line item.",
            "line_items",
        ));
    };
    let price_id = text(line, "price")
        .ok_or_else(|| ApiError::invalid("Missing required param: line_items[0][price].", "line_items[0][price]"))?;
    let price = app
        .config
        .price(price_id)
        .ok_or_else(|| ApiError::missing_param("price", price_id, "line_items[0][price]"))?;
    let quantity = match text(line, "quantity") {
        Some(q) => q
            .parse()
            .map_err(|_| ApiError::invalid("Invalid integer", "line_items[0][quantity]"))?,
        None => 1,
    };
    let customer = text(&form, "customer");
    let mut store = app.store();
    if let Some(customer) = customer {
        store
            .get(Kind::Customer, customer)
            .map_err(|_| ApiError::missing_param("customer", customer, "customer"))?;
    }
    let id = new_id("cs_test_");
    let spec = SessionSpec {
        customer,
        customer_email: text(&form, "customer_email"),
        price,
        quantity,
        form: &form,
    };
    let session = objects::checkout_session(&id, &spec, &format!("{}/checkout/{id}", app.base_url), unix_now());
    let subscription_metadata = form
        .pointer("/subscription_data/metadata")
        .cloned()
        .unwrap_or_else(|| json!({}));
    store.set_pending(
        &id,
        Pending {
            price: price.id.clone(),
            quantity,
            subscription_metadata,
        },
    );
    store.insert(Kind::Session, session.clone());
    Ok(Json(session))
}

async fn get_session(State(app): State<Arc<App>>, Path(id): Path<String>) -> Reply {
    Ok(Json(app.store().get(Kind::Session, &id)?.clone()))
}

/// `?customer=` and `?status=` (default: all but canceled; `all` for every one).
async fn list_subscriptions(State(app): State<Arc<App>>, RawQuery(query): RawQuery) -> Reply {
    let query = form_of(query.unwrap_or_default().as_bytes())?;
    let customer = text(&query, "customer");
    let status = text(&query, "status");
    let data = app.store().list(Kind::Subscription, |sub| {
        let status_ok = match status {
            None => sub["status"] != "canceled",
            Some("all") => true,
            Some(status) => sub["status"] == status,
        };
        status_ok && customer.is_none_or(|c| sub["customer"] == c)
    });
    Ok(Json(objects::list("/v1/subscriptions", data)))
}

async fn get_subscription(State(app): State<Arc<App>>, Path(id): Path<String>) -> Reply {
    Ok(Json(app.store().get(Kind::Subscription, &id)?.clone()))
}

async fn update_subscription(State(app): State<Arc<App>>, Path(id): Path<String>, body: Bytes) -> Reply {
    let form = form_of(&body)?;
    let now = unix_now();
    let (sub, events) = billing::update_subscription(&mut app.store(), &app.config, &id, &form, now)?;
    app.emit(events, now);
    Ok(Json(sub))
}

async fn cancel_subscription(State(app): State<Arc<App>>, Path(id): Path<String>) -> Reply {
    let now = unix_now();
    let (sub, events) = billing::cancel_subscription(&mut app.store(), &id, now)?;
    app.emit(events, now);
    Ok(Json(sub))
}

async fn create_portal_session(State(app): State<Arc<App>>, body: Bytes) -> Reply {
    let form = form_of(&body)?;
    let customer =
        text(&form, "customer").ok_or_else(|| ApiError::invalid("Missing required param: customer.", "customer"))?;
    let mut store = app.store();
    store
        .get(Kind::Customer, customer)
        .map_err(|_| ApiError::missing_param("customer", customer, "customer"))?;
    let id = new_id("bps_");
    let url = format!("{}/portal/{id}", app.base_url);
    let session = objects::portal_session(&id, customer, text(&form, "return_url"), &url, unix_now());
    store.insert(Kind::PortalSession, session.clone());
    Ok(Json(session))
}

/// `?customer=` and `?subscription=` filters.
async fn list_invoices(State(app): State<Arc<App>>, RawQuery(query): RawQuery) -> Reply {
    let query = form_of(query.unwrap_or_default().as_bytes())?;
    let customer = text(&query, "customer");
    let subscription = text(&query, "subscription");
    let data = app.store().list(Kind::Invoice, |invoice| {
        customer.is_none_or(|c| invoice["customer"] == c)
            && subscription
                .is_none_or(|s| invoice.pointer("/parent/subscription_details/subscription") == Some(&json!(s)))
    });
    Ok(Json(objects::list("/v1/invoices", data)))
}

async fn get_invoice(State(app): State<Arc<App>>, Path(id): Path<String>) -> Reply {
    Ok(Json(app.store().get(Kind::Invoice, &id)?.clone()))
}
