//! Billing through Stripe: Checkout for a first subscription, a subscription update (with
//! proration) to change plan, the customer portal, the billing overview, and the webhook inbox the
//! worker processes (re-reading the subscription from Stripe, so delivery order does not matter).

pub mod api;
pub mod inbox;
pub mod signature;
pub mod stripe_api;
pub mod sync;
