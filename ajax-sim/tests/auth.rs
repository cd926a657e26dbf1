//! The key, login, refresh, session and ownership rules, over HTTP.

mod common;

use std::time::Duration;

use ajax_sim::{SimConfig, seed, sha256_hex};
use common::{KEY, Session, TestSim, ajax_error, body, hub_path, session_of, start, start_with};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn a_call_without_the_api_key_is_refused_with_an_ajax_shaped_401() {
    let sim = start().await;
    let response = sim
        .http
        .get(sim.url("/api/user/0000A001/hubs"))
        .send()
        .await
        .expect("send");
    let message = ajax_error(response, StatusCode::UNAUTHORIZED).await;
    assert_eq!(message, "User is not authorized");
}

#[tokio::test]
async fn a_wrong_api_key_is_refused_even_for_login() {
    let sim = start().await;
    let body = json!({"login": seed::DEMO_LOGIN, "passwordHash": sha256_hex("demo")});
    let response = sim
        .http
        .post(sim.url("/api/login"))
        .header("X-Api-Key", format!("{KEY}x"))
        .json(&body)
        .send()
        .await
        .expect("send");
    let message = ajax_error(response, StatusCode::UNAUTHORIZED).await;
    assert_eq!(message, "User is not authorized");
    assert_eq!(sim.stats().await["login_total"], 0);
}

