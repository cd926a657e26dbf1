//! What stands in for the customer and for time (no API key): the hosted checkout and portal
//! pages, `/_test` lifecycle triggers, and the webhook controls (event log, resend, pause).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Html;
use axum::routing::{get, post};
use axum::{Json, http::Method, http::Uri};
use serde_json::{Value, json};

use crate::app::App;
use crate::billing::{self, Outcome};
use crate::clock::unix_now;
use crate::error::ApiError;
use crate::store::{Kind, Store};

type Reply = Result<Json<Value>, ApiError>;

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/checkout/{id}", get(checkout_page))
        .route("/portal/{id}", get(portal_page))
        .route("/_test/checkout/{id}/complete", post(complete_checkout))
        .route("/_test/subscriptions/{id}/payment_failed", post(payment_failed))
        .route("/_test/subscriptions/{id}/renew", post(renew))
        .route("/_test/subscriptions/{id}/cancel_now", post(cancel_now))
        .route("/_test/events", get(events))
        .route("/_test/events/{id}/resend", post(resend))
        .route("/_test/events/deliver_reversed", post(deliver_reversed))
        .route("/_test/webhook_pause", post(pause))
        .route("/_test/webhook_resume", post(resume))
}

/// Stripe-shaped 404 for any other path.
pub async fn unknown(method: Method, uri: Uri) -> ApiError {
    ApiError::UnknownUrl {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
}

async fn checkout_page(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<Html<String>, ApiError> {
    let session = app.store().get(Kind::Session, &id)?.clone();
    let status = session["status"].as_str().unwrap_or_default();
    Ok(Html(format!(
        "<!doctype html><title>stripe-fake checkout</title><p>Checkout session {id} ({status}), {} {}.</p>\
         <form method=post action=\"/_test/checkout/{id}/complete\"><button>Pay</button></form>",
        session["amount_total"],
        session["currency"].as_str().unwrap_or_default()
    )))
}

async fn portal_page(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<Html<String>, ApiError> {
    let session = app.store().get(Kind::PortalSession, &id)?.clone();
    let back = session["return_url"].as_str().unwrap_or("/");
    Ok(Html(format!(
        "<!doctype html><title>stripe-fake portal</title><p>Billing portal for {}.</p><a href=\"{back}\">Return</a>",
        session["customer"].as_str().unwrap_or_default()
    )))
}

/// Runs a lifecycle step on the store, publishes its events and answers the object.
fn step(app: &App, run: impl FnOnce(&mut Store, i64) -> Outcome) -> Reply {
    let now = unix_now();
    let (object, events) = run(&mut app.store(), now)?;
    app.emit(events, now);
    Ok(Json(object))
}

/// The customer pays: answers the completed session.
async fn complete_checkout(State(app): State<Arc<App>>, Path(id): Path<String>) -> Reply {
    step(&app, |store, now| {
        billing::complete_checkout(store, &app.config, &id, now)
    })
}

async fn payment_failed(State(app): State<Arc<App>>, Path(id): Path<String>) -> Reply {
    step(&app, |store, now| billing::payment_failed(store, &id, now))
}

async fn renew(State(app): State<Arc<App>>, Path(id): Path<String>) -> Reply {
    step(&app, |store, now| billing::renew(store, &id, now))
}

async fn cancel_now(State(app): State<Arc<App>>, Path(id): Path<String>) -> Reply {
    step(&app, |store, now| billing::cancel_subscription(store, &id, now))
}

async fn events(State(app): State<Arc<App>>) -> Json<Value> {
    Json(app.log().view())
}

/// Sends the event again: same id and body, fresh signature.
async fn resend(State(app): State<Arc<App>>, Path(id): Path<String>) -> Reply {
    if !app.log().contains(&id) {
        return Err(ApiError::NoSuch { kind: "event", id });
    }
    app.delivery.resend(id.clone());
    Ok(Json(json!({"resent": id})))
}

async fn pause(State(app): State<Arc<App>>) -> Json<Value> {
    app.delivery.pause();
    Json(json!({"paused": true}))
}

/// Unpauses; queued events go out in order.
async fn resume(State(app): State<Arc<App>>) -> Json<Value> {
    Json(json!({"paused": false, "delivered": app.delivery.resume()}))
}

/// Queued events go out newest first; delivery stays paused.
async fn deliver_reversed(State(app): State<Arc<App>>) -> Json<Value> {
    Json(json!({"paused": true, "delivered": app.delivery.deliver_reversed()}))
}
