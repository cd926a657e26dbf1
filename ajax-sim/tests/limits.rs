//! The rate limit and its witness, the fault knobs, and what `/_sim/stats` records.

mod common;

use std::time::{Duration, Instant};

use ajax_sim::{SimConfig, seed};
use common::{KEY, Session, TestSim, ajax_error, body, hub_path, start, start_with};
use reqwest::{Method, StatusCode};
use serde_json::json;

fn hubs(session: &Session) -> String {
    format!("/api/user/{}/hubs", session.user_id)
}

async fn limited(rate: &str) -> (TestSim, Session) {
    let config = SimConfig::new(KEY).with_rate(rate.parse().expect("rate"));
    let sim = start_with(config).await;
    let session = sim.login_demo().await;
    sim.reset().await;
    (sim, session)
}

#[tokio::test]
async fn the_sixth_call_in_a_five_per_second_window_gets_429_with_retry_after() {
    let (sim, session) = limited("5/1s").await;
    for _ in 0..5 {
        assert_eq!(sim.get(&hubs(&session), &session).await.status(), StatusCode::OK);
    }
    let refused = sim.get(&hubs(&session), &session).await;
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("whole seconds");
    assert_eq!(retry_after, 1);
    ajax_error(refused, StatusCode::TOO_MANY_REQUESTS).await;
    let stats = sim.stats().await;
    assert_eq!(stats["over_limit_total"], 1);
    assert_eq!(stats["max_in_window"], 5);
    assert_eq!(stats["window_ms"], 1000);
    assert_eq!(stats["requests_total"], 6);
    assert_eq!(stats["accepted_total"], 5);
    assert_eq!(stats["by_operation"]["getHubBindings"], 5);
}

#[tokio::test]
async fn the_window_rolls_so_calls_are_accepted_again_once_it_has_passed() {
    let (sim, session) = limited("2/500ms").await;
    for _ in 0..2 {
        assert_eq!(sim.get(&hubs(&session), &session).await.status(), StatusCode::OK);
    }
    let refused = sim.get(&hubs(&session), &session).await.status();
    assert_eq!(refused, StatusCode::TOO_MANY_REQUESTS);
    tokio::time::sleep(Duration::from_millis(550)).await;
    assert_eq!(sim.get(&hubs(&session), &session).await.status(), StatusCode::OK);
    assert_eq!(sim.stats().await["max_in_window"], 2);
}

#[tokio::test]
async fn max_in_window_is_measured_without_a_rate_limit() {
    let sim = start().await;
    let session = sim.login_demo().await;
    for _ in 0..6 {
        sim.get(&hubs(&session), &session).await;
    }
    let stats = sim.stats().await;
    assert_eq!(stats["max_in_window"], 7, "the login and six reads");
    assert_eq!(stats["window_ms"], 60_000);
    assert_eq!(stats["over_limit_total"], 0);
    assert_eq!(stats["rate_limit"], serde_json::Value::Null);
}

