//! ajax-sim: a faithful simulator of the Ajax Systems cloud API (basePath `/api`), for the
//! project's tests, benchmarks and sandbox mode. The binary is a thin shell over this library, so
//! tests can also run it in-process ([`Server`]).
//!
//! # Command line
//! `ajax-sim --listen ADDR --api-key KEY [--rate N/WINDOW] [--window W] [--session-ttl D]
//! [--refresh-ttl D]` (see [`cli::Args`]). Once bound it prints exactly one line to stdout,
//! `ajax-sim listening on http://ADDR`, with the real port when ADDR asked for port 0; logs go to
//! stderr (`RUST_LOG`, default `info`).
//!
//! # What `/api` does
//! - Every call needs the configured `X-Api-Key` (compared in constant time), else 401 "User is not
//!   authorized". Calls with the key are rate limited with `--rate` (429 + `Retry-After`).
//! - `POST /api/login` and `POST /api/refresh` answer Ajax's session triple; refresh rotates (the
//!   old session and refresh tokens die). Sessions live `--session-ttl`, refresh tokens
//!   `--refresh-ttl`.
//! - `/api/user/{userId}/...` needs a live `X-Session-Token` of that user (401 otherwise), and 403
//!   for a `{hubId}` or `{spaceId}` the user does not have.
//! - Hubs, devices, rooms, groups, hub users, logs, spaces and the user have simulated state;
//!   arming, panic, device commands and device edits change it and write the hub's log. Every
//!   other operation of the catalogue answers the sample generated from Ajax's spec
//!   (`spec/responses.json`). Unknown paths: 404, Ajax-shaped.
//! - Seeded accounts and their ids: see [`seed`].
//!
//! # `/_sim` (no key needed)
//! - `GET /_sim/stats`: `requests_total`, `accepted_total`, `over_limit_total`,
//!   `forced_429_total`, `injected_errors_total`, `max_in_window`, `window_ms`, `rate_limit`,
//!   `rate_window_ms`, `login_total`, `refresh_total` (successes), `by_operation` (accepted calls),
//!   `by_status`, `last_requests` (the last 200, oldest first, with the headers received).
//! - `POST /_sim/reset`: counters, the limiter window and recorded requests start afresh.
//! - `GET|POST|DELETE /_sim/faults`: `latency_ms`, `error_rate`, `hub_offline`, `force_429`,
//!   `limit_as_200` (a POST sets the knobs it names).
//! - `POST /_sim/sessions/expire` / `expire-refresh` `{"userId"}`: kill that user's session
//!   tokens (and refresh tokens) now.
//! - `GET /_sim/health`.

mod account;
mod api;
mod auth;
pub mod cli;
mod clock;
mod commands;
pub mod config;
mod control;
mod faults;
mod hub;
mod limiter;
mod reads;
mod reply;
mod samples;
pub mod seed;
mod state;
mod stats;
mod views;
mod world;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

pub use config::{RateLimit, SimConfig};
pub use samples::SampleError;
pub use state::Sim;
pub use world::sha256_hex;

/// The simulator's routes: `/_sim/...`, and everything else through the `/api` pipeline.
pub fn router(sim: Arc<Sim>) -> Router {
    control::router().fallback(api::handle).with_state(sim)
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Samples(#[from] SampleError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: io::Error },
}

/// A bound simulator, ready to serve.
pub struct Server {
    listener: TcpListener,
    app: Router,
    addr: SocketAddr,
}

impl Server {
    /// Builds a simulator and binds it to `addr` (port 0 picks a free port).
    pub async fn bind(addr: &str, config: SimConfig) -> Result<Self, StartError> {
        let sim = Arc::new(Sim::new(config)?);
        let bind_error = |source| StartError::Bind {
            addr: addr.to_owned(),
            source,
        };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        Ok(Self {
            listener,
            app: router(sim),
            addr,
        })
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
