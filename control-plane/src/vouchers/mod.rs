//! Vouchers: admins generate batches of codes for a plan and a duration; a user redeems a code for
//! their tenant, exactly once per code use, which grants the plan for the duration.

pub mod api;
pub mod issue;
pub mod redeem;
