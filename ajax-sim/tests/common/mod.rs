//! Shared harness for the integration tests: an in-process simulator bound to 127.0.0.1:0, a
//! client that speaks to it, and checks of Ajax's error shape.
#![allow(dead_code)] // each test file uses a part of it

use ajax_sim::{Server, SimConfig, seed, sha256_hex};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

pub const KEY: &str = "test-company-key";

/// A running simulator.
pub struct TestSim {
    pub base: String,
    pub http: reqwest::Client,
}

/// A logged-in user's Ajax session.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub session_token: String,
    pub refresh_token: String,
}

pub async fn start() -> TestSim {
    start_with(SimConfig::new(KEY)).await
}

pub async fn start_with(config: SimConfig) -> TestSim {
    let server = Server::bind("127.0.0.1:0", config).await.expect("bind");
    let base = format!("http://{}", server.local_addr());
    tokio::spawn(server.run(std::future::pending()));
    TestSim {
        base,
        http: reqwest::Client::new(),
    }
}

impl TestSim {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with the API key.
    pub fn call(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path)).header("X-Api-Key", KEY)
    }

    /// A user call with the API key and the session token.
    pub fn user(&self, method: reqwest::Method, path: &str, session: &Session) -> RequestBuilder {
        self.call(method, path)
            .header("X-Session-Token", &session.session_token)
    }

    pub async fn get(&self, path: &str, session: &Session) -> Response {
        self.user(reqwest::Method::GET, path, session)
            .send()
            .await
            .expect("send")
    }

    pub async fn put(&self, path: &str, session: &Session, body: Value) -> Response {
        self.user(reqwest::Method::PUT, path, session)
            .json(&body)
            .send()
            .await
            .expect("send")
    }

    pub async fn post(&self, path: &str, session: &Session, body: Value) -> Response {
        self.user(reqwest::Method::POST, path, session)
            .json(&body)
            .send()
            .await
            .expect("send")
    }

    pub async fn login(&self, login: &str, password: &str) -> Response {
        let body = json!({"login": login, "passwordHash": sha256_hex(password), "userRole": "USER"});
        self.call(reqwest::Method::POST, "/api/login")
            .json(&body)
            .send()
            .await
            .expect("send")
    }

    pub async fn login_as(&self, login: &str, password: &str) -> Session {
        let response = self.login(login, password).await;
        assert_eq!(response.status(), StatusCode::OK);
        session_of(&body(response).await)
    }

    pub async fn login_demo(&self) -> Session {
        self.login_as(seed::DEMO_LOGIN, seed::DEMO_PASSWORD).await
    }

    pub async fn refresh(&self, user_id: &str, refresh_token: &str) -> Response {
        let body = json!({"userId": user_id, "refreshToken": refresh_token});
        self.call(reqwest::Method::POST, "/api/refresh")
            .json(&body)
            .send()
            .await
            .expect("send")
    }

    pub async fn sim(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Response {
        let request = self.http.request(method, self.url(path));
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        request.send().await.expect("send")
    }

    pub async fn stats(&self) -> Value {
        let response = self.sim(reqwest::Method::GET, "/_sim/stats", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        body(response).await
    }

    pub async fn set_faults(&self, faults: Value) {
        let response = self.sim(reqwest::Method::POST, "/_sim/faults", Some(faults)).await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    pub async fn reset(&self) {
        let response = self.sim(reqwest::Method::POST, "/_sim/reset", None).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
}

pub fn session_of(triple: &Value) -> Session {
    let text = |name: &str| triple[name].as_str().expect(name).to_owned();
    Session {
        user_id: text("userId"),
        session_token: text("sessionToken"),
        refresh_token: text("refreshToken"),
    }
}

/// The JSON body, after checking the answer says it is JSON.
pub async fn body(response: Response) -> Value {
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/json", "{}", response.status());
    response.json().await.expect("json body")
}

/// Checks an answer is `status` with Ajax's error body, and returns its message.
pub async fn ajax_error(response: Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    let body = body(response).await;
    let message_id = body["messageId"].as_str().expect("messageId");
    assert_eq!(message_id.len(), 36, "a uuid: {message_id}");
    assert!(body["errors"].is_array(), "{body}");
    body["message"].as_str().expect("message").to_owned()
}

pub fn hub_path(user_id: &str, hub_id: &str) -> String {
    format!("/api/user/{user_id}/hubs/{hub_id}")
}
