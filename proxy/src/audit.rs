//! The proxy's audit record of one request: who, from where, which route, what the gateway
//! decided, how it ended, and how long it waited. Built in the logging phase and handed to the
//! [`asf_core::audit::AuditSink`], which ships it to Redis off the request path.

use asf_core::audit::{AuditRecord, Kind};
use asf_core::catalogue::RouteClass;
use pingora::http::RequestHeader;

use crate::pipeline::RequestCtx;

/// The record of a request answered with `status` (0 when no answer was written).
pub fn record_of(request: &RequestHeader, ctx: &RequestCtx, status: u16) -> AuditRecord {
    AuditRecord {
        id: ctx.request_id.clone(),
        at_ms: ctx.started_at_ms,
        kind: Kind::Request,
        user_id: ctx.user_id.clone(),
        tenant_id: ctx.tenant_id.clone(),
        client_ip: ctx.client_ip.map(|ip| ip.to_string()),
        method: Some(request.method.as_str().to_owned()),
        route: ctx.route.map(str::to_owned),
        path: Some(request.uri.path().to_owned()),
        class: ctx.class.map(|c| RouteClass::as_str(c).to_owned()),
        decision: ctx.decision.as_str().to_owned(),
        status: i32::from(status),
        upstream_status: ctx.upstream_status.map(i32::from),
        queue_wait_ms: ctx.queue_wait_ms,
        latency_ms: Some(i64::try_from(ctx.started.elapsed().as_millis()).unwrap_or(i64::MAX)),
        detail: None,
    }
}
