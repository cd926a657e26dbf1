//! The audit trail in the control plane: the worker's mover from the Redis stream into
//! PostgreSQL, the chained table, verification, retention, the HTTP queries, and the middleware
//! that records the control plane's own events.

/// The columns of `audit_log` read into [`store::StoredRow`].
macro_rules! audit_columns {
    () => {
        "seq, record_id, at_ms, kind, user_id, tenant_id, client_ip, method, route, path, route_class, \
         decision, status, upstream_status, queue_wait_ms, latency_ms, detail, content_hash, chain_hash"
    };
}

pub mod api;
pub mod http;
pub mod mover;
pub mod store;
pub mod verify;

pub use http::AuditNote;
