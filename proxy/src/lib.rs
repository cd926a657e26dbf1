//! asf-proxy: the data plane of AjaxSecurFlow, a Pingora server that is a drop-in Ajax API endpoint.
//! See `pipeline` for the request path; every other module owns one step of it.

pub mod admission;
pub mod audit;
pub mod auth;
pub mod body_check;
pub mod config;
pub mod entitlements;
pub mod heartbeat;
pub mod ip_guard;
pub mod metrics;
pub mod pause;
pub mod pipeline;
pub mod pushback;
pub mod queue;
pub mod redis_link;
pub mod respond;
pub mod rewrite;
pub mod session_cache;
pub mod shield;
pub mod throttle;
pub mod upstream;
pub mod usage;
