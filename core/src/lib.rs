//! What the proxy and the control plane agree on: the Ajax route catalogue, the project's token
//! claims, the Redis keyspace, the stored Ajax session and its encryption, and Ajax's wire shapes.
//! No axum, no sqlx, no pingora here.

pub mod ajax_client;
pub mod ajax_wire;
pub mod audit;
pub mod body_schema;
pub mod catalogue;
pub mod claims;
pub mod client_ip;
pub mod entitlement;
pub mod jwk;
pub mod keyspace;
pub mod plans;
pub mod request_path;
pub mod secrets;
pub mod session;
pub mod session_refresh;
pub mod throttle;
pub mod voucher_code;
