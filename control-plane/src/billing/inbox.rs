//! The Stripe event inbox: the webhook stores each event once (by id) and acknowledges it; the
//! worker processes stored events here. Processing re-reads the subscription from Stripe rather
//! than trusting the event's copy, so events may arrive late, twice or out of order. A failure is
//! retried with backoff and, after the last attempt, left `dead` for admins to see.

use std::time::Duration;

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::stripe_api::StripeApi;
use super::sync::{self, SyncError};
use crate::notifications;
use crate::plans::Plans;

/// Longest wait between two attempts at one event.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The subscription an event is about, the tenant named in it (Checkout's reference), and its
/// customer.
fn subject(payload: &Value) -> (Option<String>, Option<Uuid>, Option<String>) {
    let object = &payload["data"]["object"];
    let text = |v: &Value| {
        v.as_str()
            .map(str::to_owned)
            .or_else(|| v["id"].as_str().map(str::to_owned))
    };
    let kind = payload["type"].as_str().unwrap_or("");
    let subscription = if kind.starts_with("customer.subscription.") {
        text(&object["id"])
    } else if kind.starts_with("invoice.") {
        text(&object["parent"]["subscription_details"]["subscription"]).or_else(|| text(&object["subscription"]))
    } else {
        text(&object["subscription"])
    };
    let tenant = object["client_reference_id"]
        .as_str()
        .or(object["metadata"]["tenant_id"].as_str())
        .and_then(|t| t.parse().ok());
    (subscription, tenant, text(&object["customer"]))
}

async fn process(
    db: &PgPool,
    stripe: &StripeApi,
    plans: &Plans,
    event_id: &str,
    payload: &Value,
) -> Result<(), SyncError> {
    let kind = payload["type"].as_str().unwrap_or("");
    let (subscription, tenant_hint, customer) = subject(payload);
    if kind == "invoice.payment_failed"
        && let Some(customer) = &customer
    {
        let tenant: Option<Uuid> = sqlx::query_scalar("select id from tenants where stripe_customer_id = $1")
            .bind(customer)
            .fetch_optional(db)
            .await?;
        let tenant = tenant.ok_or_else(|| SyncError::UnknownCustomer(customer.clone()))?;
        let mut conn = db.acquire().await?;
        notifications::notify_tenant(
            &mut conn,
            tenant,
            "payment_failed",
            "Payment failed",
            "Your last payment failed. Please update your payment method to keep your plan.",
            Some(event_id),
        )
        .await?;
    }
    if let Some(id) = subscription {
        let current = stripe
            .subscription(&id)
            .await
            .map_err(|e| SyncError::Stripe(e.to_string()))?;
        if sync::is_second_live(db, &current).await? {
            // Two Checkout sessions were paid before either was processed: the tenant keeps the
            // subscription it already has, and the newcomer is cancelled (its payment is for an
            // operator to refund from Stripe's dashboard).
            tracing::warn!(subscription = %id, "a second live subscription for one tenant; cancelling it");
            let cancelled = stripe.cancel(&id).await.map_err(|e| SyncError::Stripe(e.to_string()))?;
            sync::apply(db, plans, &cancelled, tenant_hint).await?;
            return Ok(());
        }
        sync::apply(db, plans, &current, tenant_hint).await?;
    }
    Ok(())
}

fn backoff(attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.clamp(0, 16)).unwrap_or(16);
    Duration::from_secs(1u64 << exponent).min(MAX_BACKOFF)
}

/// Processes events that are due, one at a time, until none is; returns how many were handled.
pub async fn process_due(db: &PgPool, stripe: &StripeApi, plans: &Plans) -> Result<usize, sqlx::Error> {
    let mut handled = 0;
    loop {
        let mut tx = db.begin().await?;
        let event: Option<(String, Value, i32)> = sqlx::query_as(
            "select id, payload, attempts from stripe_events where status = 'pending' and next_attempt_at <= now() \
             order by received_at limit 1 for update skip locked",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some((id, payload, attempts)) = event else {
            tx.commit().await?;
            return Ok(handled);
        };
        match process(db, stripe, plans, &id, &payload).await {
            Ok(()) => {
                sqlx::query(
                    "update stripe_events set status = 'done', attempts = attempts + 1, processed_at = now(), \
                     last_error = null where id = $1",
                )
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            }
            Err(e) => {
                let attempts = attempts + 1;
                let dead = u32::try_from(attempts).unwrap_or(u32::MAX) >= stripe.settings.max_attempts;
                tracing::warn!(event = %id, attempts, dead, error = %e, "processing a Stripe event failed");
                sqlx::query(
                    "update stripe_events set attempts = $2, last_error = $3, \
                     status = case when $4 then 'dead' else 'pending' end, \
                     next_attempt_at = now() + make_interval(secs => $5) where id = $1",
                )
                .bind(&id)
                .bind(attempts)
                .bind(e.to_string())
                .bind(dead)
                .bind(backoff(attempts).as_secs_f64())
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        handled += 1;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn each_event_names_its_subscription() {
        let checkout = json!({"type": "checkout.session.completed", "data": {"object": {
            "subscription": "sub_1", "client_reference_id": "0190b1a0-0000-7000-8000-000000000001", "customer": "cus_1"}}});
        let (sub, tenant, customer) = subject(&checkout);
        assert_eq!(sub.as_deref(), Some("sub_1"));
        assert!(tenant.is_some());
        assert_eq!(customer.as_deref(), Some("cus_1"));
        let updated =
            json!({"type": "customer.subscription.updated", "data": {"object": {"id": "sub_2", "customer": "cus_1"}}});
        assert_eq!(subject(&updated).0.as_deref(), Some("sub_2"));
        let invoice = json!({"type": "invoice.paid", "data": {"object": {"customer": "cus_1",
            "parent": {"subscription_details": {"subscription": "sub_3"}}}}});
        assert_eq!(subject(&invoice).0.as_deref(), Some("sub_3"));
    }

    #[test]
    fn retries_back_off_up_to_five_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(30), MAX_BACKOFF);
    }
}
