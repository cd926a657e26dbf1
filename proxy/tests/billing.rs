//! Stripe billing end to end against stripe-fake (a stateful fake of Stripe's API that sends
//! signed webhooks): Checkout, payment, the plan at a running proxy within a second, a plan change
//! by subscription update (never a second subscription), the portal and the overview; webhooks
//! verified, deduplicated, processed whatever their order and even when no worker was running when
//! they arrived; the past-due grace ending at its exact time; failing events dead-lettered.

mod support;

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use support::*;

const WEBHOOK_SECRET: &str = "whsec_test_gateway";
const SECRET_KEY: &str = "sk_test_gateway";

struct Billing {
    s: System,
    fake: String,
    _fake: Proc,
    stripe_env: Vec<(&'static str, String)>,
}

impl Billing {
    async fn start(extra: &[(&'static str, &str)]) -> Billing {
        let port = free_port();
        let fake = format!("http://127.0.0.1:{port}");
        let mut stripe_env: Vec<(&'static str, String)> = vec![
            ("ASF_BASELINE_PLAN", "free".into()),
            ("STRIPE_API_BASE", fake.clone()),
            ("STRIPE_SECRET_KEY", SECRET_KEY.into()),
            ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
        ];
        stripe_env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let env: Vec<(&str, &str)> = stripe_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let s = System::start(&env).await;
        let child = std::process::Command::new(binary("stripe-fake"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--webhook-url", &format!("{}/v1/billing/webhook", s.control.url)])
            .args(["--webhook-secret", WEBHOOK_SECRET])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("stripe-fake");
        let fake_proc = Proc(child);
        wait_for_port(format!("127.0.0.1:{port}").parse().expect("addr")).await;
        Billing {
            s,
            fake,
            _fake: fake_proc,
            stripe_env,
        }
    }

    fn worker(&self) -> Proc {
        let env: Vec<(&str, &str)> = self.stripe_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.s.start_worker(&env)
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        let response = client()
            .post(format!("{}{path}", self.s.control.url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("post");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Drives the fake: a test control (no key needed).
    async fn control(&self, path: &str) -> Value {
        let response = client()
            .post(format!("{}{path}", self.fake))
            .send()
            .await
            .expect("fake control");
        assert!(response.status().is_success(), "{path}: {}", response.status());
        response.json().await.unwrap_or(Value::Null)
    }

    async fn stripe_get(&self, path: &str) -> Value {
        client()
            .get(format!("{}{path}", self.fake))
            .bearer_auth(SECRET_KEY)
            .send()
            .await
            .expect("stripe get")
            .json()
            .await
            .expect("json")
    }

    /// Checkout for `plan`, paid: returns the subscription id.
    async fn subscribe(&self, token: &str, plan: &str) -> String {
        let (status, answer) = self.post(token, "/v1/billing/checkout", json!({ "plan": plan })).await;
        assert_eq!(status, 200, "{answer}");
        let url = answer["url"].as_str().expect("checkout url");
        let session = url.rsplit('/').next().expect("session id");
        let completed = self.control(&format!("/_test/checkout/{session}/complete")).await;
        completed["subscription"]
            .as_str()
            .or(completed["subscription"]["id"].as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| {
                panic!("no subscription in {completed}");
            })
    }

    fn sql(&self, statement: &str) -> String {
        self.s.control.sql(statement)
    }
}

async fn arm(s: &System, token: &str, uid: &str) -> u16 {
    disarm(s, token, uid).await.status().as_u16()
}

/// Waits until arming answers `wanted`; returns how long that took.
async fn arm_until(s: &System, token: &str, uid: &str, wanted: fn(u16) -> bool, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let status = arm(s, token, uid).await;
        if wanted(status) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "arming still answers {status} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_sql(b: &Billing, statement: &str, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = b.sql(statement);
        if got == expected {
            return;
        }
        assert!(Instant::now() < deadline, "{statement}: {got:?}, expected {expected:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn signed(body: &str, secret: &str, timestamp: i64) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

async fn deliver(b: &Billing, body: &str, signature: &str) -> (u16, Value) {
    let response = client()
        .post(format!("{}/v1/billing/webhook", b.s.control.url))
        .header("stripe-signature", signature)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("webhook");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_paid_checkout_reaches_the_proxy_within_a_second_and_a_plan_change_updates_the_one_subscription() {
    let b = Billing::start(&[]).await;
    let _worker = b.worker();
    let (token, uid) = logged_in(&b.s, "demo@example.com").await;
    assert_eq!(arm(&b.s, &token, &uid).await, 402);

    let (status, answer) = b.post(&token, "/v1/billing/checkout", json!({"plan": "pro"})).await;
    assert_eq!(status, 200, "{answer}");
    let url = answer["url"].as_str().expect("url").to_owned();
    assert!(url.starts_with(&format!("{}/checkout/cs_", b.fake)), "{url}");
    let session = url.rsplit('/').next().expect("id").to_owned();
    b.control(&format!("/_test/checkout/{session}/complete")).await;
    let took = arm_until(&b.s, &token, &uid, |s| (200..300).contains(&s), Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(1), "payment to plan took {took:?}");
    let customer = b.sql("select stripe_customer_id from tenants where subscription_plan = 'pro'");
    assert!(customer.starts_with("cus_"), "{customer}");

    // A second checkout changes the plan of the same subscription (prorated), at once.
    let (status, answer) = b.post(&token, "/v1/billing/checkout", json!({"plan": "premium"})).await;
    assert_eq!((status, answer["changed"].as_bool()), (200, Some(true)), "{answer}");
    let subscriptions = b.stripe_get(&format!("/v1/subscriptions?customer={customer}")).await;
    assert_eq!(
        subscriptions["data"].as_array().map(Vec::len),
        Some(1),
        "{subscriptions}"
    );
    assert_eq!(
        subscriptions["data"][0]["items"]["data"][0]["price"]["id"],
        "price_premium"
    );
    assert_eq!(
        b.sql("select plan || ' ' || plan_source from tenants where stripe_customer_id is not null"),
        "premium subscription"
    );
    let (status, answer) = b.post(&token, "/v1/billing/checkout", json!({"plan": "premium"})).await;
    assert_eq!(
        (status, answer["errors"][0]["code"].as_str()),
        (409, Some("already_on_plan"))
    );
    let (status, _) = b.post(&token, "/v1/billing/checkout", json!({"plan": "free"})).await;
    assert_eq!(status, 422, "the free plan is not sold");

    let (status, portal) = b.post(&token, "/v1/billing/portal", json!({})).await;
    assert_eq!(status, 200);
    assert!(
        portal["url"].as_str().is_some_and(|u| u.contains("/portal/")),
        "{portal}"
    );
    let overview = bearer_json(format!("{}/v1/billing", b.s.control.url), &token).await;
    assert_eq!(overview["plan"], "premium", "{overview}");
    assert_eq!(overview["subscription"]["status"], "active");
    assert!(overview["subscription"]["current_period_end"].is_string());
    assert!(
        overview["invoices"].as_array().is_some_and(|i| !i.is_empty()),
        "{overview}"
    );
    let audited = b.sql("select count(*) from stripe_events where status = 'done'");
    assert!(audited.parse::<i32>().unwrap_or(0) >= 3, "events processed: {audited}");
}

#[tokio::test]
async fn webhooks_are_verified_deduplicated_and_processed_whatever_their_order_or_the_workers_state() {
    let b = Billing::start(&[]).await;
    let (token, uid) = logged_in(&b.s, "demo@example.com").await;

    // Signatures: wrong secret, stale, missing: 400 and nothing stored.
    let body = json!({"id": "evt_manual_1", "object": "event", "type": "customer.created", "data": {"object": {"id": "cus_x"}}}).to_string();
    let now = now();
    for (signature, why) in [
        (signed(&body, "whsec_wrong", now), "wrong secret"),
        (signed(&body, WEBHOOK_SECRET, now - 400), "stale"),
        ("t=1,v1=zz".to_owned(), "garbage"),
    ] {
        let (status, answer) = deliver(&b, &body, &signature).await;
        assert_eq!(status, 400, "{why}: {answer}");
    }
    assert_eq!(b.sql("select count(*) from stripe_events"), "0");
    // A good one twice: stored once.
    let (status, first) = deliver(&b, &body, &signed(&body, WEBHOOK_SECRET, now)).await;
    assert_eq!((status, first["duplicate"].as_bool()), (200, Some(false)));
    let (status, again) = deliver(&b, &body, &signed(&body, WEBHOOK_SECRET, now)).await;
    assert_eq!((status, again["duplicate"].as_bool()), (200, Some(true)));
    assert_eq!(
        b.sql("select count(*) from stripe_events where id = 'evt_manual_1'"),
        "1"
    );

    // No worker runs: a subscription is bought, then cancelled, and Stripe's events arrive newest
    // first. They are stored and wait.
    b.control("/_test/webhook_pause").await;
    let subscription = b.subscribe(&token, "pro").await;
    b.control(&format!("/_test/subscriptions/{subscription}/cancel_now"))
        .await;
    b.control("/_test/events/deliver_reversed").await;
    wait_sql(
        &b,
        "select count(*) > 3 from stripe_events where status = 'pending'",
        "t",
    )
    .await;
    assert_eq!(arm(&b.s, &token, &uid).await, 402, "nothing was processed yet");

    // The worker processes them all; each re-reads the subscription, so the end state is Stripe's.
    let _worker = b.worker();
    wait_sql(&b, "select count(*) from stripe_events where status = 'pending'", "0").await;
    assert_eq!(b.sql("select count(*) from stripe_events where status = 'dead'"), "0");
    assert_eq!(
        b.sql("select subscription_status || ' ' || plan from tenants where stripe_customer_id is not null"),
        "canceled free"
    );
    assert_eq!(arm(&b.s, &token, &uid).await, 402);
}

#[tokio::test]
async fn a_failed_payment_keeps_the_plan_for_the_grace_and_ends_it_at_its_exact_time() {
    let b = Billing::start(&[("ASF_PAST_DUE_GRACE_SECS", "3")]).await;
    let _worker = b.worker();
    let (token, uid) = logged_in(&b.s, "demo@example.com").await;
    let subscription = b.subscribe(&token, "pro").await;
    arm_until(&b.s, &token, &uid, |s| (200..300).contains(&s), Duration::from_secs(5)).await;

    b.control(&format!("/_test/subscriptions/{subscription}/payment_failed"))
        .await;
    wait_sql(
        &b,
        "select subscription_status from tenants where stripe_customer_id is not null",
        "past_due",
    )
    .await;
    let notes = bearer_json(format!("{}/v1/notifications", b.s.control.url), &token).await;
    let kinds: Vec<&str> = notes["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|n| n["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"payment_failed"), "{kinds:?}");
    assert!(
        (200..300).contains(&arm(&b.s, &token, &uid).await),
        "the grace keeps the plan"
    );

    // The grace ends at the stored past-due time plus three seconds: the plan must hold until then
    // and end within the worker's half-second poll (plus test and load slack) after.
    let grace_end_ms: f64 = b
        .sql(
            "select extract(epoch from past_due_since) * 1000 + 3000 from tenants where stripe_customer_id is not null",
        )
        .parse()
        .expect("grace end");
    arm_until(&b.s, &token, &uid, |s| s == 402, Duration::from_secs(8)).await;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as f64;
    assert!(
        now_ms >= grace_end_ms,
        "the plan ended {} ms before the grace",
        grace_end_ms - now_ms
    );
    assert!(
        now_ms - grace_end_ms < 1500.0,
        "the plan outlived the grace by {} ms",
        now_ms - grace_end_ms
    );
    assert_eq!(
        b.sql("select plan from tenants where stripe_customer_id is not null"),
        "free"
    );
}

#[tokio::test]
async fn an_event_that_keeps_failing_is_dead_lettered_for_admins() {
    let b = Billing::start(&[("ASF_STRIPE_EVENT_MAX_ATTEMPTS", "2")]).await;
    let _worker = b.worker();
    let body = json!({"id": "evt_orphan", "object": "event", "type": "customer.subscription.updated",
                      "data": {"object": {"id": "sub_nobody_has", "customer": "cus_nobody"}}})
    .to_string();
    let (status, _) = deliver(&b, &body, &signed(&body, WEBHOOK_SECRET, now())).await;
    assert_eq!(status, 200, "acknowledged at once");
    wait_sql(
        &b,
        "select status || ' ' || attempts from stripe_events where id = 'evt_orphan'",
        "dead 2",
    )
    .await;
    let admin = admin_token(&b.s).await;
    let dead = bearer_json(
        format!("{}/v1/admin/billing/events?status=dead", b.s.control.url),
        &admin,
    )
    .await;
    assert_eq!(dead["events"][0]["id"], "evt_orphan", "{dead}");
    assert!(dead["events"][0]["last_error"].as_str().is_some_and(|e| !e.is_empty()));
}

#[tokio::test]
async fn a_voucher_never_lowers_a_paid_plan_and_a_higher_one_lasts_only_its_time() {
    let b = Billing::start(&[]).await;
    let _worker = b.worker();
    let (token, uid) = logged_in(&b.s, "demo@example.com").await;
    b.subscribe(&token, "pro").await;
    arm_until(&b.s, &token, &uid, |s| (200..300).contains(&s), Duration::from_secs(5)).await;

    let admin = admin_token(&b.s).await;
    let batch = |plan: &str| json!({"count": 1, "plan": plan, "duration_days": 1});
    let (_, basic) = b.post(&admin, "/v1/admin/vouchers", batch("basic")).await;
    let (_, same) = b.post(&admin, "/v1/admin/vouchers", batch("pro")).await;
    let (_, premium) = b.post(&admin, "/v1/admin/vouchers", batch("premium")).await;
    for (codes, why) in [(&basic, "lower than paid"), (&same, "already paid for")] {
        let (status, answer) = b
            .post(&token, "/v1/vouchers/redeem", json!({"code": codes["codes"][0]}))
            .await;
        assert_eq!(
            (status, answer["errors"][0]["code"].as_str()),
            (409, Some("voucher_plan_not_higher")),
            "{why}"
        );
    }
    assert_eq!(
        b.sql("select count(*) from vouchers where redemptions > 0"),
        "0",
        "the codes stay unused"
    );

    let (status, answer) = b
        .post(&token, "/v1/vouchers/redeem", json!({"code": premium["codes"][0]}))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        b.sql("select plan || ' ' || plan_source from tenants where stripe_customer_id is not null"),
        "premium voucher"
    );
    // When the voucher's time is over, the paid plan is back, at that time.
    b.sql("update voucher_grants set ends_at = now() + interval '1 second'");
    b.sql("update tenants set plan_changes_at = (select ends_at from voucher_grants) where stripe_customer_id is not null");
    wait_sql(
        &b,
        "select plan || ' ' || plan_source from tenants where stripe_customer_id is not null",
        "pro subscription",
    )
    .await;
    assert!((200..300).contains(&arm(&b.s, &token, &uid).await));
}

#[tokio::test]
async fn a_cancellation_applies_even_when_its_price_is_no_longer_sold() {
    let b = Billing::start(&[]).await;
    let _worker = b.worker();
    let (token, uid) = logged_in(&b.s, "demo@example.com").await;
    let subscription = b.subscribe(&token, "pro").await;
    arm_until(&b.s, &token, &uid, |s| (200..300).contains(&s), Duration::from_secs(5)).await;
    // The admin moves pro to a new price; the legacy subscriber then cancels.
    let admin = admin_token(&b.s).await;
    let edited = client()
        .put(format!("{}/v1/admin/plans/pro", b.s.control.url))
        .bearer_auth(&admin)
        .json(
            &json!({"classes": ["hub_read", "read", "command", "panic"], "rate_per_minute": 120,
                      "stripe_price_ids": ["price_pro_v2"]}),
        )
        .send()
        .await
        .expect("edit");
    assert_eq!(edited.status(), 200);
    b.control(&format!("/_test/subscriptions/{subscription}/cancel_now"))
        .await;
    arm_until(&b.s, &token, &uid, |s| s == 402, Duration::from_secs(5)).await;
    assert_eq!(
        b.sql("select subscription_status || ' ' || subscription_plan || ' ' || plan from tenants where stripe_customer_id is not null"),
        "canceled pro free"
    );
    assert_eq!(b.sql("select count(*) from stripe_events where status <> 'done'"), "0");
}

#[tokio::test]
async fn two_checkouts_paid_before_either_is_processed_leave_one_subscription() {
    let b = Billing::start(&[]).await;
    let _worker = b.worker();
    let (token, uid) = logged_in(&b.s, "demo@example.com").await;
    // Two tabs: both get a Checkout session before any payment is known.
    let (_, first) = b.post(&token, "/v1/billing/checkout", json!({"plan": "pro"})).await;
    let (_, second) = b.post(&token, "/v1/billing/checkout", json!({"plan": "premium"})).await;
    for answer in [&first, &second] {
        let session = answer["url"]
            .as_str()
            .expect("url")
            .rsplit('/')
            .next()
            .expect("id")
            .to_owned();
        b.control(&format!("/_test/checkout/{session}/complete")).await;
    }
    arm_until(&b.s, &token, &uid, |s| (200..300).contains(&s), Duration::from_secs(5)).await;
    let customer = b.sql("select stripe_customer_id from tenants where stripe_customer_id is not null");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let live = b.stripe_get(&format!("/v1/subscriptions?customer={customer}")).await;
        let count = live["data"].as_array().map_or(0, Vec::len);
        if count == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "still {count} live subscriptions");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_sql(&b, "select count(*) from stripe_events where status = 'pending'", "0").await;
    assert_eq!(
        b.sql("select subscription_status || ' ' || plan from tenants where stripe_customer_id is not null"),
        "active pro"
    );
}
