//! Webhooks as a receiver sees them: Stripe's signature scheme (recomputed here independently),
//! the envelope, event order, retries, resend and out-of-order delivery.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, SECRET};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Checks `t=..,v1=..` against HMAC-SHA256(SECRET, "{t}.{body}") computed here.
fn assert_signed(received: &common::Received) {
    let (t, v1) = received.signature.split_once(",v1=").unwrap();
    let t = t.strip_prefix("t=").unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", received.body).as_bytes());
    assert_eq!(v1, hex::encode(mac.finalize().into_bytes()));
    let age = chrono::Utc::now().timestamp() - t.parse::<i64>().unwrap();
    assert!((0..60).contains(&age));
}

#[tokio::test]
async fn completing_checkout_sends_three_signed_events_in_order() {
    let fake = Harness::start(0).await;
    let sub_id = fake.subscribe("price_pro").await;
    let got = fake.webhooks(3).await;
    let types = Harness::types(&got);
    assert_eq!(
        types,
        [
            "customer.subscription.created",
            "checkout.session.completed",
            "invoice.paid"
        ]
    );
    got.iter().for_each(assert_signed);
    let event = got[0].json();
    assert_eq!(event["object"], "event");
    assert_eq!(event["api_version"], stripe_fake::events::API_VERSION);
    assert_eq!(
        (event["livemode"].as_bool(), event["pending_webhooks"].as_i64()),
        (Some(false), Some(1))
    );
    assert!(event["id"].as_str().unwrap().starts_with("evt_"));
    assert!(event["request"]["id"].is_null());
    assert_eq!(event["data"]["object"]["id"], sub_id.as_str());
    assert_eq!(got[1].json()["data"]["object"]["subscription"], sub_id.as_str());
    let invoice = got[2].json();
    assert_eq!(
        invoice["data"]["object"]["parent"]["subscription_details"]["subscription"],
        sub_id.as_str()
    );
}

#[tokio::test]
async fn an_update_sends_updated_with_previous_attributes() {
    let fake = Harness::start(0).await;
    let sub_id = fake.subscribe("price_basic").await;
    fake.webhooks(3).await;
    let (_, sub) = fake.get(&format!("/v1/subscriptions/{sub_id}")).await;
    let item = sub["items"]["data"][0]["id"].as_str().unwrap();
    let form = format!("items[0][id]={item}&items[0][price]=price_pro&metadata[plan]=pro");
    fake.post(&format!("/v1/subscriptions/{sub_id}"), &form).await;
    let got = fake.webhooks(4).await;
    let event = got[3].json();
    assert_eq!(event["type"], "customer.subscription.updated");
    let previous = &event["data"]["previous_attributes"];
    assert_eq!(previous["items"]["data"][0]["price"]["id"], "price_basic");
    assert_eq!(previous["metadata"], serde_json::json!({"tenant_id": "t1"}));
    assert!(previous.get("status").is_none(), "only changed fields: {previous}");
    assert_eq!(event["data"]["object"]["items"]["data"][0]["price"]["id"], "price_pro");
}

#[tokio::test]
async fn payment_failure_then_renewal_moves_past_due_then_active() {
    let fake = Harness::start(0).await;
    let sub_id = fake.subscribe("price_basic").await;
    let (_, failed) = fake
        .post(&format!("/_test/subscriptions/{sub_id}/payment_failed"), "")
        .await;
    assert_eq!(failed["status"], "past_due");
    let (_, renewed) = fake.post(&format!("/_test/subscriptions/{sub_id}/renew"), "").await;
    assert_eq!(renewed["status"], "active");
    let (_, canceled) = fake
        .post(&format!("/_test/subscriptions/{sub_id}/cancel_now"), "")
        .await;
    assert_eq!(canceled["status"], "canceled");
    let types = Harness::types(&fake.webhooks(8).await);
    let expected = [
        "invoice.payment_failed",
        "customer.subscription.updated",
        "customer.subscription.updated",
        "invoice.paid",
        "customer.subscription.deleted",
    ];
    assert_eq!(types[3..], expected);
}

#[tokio::test]
async fn a_refused_delivery_is_retried_and_every_attempt_recorded() {
    let fake = Harness::start(1).await;
    fake.subscribe("price_basic").await;
    let got = fake.webhooks(3).await;
    assert_eq!(
        Harness::types(&got)
            .iter()
            .filter(|t| *t == "customer.subscription.created")
            .count(),
        1
    );
    let (_, log) = fake.get("/_test/events").await;
    let first = &log["data"][0];
    assert_eq!(first["attempts"][0]["status"], 500);
    assert_eq!(first["attempts"][1]["status"], 200);
    assert_eq!(first["delivered"], true);
}

#[tokio::test]
async fn paused_events_can_be_delivered_newest_first_and_resent() {
    let fake = Harness::start(0).await;
    fake.post("/_test/webhook_pause", "").await;
    fake.subscribe("price_basic").await;
    let (_, released) = fake.post("/_test/events/deliver_reversed", "").await;
    assert_eq!(released["delivered"], 3);
    let got = fake.webhooks(3).await;
    assert_eq!(
        Harness::types(&got),
        [
            "invoice.paid",
            "checkout.session.completed",
            "customer.subscription.created"
        ]
    );
    let id = got[0].json()["id"].as_str().unwrap().to_owned();
    fake.post(&format!("/_test/events/{id}/resend"), "").await;
    let again = fake.webhooks(4).await;
    assert_eq!(
        (again[3].json()["id"].as_str(), again[3].body == got[0].body),
        (Some(id.as_str()), true)
    );
    assert_signed(&again[3]);
}
