//! Waiting for a budget slot: the request sleeps until its slot (nothing polls), counted in the
//! lane's queue depth and wait-time metrics. A client that hangs up while waiting is noticed (for
//! requests without a body) and its request is never sent: it costs nothing more.

use std::time::{Duration, Instant};

use asf_core::throttle::Lane;
use pingora::proxy::Session;

use crate::metrics::Metrics;

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    SlotReached,
    ClientGone,
}

/// Whether the request has no body to read (so its connection can be watched while it waits).
fn bodiless(session: &Session) -> bool {
    let headers = &session.req_header().headers;
    let length = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    !headers.contains_key(http::header::TRANSFER_ENCODING) && matches!(length, None | Some("0"))
}

/// Sleeps until the slot `wait` from now, unless the client hangs up first.
pub async fn wait_for_slot(session: &mut Session, lane: Lane, wait: Duration, metrics: &Metrics) -> Waited {
    let label = [lane.as_str()];
    metrics
        .queue_wait_seconds
        .with_label_values(&label)
        .observe(wait.as_secs_f64());
    if wait.is_zero() {
        return Waited::SlotReached;
    }
    let depth = metrics.queue_depth.with_label_values(&label);
    depth.inc();
    let started = Instant::now();
    let outcome = if bodiless(session) {
        tokio::select! {
            () = tokio::time::sleep(wait) => Waited::SlotReached,
            gone = session.as_downstream_mut().read_body_or_idle(true) => match gone {
                // Anything from an idle client before its answer means it closed or broke the exchange.
                Err(_) | Ok(_) => Waited::ClientGone,
            },
        }
    } else {
        tokio::time::sleep(wait).await;
        Waited::SlotReached
    };
    depth.dec();
    if outcome == Waited::ClientGone {
        tracing::debug!(
            waited_ms = started.elapsed().as_millis() as u64,
            "client left while queued"
        );
    }
    outcome
}
