//! Prometheus metrics of the proxy and the small HTTP app that serves them at `/metrics`.

use asf_core::audit::{AuditSink, ShipperStats};
use async_trait::async_trait;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// The proxy's metrics, registered in their own registry. Cloning shares them.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Requests answered, by route class, status and decision.
    pub requests: IntCounterVec,
    /// Time from forwarding to the upstream's response header, by upstream.
    pub upstream_seconds: HistogramVec,
    /// JWKS fetches by outcome (ok, fetch_error, malformed).
    pub jwks_refreshes: IntCounterVec,
    /// Calls the budget can still take in the current window, as of the last reservation.
    pub budget_remaining: IntGauge,
    /// Share of the budget used in the current window, as of the last reservation.
    pub budget_utilisation: Gauge,
    /// Requests waiting for their slot right now, by lane.
    pub queue_depth: IntGaugeVec,
    /// Time spent waiting for a slot, by lane.
    pub queue_wait_seconds: HistogramVec,
    /// Requests refused by the throttle, by reason.
    pub refusals: IntCounterVec,
    /// The `X-Suggested-Interval` currently given to clients.
    pub suggested_interval: IntGauge,
    /// 1 while this instance runs on its local share of the budget (Redis unavailable).
    pub fallback: IntGauge,
    /// Latency of the admission round trip to Redis.
    pub redis_seconds: HistogramVec,
    /// Ajax pushbacks seen (429, Retry-After, or a "limit exceeded" body).
    pub pushbacks: IntCounterVec,
    /// Requests the shield answered itself, by reason (unknown route, bad path, flooding, ...).
    pub shield_refusals: IntCounterVec,
    /// Audit records waiting in memory to be shipped to Redis.
    pub audit_buffered: IntGauge,
    /// Audit records shipped to the Redis stream.
    pub audit_shipped: IntCounter,
    /// Audit records lost because the buffer was full (the target is zero).
    pub audit_dropped: IntCounter,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "asf_proxy_requests_total",
                "Requests answered by route class, status and decision",
            ),
            &["class", "status", "decision"],
        )?;
        let upstream_seconds = HistogramVec::new(
            HistogramOpts::new("asf_proxy_upstream_seconds", "Upstream latency to the response header").buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["upstream"],
        )?;
        let jwks_refreshes = IntCounterVec::new(
            Opts::new("asf_proxy_jwks_refreshes_total", "JWKS fetches by outcome"),
            &["outcome"],
        )?;
        let budget_remaining = IntGauge::new(
            "asf_budget_remaining",
            "Calls the global budget can still take this window",
        )?;
        let budget_utilisation = Gauge::new("asf_budget_utilisation", "Share of the global budget used this window")?;
        let queue_depth = IntGaugeVec::new(
            Opts::new("asf_queue_depth", "Requests waiting for their budget slot"),
            &["lane"],
        )?;
        let queue_wait_seconds = HistogramVec::new(
            HistogramOpts::new("asf_queue_wait_seconds", "Time waited for a budget slot")
                .buckets(vec![0.0, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0]),
            &["lane"],
        )?;
        let refusals = IntCounterVec::new(
            Opts::new("asf_throttle_refusals_total", "Requests refused by the throttle"),
            &["reason"],
        )?;
        let suggested_interval = IntGauge::new(
            "asf_suggested_interval_seconds",
            "X-Suggested-Interval currently given to clients",
        )?;
        let fallback = IntGauge::new("asf_budget_fallback", "1 while the local share of the budget is in use")?;
        let redis_seconds = HistogramVec::new(
            HistogramOpts::new("asf_redis_seconds", "Latency of Redis calls on the request path")
                .buckets(vec![0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25]),
            &["call"],
        )?;
        let pushbacks = IntCounterVec::new(Opts::new("asf_ajax_pushbacks_total", "Ajax pushbacks seen"), &["kind"])?;
        let shield_refusals = IntCounterVec::new(
            Opts::new("asf_shield_refusals_total", "Requests refused by the shield"),
            &["reason"],
        )?;
        let audit_buffered = IntGauge::new("asf_audit_buffered", "Audit records waiting in memory to be shipped")?;
        let audit_shipped = IntCounter::new("asf_audit_shipped_total", "Audit records shipped to the Redis stream")?;
        let audit_dropped = IntCounter::new(
            "asf_audit_dropped_total",
            "Audit records lost because the in-memory buffer was full",
        )?;
        registry.register(Box::new(audit_buffered.clone()))?;
        registry.register(Box::new(audit_shipped.clone()))?;
        registry.register(Box::new(audit_dropped.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(upstream_seconds.clone()))?;
        registry.register(Box::new(jwks_refreshes.clone()))?;
        registry.register(Box::new(budget_remaining.clone()))?;
        registry.register(Box::new(budget_utilisation.clone()))?;
        registry.register(Box::new(queue_depth.clone()))?;
        registry.register(Box::new(queue_wait_seconds.clone()))?;
        registry.register(Box::new(refusals.clone()))?;
        registry.register(Box::new(suggested_interval.clone()))?;
        registry.register(Box::new(fallback.clone()))?;
        registry.register(Box::new(redis_seconds.clone()))?;
        registry.register(Box::new(pushbacks.clone()))?;
        registry.register(Box::new(shield_refusals.clone()))?;
        Ok(Self {
            registry,
            requests,
            upstream_seconds,
            jwks_refreshes,
            budget_remaining,
            budget_utilisation,
            queue_depth,
            queue_wait_seconds,
            refusals,
            suggested_interval,
            fallback,
            redis_seconds,
            pushbacks,
            shield_refusals,
            audit_buffered,
            audit_shipped,
            audit_dropped,
        })
    }

    /// Copies an audit sink's counters into the metrics.
    pub fn observe_audit(&self, stats: ShipperStats) {
        self.audit_buffered
            .set(i64::try_from(stats.buffered).unwrap_or(i64::MAX));
        self.audit_shipped
            .inc_by(stats.shipped.saturating_sub(self.audit_shipped.get()));
        self.audit_dropped
            .inc_by(stats.dropped.saturating_sub(self.audit_dropped.get()));
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }
}

/// Serves [`Metrics::render`] on the metrics listener.
pub struct MetricsApp(pub Metrics, pub AuditSink);

#[async_trait]
impl ServeHttp for MetricsApp {
    async fn response(&self, session: &mut ServerSession) -> http::Response<Vec<u8>> {
        let path = session.req_header().uri.path();
        let (status, body) = if path == "/metrics" {
            self.0.observe_audit(self.1.stats());
            (200, self.0.render())
        } else {
            (404, b"not found\n".to_vec())
        };
        http::Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")
            .header(http::header::CONTENT_LENGTH, body.len())
            .body(body)
            .unwrap_or_default()
    }
}
