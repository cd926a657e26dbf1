//! Prometheus metrics of the proxy and the small HTTP app that serves them at `/metrics`.

use async_trait::async_trait;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

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
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(upstream_seconds.clone()))?;
        registry.register(Box::new(jwks_refreshes.clone()))?;
        Ok(Self {
            registry,
            requests,
            upstream_seconds,
            jwks_refreshes,
        })
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
pub struct MetricsApp(pub Metrics);

#[async_trait]
impl ServeHttp for MetricsApp {
    async fn response(&self, session: &mut ServerSession) -> http::Response<Vec<u8>> {
        let path = session.req_header().uri.path();
        let (status, body) = if path == "/metrics" {
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
