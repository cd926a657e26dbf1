//! The `/v1` API through HTTP: key checks, Stripe's error shapes, checkout to an active
//! subscription, updates, cancellation and lists.

#![allow(clippy::unwrap_used)]

mod common;

use common::Harness;

#[tokio::test]
async fn calls_without_a_test_secret_key_get_401_in_stripes_error_shape() {
    let fake = Harness::start(0).await;
    let url = format!("{}/v1/customers", fake.base);
    let none = fake.http.post(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let body: serde_json::Value = none.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did not provide an API key")
    );
    let live = fake
        .http
        .post(&url)
        .bearer_auth("sk_live_abcd1234")
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 401);
}

#[tokio::test]
async fn unknown_ids_get_404_resource_missing() {
    let fake = Harness::start(0).await;
    for path in [
        "/v1/customers/cus_nope",
        "/v1/subscriptions/sub_nope",
        "/v1/checkout/sessions/cs_test_nope",
    ] {
        let (status, body) = fake.get(path).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body["error"]["code"], "resource_missing");
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }
    let (status, body) = fake.post("/_test/subscriptions/sub_nope/renew", "").await;
    assert_eq!(
        (status, body["error"]["message"].as_str()),
        (404, Some("No such subscription: 'sub_nope'"))
    );
}

#[tokio::test]
async fn checkout_refuses_other_modes_and_unknown_prices() {
    let fake = Harness::start(0).await;
    let (status, body) = fake
        .post("/v1/checkout/sessions", "mode=payment&line_items[0][price]=price_pro")
        .await;
    assert_eq!((status, body["error"]["param"].as_str()), (400, Some("mode")));
    let (status, body) = fake
        .post(
            "/v1/checkout/sessions",
            "mode=subscription&line_items[0][price]=price_x",
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("resource_missing"))
    );
}

#[tokio::test]
async fn completed_checkout_gives_an_active_subscription_with_the_price_and_a_30_day_period() {
    let fake = Harness::start(0).await;
    let sub_id = fake.subscribe("price_pro").await;
    let (status, sub) = fake.get(&format!("/v1/subscriptions/{sub_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(sub["object"], "subscription");
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["metadata"]["tenant_id"], "t1");
    let item = &sub["items"]["data"][0];
    assert_eq!(item["price"]["id"], "price_pro");
    assert_eq!(item["price"]["nickname"], "pro");
    let period = item["current_period_end"].as_i64().unwrap() - item["current_period_start"].as_i64().unwrap();
    assert_eq!(period, 30 * 86_400);
    let customer = sub["customer"].as_str().unwrap();
    let (_, list) = fake.get(&format!("/v1/subscriptions?customer={customer}")).await;
    assert_eq!(
        (list["object"].as_str(), list["data"].as_array().unwrap().len()),
        (Some("list"), 1)
    );
    let (_, invoices) = fake.get(&format!("/v1/invoices?customer={customer}")).await;
    assert_eq!(
        invoices["data"][0]["parent"]["subscription_details"]["subscription"],
        sub_id.as_str()
    );
}

#[tokio::test]
async fn updating_the_price_keeps_the_item_and_period() {
    let fake = Harness::start(0).await;
    let sub_id = fake.subscribe("price_basic").await;
    let (_, before) = fake.get(&format!("/v1/subscriptions/{sub_id}")).await;
    let item = before["items"]["data"][0]["id"].as_str().unwrap();
    let form = format!("items[0][id]={item}&items[0][price]=price_premium&proration_behavior=create_prorations");
    let (status, after) = fake.post(&format!("/v1/subscriptions/{sub_id}"), &form).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["items"]["data"][0]["id"], item);
    assert_eq!(after["items"]["data"][0]["price"]["id"], "price_premium");
    assert_eq!(
        after["items"]["data"][0]["current_period_end"],
        before["items"]["data"][0]["current_period_end"]
    );
    let (status, _) = fake
        .post(&format!("/v1/subscriptions/{sub_id}"), "proration_behavior=sometimes")
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn cancel_at_period_end_sets_cancel_at_and_delete_cancels_now() {
    let fake = Harness::start(0).await;
    let sub_id = fake.subscribe("price_basic").await;
    let path = format!("/v1/subscriptions/{sub_id}");
    let (_, sub) = fake.post(&path, "cancel_at_period_end=true").await;
    assert_eq!(sub["cancel_at"], sub["items"]["data"][0]["current_period_end"]);
    let response = fake
        .http
        .delete(format!("{}{path}", fake.base))
        .bearer_auth(common::KEY)
        .send()
        .await
        .unwrap();
    let sub: serde_json::Value = response.json().await.unwrap();
    assert_eq!(sub["status"], "canceled");
    assert!(sub["ended_at"].is_i64());
    let (_, list) = fake
        .get(&format!(
            "/v1/subscriptions?customer={}",
            sub["customer"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        0,
        "canceled ones are listed only with status=all"
    );
}
