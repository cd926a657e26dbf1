//! Plans and what they entitle: the plan catalogue in PostgreSQL, a tenant's effective plan (from
//! its Stripe subscription, its voucher grants and the time, through
//! [`asf_core::plans::effective_plan`]), and its publication to Redis, where every proxy reads it
//! in its one admission round trip.

pub mod api;
pub mod catalogue;
pub mod effective;
pub mod publish;

pub use effective::Plans;