#[tokio::test]
async fn demo_logs_in_with_the_sha256_of_its_password_and_gets_a_hex_triple() {
    let sim = start().await;
    let response = sim.login(seed::DEMO_LOGIN, seed::DEMO_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let triple = body(response).await;
    assert_eq!(triple["userId"], seed::DEMO_USER_ID);
    for field in ["sessionToken", "refreshToken"] {
        let token = triple[field].as_str().expect(field);
        assert!(token.len() >= 16 && token.chars().all(|c| c.is_ascii_hexdigit()));
    }
    assert_ne!(triple["sessionToken"], triple["refreshToken"]);
    assert!(triple.get("apiKey").is_none());
    assert_eq!(sim.stats().await["login_total"], 1);
}

#[tokio::test]
async fn a_login_with_a_totp_and_no_role_is_accepted() {
    let sim = start().await;
    let body = json!({"login": seed::DEMO2_LOGIN, "passwordHash": sha256_hex("demo"), "totp": "123456"});
    let response = sim
        .call(Method::POST, "/api/login")
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(session_of(&common::body(response).await).user_id, seed::DEMO2_USER_ID);
}

#[tokio::test]
async fn a_wrong_password_is_refused_with_401() {
    let sim = start().await;
    let response = sim.login(seed::DEMO_LOGIN, "not-demo").await;
    let message = ajax_error(response, StatusCode::UNAUTHORIZED).await;
    assert_eq!(message, "Wrong login or password");
    let unknown = sim.login("nobody@example.com", "demo").await;
    ajax_error(unknown, StatusCode::UNAUTHORIZED).await;
    assert_eq!(sim.stats().await["login_total"], 0);
}

#[tokio::test]
async fn a_malformed_login_body_is_a_400_and_an_empty_login_a_422() {
    let sim = start().await;
    let response = sim
        .call(Method::POST, "/api/login")
        .body("{not json")
        .send()
        .await
        .expect("send");
    ajax_error(response, StatusCode::BAD_REQUEST).await;
    let missing_hash = sim
        .call(Method::POST, "/api/login")
        .json(&json!({"login": "demo@example.com"}))
        .send()
        .await
        .expect("send");
    ajax_error(missing_hash, StatusCode::BAD_REQUEST).await;
    let empty = sim
        .call(Method::POST, "/api/login")
        .json(&json!({"login": "", "passwordHash": "ab"}))
        .send()
        .await
        .expect("send");
    ajax_error(empty, StatusCode::UNPROCESSABLE_ENTITY).await;
}

#[tokio::test]
async fn refresh_rotates_both_tokens_and_the_old_session_token_is_refused() {
    let sim = start().await;
    let first = sim.login_demo().await;
    let response = sim.refresh(&first.user_id, &first.refresh_token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let second = session_of(&body(response).await);
    assert_eq!(second.user_id, first.user_id);
    assert_ne!(second.session_token, first.session_token);
    assert_ne!(second.refresh_token, first.refresh_token);
    let hubs = format!("/api/user/{}/hubs", first.user_id);
    let old = sim.get(&hubs, &first).await;
    let message = ajax_error(old, StatusCode::UNAUTHORIZED).await;
    assert_eq!(message, "Session token is invalid or expired");
    assert_eq!(sim.get(&hubs, &second).await.status(), StatusCode::OK);
    assert_eq!(sim.stats().await["refresh_total"], 1);
}

#[tokio::test]
async fn a_used_refresh_token_is_refused_with_401() {
    let sim = start().await;
    let session = sim.login_demo().await;
    let rotated = sim.refresh(&session.user_id, &session.refresh_token).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let reused = sim.refresh(&session.user_id, &session.refresh_token).await;
    ajax_error(reused, StatusCode::UNAUTHORIZED).await;
    let malformed = sim
        .call(Method::POST, "/api/refresh")
        .json(&json!({"userId": session.user_id}))
        .send()
        .await
        .expect("send");
    ajax_error(malformed, StatusCode::BAD_REQUEST).await;
    assert_eq!(sim.stats().await["refresh_total"], 1);
}

#[tokio::test]
async fn user_calls_need_a_live_session_token() {
    let sim = start().await;
    let session = sim.login_demo().await;
    let path = format!("/api/user/{}/hubs", session.user_id);
    let missing = sim.call(Method::GET, &path).send().await.expect("send");
    ajax_error(missing, StatusCode::UNAUTHORIZED).await;
    let forged = Session {
        session_token: "00".repeat(16),
        ..session.clone()
    };
    ajax_error(sim.get(&path, &forged).await, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn a_session_dies_after_its_ttl_and_refresh_revives_it() {
    let config = SimConfig {
        session_ttl: Duration::from_millis(300),
        ..SimConfig::new(KEY)
    };
    let sim = start_with(config).await;
    let session = sim.login_demo().await;
    let path = format!("/api/user/{}/hubs", session.user_id);
    assert_eq!(sim.get(&path, &session).await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(400)).await;
    ajax_error(sim.get(&path, &session).await, StatusCode::UNAUTHORIZED).await;
    let renewed = sim.refresh(&session.user_id, &session.refresh_token).await;
    let renewed = session_of(&body(renewed).await);
    assert_eq!(sim.get(&path, &renewed).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn reading_another_users_hub_is_forbidden() {
    let sim = start().await;
    let demo = sim.login_demo().await;
    let not_mine = sim.get(&hub_path(&demo.user_id, seed::DEMO2_HUB_ID), &demo).await;
    assert_eq!(ajax_error(not_mine, StatusCode::FORBIDDEN).await, "Forbidden");
    let other_user = sim.get(&hub_path(seed::DEMO2_USER_ID, seed::DEMO2_HUB_ID), &demo).await;
    ajax_error(other_user, StatusCode::FORBIDDEN).await;
    let other_space = format!("/api/user/{}/spaces/{}", demo.user_id, seed::DEMO2_SPACE_ID);
    ajax_error(sim.get(&other_space, &demo).await, StatusCode::FORBIDDEN).await;
    let mine = sim.get(&hub_path(&demo.user_id, seed::DEMO_HUB_ID), &demo).await;
    assert_eq!(mine.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_expire_knob_kills_the_session_but_not_the_refresh_token() {
    let sim = start().await;
    let session = sim.login_demo().await;
    let expire = json!({"userId": session.user_id});
    let response = sim.sim(Method::POST, "/_sim/sessions/expire", Some(expire)).await;
    assert_eq!(body(response).await["sessionsExpired"], 1);
    let path = format!("/api/user/{}/hubs", session.user_id);
    ajax_error(sim.get(&path, &session).await, StatusCode::UNAUTHORIZED).await;
    let renewed = sim.refresh(&session.user_id, &session.refresh_token).await;
    assert_eq!(renewed.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_expire_refresh_knob_leaves_only_a_new_login() {
    let sim = start().await;
    let session = sim.login_demo().await;
    let expire = json!({"userId": session.user_id});
    let response = sim
        .sim(Method::POST, "/_sim/sessions/expire-refresh", Some(expire))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let path = format!("/api/user/{}/hubs", session.user_id);
    ajax_error(sim.get(&path, &session).await, StatusCode::UNAUTHORIZED).await;
    let refused = sim.refresh(&session.user_id, &session.refresh_token).await;
    ajax_error(refused, StatusCode::UNAUTHORIZED).await;
    let unknown = json!({"userId": "FFFFFFFF"});
    let response = sim.sim(Method::POST, "/_sim/sessions/expire", Some(unknown)).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_sim_test_user_is_created_at_first_login_with_a_hub_of_its_own() {
    let sim: TestSim = start().await;
    let wrong = sim.login("load-1@sim.test", "demo").await;
    ajax_error(wrong, StatusCode::UNAUTHORIZED).await;
    let first = sim.login_as("load-1@sim.test", seed::SIM_TEST_PASSWORD).await;
    let second = sim.login_as("load-2@sim.test", seed::SIM_TEST_PASSWORD).await;
    let again = sim.login_as("load-1@sim.test", seed::SIM_TEST_PASSWORD).await;
    assert_eq!(first.user_id, again.user_id);
    assert_ne!(first.user_id, second.user_id);
    let hubs = body(sim.get(&format!("/api/user/{}/hubs", first.user_id), &first).await).await;
    let hubs = hubs.as_array().expect("list");
    assert_eq!(hubs.len(), 1);
    let hub_id = hubs[0]["hubId"].as_str().expect("hubId");
    assert_eq!(hubs[0]["hubBindingRole"], "MASTER");
    let hub = body(sim.get(&hub_path(&first.user_id, hub_id), &first).await).await;
    assert_eq!(hub["id"], hub_id);
    let theirs = sim.get(&hub_path(&second.user_id, hub_id), &second).await;
    ajax_error(theirs, StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn logout_is_not_an_ajax_endpoint() {
    let sim = start().await;
    let session = sim.login_demo().await;
    let response = sim.post("/api/logout", &session, json!({})).await;
    ajax_error(response, StatusCode::NOT_FOUND).await;
}