#[tokio::test]
async fn calls_with_a_bad_key_are_not_counted_against_the_limit() {
    let (sim, session) = limited("1/60s").await;
    for _ in 0..3 {
        let response = sim
            .http
            .get(sim.url(&hubs(&session)))
            .header("X-Api-Key", "wrong")
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(sim.get(&hubs(&session), &session).await.status(), StatusCode::OK);
    let stats = sim.stats().await;
    assert_eq!(stats["requests_total"], 1);
    assert_eq!(stats["by_status"]["401"], 3);
}

#[tokio::test]
async fn force_429_answers_the_next_calls_with_retry_after_one() {
    let sim = start().await;
    let session = sim.login_demo().await;
    sim.set_faults(json!({"force_429": 2})).await;
    for _ in 0..2 {
        let response = sim.get(&hubs(&session), &session).await;
        assert_eq!(response.headers()["retry-after"], "1");
        ajax_error(response, StatusCode::TOO_MANY_REQUESTS).await;
    }
    assert_eq!(sim.get(&hubs(&session), &session).await.status(), StatusCode::OK);
    let stats = sim.stats().await;
    assert_eq!(stats["forced_429_total"], 2);
    assert_eq!(stats["over_limit_total"], 0);
}

#[tokio::test]
async fn the_latency_knob_delays_every_api_answer() {
    let sim = start().await;
    let session = sim.login_demo().await;
    sim.set_faults(json!({"latency_ms": 300})).await;
    let started = Instant::now();
    assert_eq!(sim.get(&hubs(&session), &session).await.status(), StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_error_rate_of_one_answers_ajax_shaped_server_errors() {
    let sim = start().await;
    let session = sim.login_demo().await;
    sim.set_faults(json!({"error_rate": 1.0})).await;
    for _ in 0..5 {
        let response = sim.get(&hubs(&session), &session).await;
        let status = response.status();
        assert!([500, 502, 503].contains(&status.as_u16()), "{status}");
        ajax_error(response, status).await;
    }
    assert_eq!(sim.stats().await["injected_errors_total"], 5);
}

#[tokio::test]
async fn an_offline_hub_answers_503_for_its_own_calls_only() {
    let sim = start().await;
    let session = sim.login_demo().await;
    sim.set_faults(json!({"hub_offline": [seed::DEMO_HUB_ID]})).await;
    let offline = sim.get(&hub_path(&session.user_id, seed::DEMO_HUB_ID), &session).await;
    assert_eq!(
        ajax_error(offline, StatusCode::SERVICE_UNAVAILABLE).await,
        "Hub is offline"
    );
    let online = sim
        .get(&hub_path(&session.user_id, seed::DEMO_GROUPS_HUB_ID), &session)
        .await;
    assert_eq!(online.status(), StatusCode::OK);
    let not_mine = sim.get(&hub_path(&session.user_id, seed::DEMO2_HUB_ID), &session).await;
    assert_eq!(not_mine.status(), StatusCode::FORBIDDEN, "ownership is checked first");
}

#[tokio::test]
async fn limit_as_200_signals_the_limit_in_a_200_body() {
    let (sim, session) = limited("1/60s").await;
    sim.set_faults(json!({"limit_as_200": true})).await;
    assert_eq!(sim.get(&hubs(&session), &session).await.status(), StatusCode::OK);
    let over = sim.get(&hubs(&session), &session).await;
    let message = ajax_error(over, StatusCode::OK).await;
    assert_eq!(message, "You have exceeded the limit of requests");
    assert_eq!(sim.stats().await["over_limit_total"], 1);
}

#[tokio::test]
async fn the_faults_endpoint_shows_sets_and_clears_the_knobs() {
    let sim = start().await;
    sim.set_faults(json!({"latency_ms": 5, "hub_offline": ["0001A001"]}))
        .await;
    sim.set_faults(json!({"force_429": 3})).await;
    let current = body(sim.sim(Method::GET, "/_sim/faults", None).await).await;
    assert_eq!(current["latency_ms"], 5);
    assert_eq!(current["force_429"], 3);
    assert_eq!(current["hub_offline"], json!(["0001A001"]));
    let bad = sim
        .sim(Method::POST, "/_sim/faults", Some(json!({"error_rate": 2.0})))
        .await;
    ajax_error(bad, StatusCode::UNPROCESSABLE_ENTITY).await;
    let typo = sim.sim(Method::POST, "/_sim/faults", Some(json!({"latency": 5}))).await;
    ajax_error(typo, StatusCode::BAD_REQUEST).await;
    let cleared = sim.sim(Method::DELETE, "/_sim/faults", None).await;
    assert_eq!(body(cleared).await["force_429"], 0);
    let current = body(sim.sim(Method::GET, "/_sim/faults", None).await).await;
    assert_eq!(current["latency_ms"], 0);
}

#[tokio::test]
async fn stats_record_the_headers_each_call_carried_but_never_the_key() {
    let sim = start().await;
    let session = sim.login_demo().await;
    let response = sim
        .user(Method::GET, &hubs(&session), &session)
        .header("Authorization", "Bearer client-token")
        .header("X-Request-Id", "req-1")
        .header("X-Forwarded-For", "203.0.113.7")
        .header("User-Agent", "test-agent")
        .header("X-Client-Version", "2.0")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    let stats = sim.stats().await;
    let last = stats["last_requests"].as_array().expect("list").last().expect("one");
    assert_eq!(last["method"], "GET");
    assert_eq!(last["path"], hubs(&session));
    assert_eq!(last["operation_id"], "getHubBindings");
    assert_eq!(last["status"], 200);
    assert_eq!(last["api_key_ok"], true);
    assert_eq!(last["session_token"], session.session_token.as_str());
    assert_eq!(last["authorization"], "Bearer client-token");
    assert_eq!(last["x_request_id"], "req-1");
    assert_eq!(last["x_forwarded_for"], "203.0.113.7");
    assert_eq!(last["user_agent"], "test-agent");
    assert!(last["host"].as_str().expect("host").starts_with("127.0.0.1:"));
    let others = last["other_headers"].as_array().expect("names");
    assert!(others.contains(&json!("x-client-version")), "{others:?}");
    assert!(!others.contains(&json!("x-api-key")));
    assert!(!stats.to_string().contains(KEY), "the key never shows");
    let first = &stats["last_requests"][0];
    assert_eq!(first["operation_id"], "login");
    assert_eq!(first["session_token"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_call_with_a_wrong_key_is_recorded_as_such() {
    let sim = start().await;
    let response = sim
        .http
        .get(sim.url("/api/user/0000A001/hubs"))
        .header("X-Api-Key", "nope")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let stats = sim.stats().await;
    assert_eq!(stats["last_requests"][0]["api_key_ok"], false);
    assert_eq!(stats["last_requests"][0]["status"], 401);
    assert_eq!(stats["requests_total"], 0);
}

#[tokio::test]
async fn reset_clears_counters_and_recorded_requests_but_keeps_sessions() {
    let sim = start().await;
    let session = sim.login_demo().await;
    sim.get(&hubs(&session), &session).await;
    sim.reset().await;
    let stats = sim.stats().await;
    assert_eq!(stats["requests_total"], 0);
    assert_eq!(stats["max_in_window"], 0);
    assert_eq!(stats["login_total"], 0);
    assert_eq!(stats["last_requests"], json!([]));
    assert_eq!(stats["by_operation"], json!({}));
    assert_eq!(sim.get(&hubs(&session), &session).await.status(), StatusCode::OK);
}
