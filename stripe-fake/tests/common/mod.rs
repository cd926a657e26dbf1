//! Test harness: a fake bound to port 0, a local webhook receiver that records what arrives (and
//! can refuse the first N deliveries), and small HTTP helpers.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;
use stripe_fake::config::default_prices;
use stripe_fake::{FakeConfig, Server, WebhookTarget};

pub const SECRET: &str = "whsec_test_secret";
pub const KEY: &str = "sk_test_key";

/// One webhook request as received: its `Stripe-Signature` header and raw body.
#[derive(Clone, Debug)]
pub struct Received {
    pub signature: String,
    pub body: String,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

#[derive(Default)]
struct Receiver {
    got: Mutex<Vec<Received>>,
    refuse: AtomicUsize,
}

pub struct Harness {
    pub base: String,
    pub http: reqwest::Client,
    receiver: Arc<Receiver>,
}

impl Harness {
    /// A fresh fake whose webhooks go to a fresh receiver; the receiver answers 500 to the first
    /// `refuse` deliveries.
    pub async fn start(refuse: usize) -> Self {
        let receiver = Arc::new(Receiver {
            refuse: AtomicUsize::new(refuse),
            ..Default::default()
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = Router::new().route("/hook", post(receive)).with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let webhook = Some(WebhookTarget {
            url,
            secret: SECRET.into(),
        });
        let server = Server::bind(
            "127.0.0.1:0",
            FakeConfig {
                prices: default_prices(),
                webhook,
            },
        )
        .await
        .unwrap();
        let base = format!("http://{}", server.local_addr());
        tokio::spawn(server.run(std::future::pending()));
        Self {
            base,
            http: reqwest::Client::new(),
            receiver,
        }
    }

    /// A form POST with the API key; answers status and JSON.
    pub async fn post(&self, path: &str, form: &str) -> (u16, Value) {
        let request = self.http.post(format!("{}{path}", self.base)).bearer_auth(KEY);
        let request = request
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form.to_owned());
        Self::answer(request).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        Self::answer(self.http.get(format!("{}{path}", self.base)).bearer_auth(KEY)).await
    }

    async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// Customer + open Checkout Session for `price`, then the customer pays; answers the
    /// subscription id.
    pub async fn subscribe(&self, price: &str) -> String {
        let (_, customer) = self.post("/v1/customers", "email=a%40b.c&metadata[tenant_id]=t1").await;
        let form = format!(
            "mode=subscription&customer={}&line_items[0][price]={price}&line_items[0][quantity]=1\
             &success_url=http://app/ok&cancel_url=http://app/no&subscription_data[metadata][tenant_id]=t1",
            customer["id"].as_str().unwrap()
        );
        let (status, session) = self.post("/v1/checkout/sessions", &form).await;
        assert_eq!(status, 200, "{session}");
        let path = format!("/_test/checkout/{}/complete", session["id"].as_str().unwrap());
        let (_, done) = self.post(&path, "").await;
        done["subscription"].as_str().unwrap().to_owned()
    }

    /// Waits (up to 5 s) until `n` webhooks have arrived; answers all received so far.
    pub async fn webhooks(&self, n: usize) -> Vec<Received> {
        for _ in 0..100 {
            let got = self.receiver.got.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} webhooks, got {:?}", self.receiver.got.lock().unwrap());
    }

    pub fn types(received: &[Received]) -> Vec<String> {
        received
            .iter()
            .map(|r| r.json()["type"].as_str().unwrap().to_owned())
            .collect()
    }
}

async fn receive(State(receiver): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let refused = receiver
        .refuse
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if refused {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let signature = headers.get("stripe-signature").unwrap().to_str().unwrap().to_owned();
    let body = String::from_utf8(body.to_vec()).unwrap();
    receiver.got.lock().unwrap().push(Received { signature, body });
    StatusCode::OK
}
