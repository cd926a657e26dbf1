//! stripe-fake: a faithful in-memory fake of the Stripe API calls AjaxSecurFlow makes, answering
//! in Stripe's current wire format (API `2026-09-30.endive`, which async-stripe 1.0.0-rc.10 parses)
//! and sending signed webhooks. The binary is a thin shell over this library, so tests can also
//! run it in-process ([`Server`]).
//!
//! # Command line
//! `stripe-fake --listen ADDR [--webhook-url URL --webhook-secret whsec_...] [--price ID=NICK[:CENTS]]...`
//! (see [`cli::Args`]). Once bound it prints one line, `stripe-fake listening on http://ADDR`.
//!
//! # `/v1` (needs `Authorization: Bearer sk_test_...`, else 401; unknown ids 404 `resource_missing`)
//! - `POST /v1/customers`, `GET /v1/customers/{id}`
//! - `POST /v1/checkout/sessions` (mode=subscription, one line item), `GET /v1/checkout/sessions/{id}`
//! - `GET /v1/subscriptions?customer=&status=`, `GET|POST|DELETE /v1/subscriptions/{id}`
//! - `POST /v1/billing_portal/sessions`
//! - `GET /v1/invoices?customer=&subscription=`, `GET /v1/invoices/{id}`
//!
//! # Test controls (no key)
//! - `GET /checkout/{id}`, `GET /portal/{id}`: the hosted pages.
//! - `POST /_test/checkout/{id}/complete`: the customer pays.
//! - `POST /_test/subscriptions/{id}/renew | payment_failed | cancel_now`.
//! - `GET /_test/events`; `POST /_test/events/{id}/resend`; `POST /_test/webhook_pause`,
//!   `/_test/webhook_resume` (queued events in order), `/_test/events/deliver_reversed` (newest first).

// serde_json's `json!` recurses once per field; Stripe's objects are large.
#![recursion_limit = "256"]

mod api;
mod app;
mod billing;
pub mod cli;
mod clock;
pub mod config;
mod control;
mod delivery;
mod error;
pub mod events;
pub mod form;
mod objects;
mod store;

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;

pub use config::{FakeConfig, PriceSpec, WebhookTarget};

/// Why the fake could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: io::Error },
    #[error("cannot build the webhook HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// A bound fake, ready to serve.
pub struct Server {
    listener: TcpListener,
    app: Router,
    addr: SocketAddr,
}

impl Server {
    /// Builds a fake and binds it to `addr` (port 0 picks a free port). Needs a Tokio runtime.
    pub async fn bind(addr: &str, config: FakeConfig) -> Result<Self, StartError> {
        let bind_error = |source| StartError::Bind {
            addr: addr.to_owned(),
            source,
        };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        let state = app::App::start(config, format!("http://{addr}"))?;
        let app = api::router()
            .merge(control::router())
            .fallback(control::unknown)
            .with_state(state);
        Ok(Self { listener, app, addr })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` completes.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
        axum::serve(self.listener, self.app)
            .with_graceful_shutdown(shutdown)
            .await
    }
}
