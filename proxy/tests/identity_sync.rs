//! The whole system end to end: a client logs in through the proxy with its Ajax credentials
//! (checked by ajax-sim, the user provisioned by asf-control in a fresh PostgreSQL database), reads
//! and arms with the project's token, refreshes, and logs out.

mod support;

use serde_json::{Value, json};
use support::*;

#[tokio::test]
async fn login_through_the_proxy_provisions_and_then_reads_arms_refreshes_and_logs_out() {
    let s = System::start(&[]).await;
    let response = login(&s, "demo@example.com", "demo").await;
    assert_eq!(response.status(), 200);
    let pair: Value = response.json().await.expect("json");
    assert!(pair.get("apiKey").is_none(), "{pair}");
    let token = pair["sessionToken"].as_str().expect("token").to_owned();
    assert_eq!(token.split('.').count(), 3, "our own JWT, not Ajax's token");
    let uid = pair["userId"].as_str().expect("uid").to_owned();
    assert_eq!(
        s.control
            .sql(&format!("select count(*) from users where ajax_user_id = '{uid}'")),
        "1"
    );
    // Provisioned on the free plan, raised to the tests' baseline plan.
    assert_eq!(
        s.control.sql("select plan || ' ' || plan_source from tenants"),
        "premium baseline"
    );

    let hubs: Value = session_get(format!("{}/api/user/{uid}/hubs", s.proxy.url), &token)
        .await
        .json()
        .await
        .expect("json");
    let hub = hubs[0]["hubId"].as_str().expect("hub").to_owned();
    let arm = client()
        .put(format!("{}/api/user/{uid}/hubs/{hub}/commands/arming", s.proxy.url))
        .header("x-session-token", &token)
        .json(&json!({"command": "ARM", "ignoreProblems": true}))
        .send()
        .await
        .expect("arm");
    assert_eq!(arm.status(), 204);

    let refreshed = client()
        .post(format!("{}/api/refresh", s.proxy.url))
        .header("x-session-token", &token)
        .json(&json!({"refreshToken": pair["refreshToken"], "userId": uid}))
        .send()
        .await
        .expect("refresh");
    assert_eq!(refreshed.status(), 200);
    let second: Value = refreshed.json().await.expect("json");
    assert_ne!(second["refreshToken"], pair["refreshToken"]);
    let new_token = second["sessionToken"].as_str().expect("token").to_owned();
    let read = session_get(format!("{}/api/user/{uid}/hubs", s.proxy.url), &new_token).await;
    assert_eq!(read.status(), 200);

    let logout = client()
        .post(format!("{}/api/logout", s.proxy.url))
        .bearer_auth(&new_token)
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), 204);
    let after = session_get(format!("{}/api/user/{uid}/hubs", s.proxy.url), &new_token).await;
    assert_eq!(after.status(), 401);
    let stats = s.sim.stats().await;
    assert_eq!(stats["login_total"], 1, "{stats}");
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_its_family() {
    let s = System::start(&[]).await;
    let pair: Value = login(&s, "demo@example.com", "demo").await.json().await.expect("json");
    let refresh = |token: Value| {
        let url = format!("{}/api/refresh", s.proxy.url);
        let uid = pair["userId"].clone();
        async move {
            client()
                .post(url)
                .json(&json!({"refreshToken": token, "userId": uid}))
                .send()
                .await
                .expect("refresh")
        }
    };
    let first = refresh(pair["refreshToken"].clone()).await;
    assert_eq!(first.status(), 200);
    let rotated: Value = first.json().await.expect("json");
    let reuse = refresh(pair["refreshToken"].clone()).await;
    assert_eq!(reuse.status(), 401);
    // The thief's reuse revoked the family: the legitimate, newer token is dead too.
    assert_eq!(refresh(rotated["refreshToken"].clone()).await.status(), 401);
}

#[tokio::test]
async fn wrong_password_is_401_and_provisions_nothing() {
    let s = System::start(&[]).await;
    let response = login(&s, "demo@example.com", "wrong").await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["message"], "Wrong login or password");
    assert_eq!(s.control.sql("select count(*) from users"), "0");
    assert_eq!(s.control.sql("select count(*) from tenants"), "0");
}

#[tokio::test]
async fn malformed_login_bodies_get_clear_400_and_422() {
    let s = System::start(&[]).await;
    let garbage = client()
        .post(format!("{}/api/login", s.proxy.url))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("login");
    assert_eq!(garbage.status(), 400);
    let plain = client()
        .post(format!("{}/api/login", s.proxy.url))
        .json(&json!({"login": "demo@example.com", "passwordHash": "demo"}))
        .send()
        .await
        .expect("login");
    assert_eq!(plain.status(), 422);
    assert!(
        plain.json::<Value>().await.expect("json")["message"]
            .as_str()
            .expect("msg")
            .contains("passwordHash")
    );
    assert_eq!(
        s.sim.stats().await["login_total"],
        0,
        "malformed logins never reach Ajax"
    );
}

#[tokio::test]
async fn ajax_outage_during_login_is_502_or_503_never_500() {
    let s = System::start(&[]).await;
    client()
        .post(format!("{}/_sim/faults", s.sim.url))
        .json(&json!({"error_rate": 1.0}))
        .send()
        .await
        .expect("faults");
    let response = login(&s, "demo@example.com", "demo").await;
    assert!(matches!(response.status().as_u16(), 502..=504), "{}", response.status());
    assert_eq!(s.control.sql("select count(*) from users"), "0");
}

#[tokio::test]
async fn fifty_concurrent_requests_after_ajax_session_expiry_cause_exactly_one_refresh() {
    let s = System::start(&[]).await;
    let (token, uid) = logged_in(&s, "demo@example.com").await;
    client()
        .post(format!("{}/_sim/sessions/expire", s.sim.url))
        .json(&json!({"userId": uid}))
        .send()
        .await
        .expect("expire");
    s.sim.reset().await;
    let url = format!("{}/api/user/{uid}/hubs", s.proxy.url);
    let requests = (0..50).map(|_| {
        let (url, token) = (url.clone(), token.clone());
        tokio::spawn(async move { session_get(url, &token).await.status() })
    });
    for handle in requests.collect::<Vec<_>>() {
        assert_eq!(handle.await.expect("join"), 200);
    }
    let stats = s.sim.stats().await;
    assert_eq!(stats["refresh_total"], 1, "{stats}");
}

#[tokio::test]
async fn a_dead_ajax_refresh_token_ends_the_session_with_401() {
    let s = System::start(&[]).await;
    let (token, uid) = logged_in(&s, "demo@example.com").await;
    client()
        .post(format!("{}/_sim/sessions/expire-refresh", s.sim.url))
        .json(&json!({"userId": uid}))
        .send()
        .await
        .expect("expire");
    let url = format!("{}/api/user/{uid}/hubs", s.proxy.url);
    let first = session_get(&url, &token).await;
    assert_eq!(first.status(), 401);
    // The stored session is gone and the user's tokens are refused from now on.
    let again = session_get(&url, &token).await;
    assert_eq!(again.status(), 401);
}

#[tokio::test]
async fn ajax_tokens_in_redis_are_sealed() {
    let s = System::start(&[]).await;
    let (_, uid) = logged_in(&s, "demo@example.com").await;
    let user_id = s
        .control
        .sql(&format!("select id from users where ajax_user_id = '{uid}'"));
    let sim_login = s.sim.stats().await;
    let mut redis = redis_connection().await;
    let raw: String = redis::cmd("GET")
        .arg(s.proxy.keys.ajax_session(&user_id))
        .query_async(&mut redis)
        .await
        .expect("get");
    assert!(
        !raw.contains("session_token") && !raw.contains("refresh"),
        "stored in clear: {raw}"
    );
    let recorded = sim_login["last_requests"].to_string();
    assert!(!recorded.is_empty());
    let opened = asf_core::session::AjaxSession::open(&s.proxy.secrets, &s.proxy.keys.ajax_session(&user_id), &raw);
    assert!(opened.is_ok(), "opens with ASF_SECRETS_KEY");
    let other =
        asf_core::secrets::SecretsKey::from_base64(&asf_core::secrets::SecretsKey::generate_base64()).expect("key");
    assert!(asf_core::session::AjaxSession::open(&other, &s.proxy.keys.ajax_session(&user_id), &raw).is_err());
}

#[tokio::test]
async fn a_running_proxy_accepts_tokens_of_both_keys_across_a_rotation() {
    let s = System::start(&[]).await;
    let (old_token, uid) = logged_in(&s, "demo@example.com").await;
    let rotate = s
        .control(&["keys", "rotate"])
        .env("ASF_KEY_PUBLISH_AHEAD_SECS", "0")
        .output()
        .expect("rotate");
    assert!(rotate.status.success(), "{}", String::from_utf8_lossy(&rotate.stderr));
    let new_kid = String::from_utf8_lossy(&rotate.stdout).trim().to_owned();
    // The signer caches its key for a few seconds; wait until tokens come signed by the new key.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let new_token = loop {
        let (token, _) = logged_in(&s, "demo@example.com").await;
        let header = jsonwebtoken::decode_header(&token).expect("header");
        if header.kid.as_deref() == Some(new_kid.as_str()) {
            break token;
        }
        assert!(std::time::Instant::now() < deadline, "new key never used");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    let url = format!("{}/api/user/{uid}/hubs", s.proxy.url);
    for token in [&old_token, &new_token] {
        let status = session_get(&url, token).await.status();
        assert_eq!(status, 200);
    }
}

#[tokio::test]
async fn a_second_login_updates_the_user_instead_of_provisioning_again() {
    let s = System::start(&[]).await;
    let (_, uid) = logged_in(&s, "demo@example.com").await;
    let first = s
        .control
        .sql(&format!("select last_login_at from users where ajax_user_id = '{uid}'"));
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let _ = logged_in(&s, "demo@example.com").await;
    assert_eq!(s.control.sql("select count(*) from users"), "1");
    assert_eq!(s.control.sql("select count(*) from tenants"), "1");
    let second = s
        .control
        .sql(&format!("select last_login_at from users where ajax_user_id = '{uid}'"));
    assert_ne!(first, second, "last login must move forward");
}

#[tokio::test]
async fn logout_works_with_an_expired_access_token() {
    let s = System::start(&[]).await;
    let (token, uid) = logged_in(&s, "demo@example.com").await;
    // Mint an expired token with the control plane's own active key, as if 15 minutes had passed.
    let row = s
        .control
        .sql("select kid || ' ' || private_key_sealed from signing_keys order by activates_at desc limit 1");
    let (kid, sealed) = row.split_once(' ').expect("key row");
    let secrets = asf_core::secrets::SecretsKey::from_base64(&s.shared.secrets_b64).expect("key");
    let der = secrets
        .open(&format!("signing-key:{kid}"), sealed)
        .expect("signing key opens");
    let mut claims: asf_core::claims::AccessClaims = {
        use base64::Engine;
        let payload = token.split('.').nth(1).expect("payload");
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("b64");
        serde_json::from_slice(&json).expect("claims")
    };
    claims.jti = uuid::Uuid::new_v4().to_string();
    claims.iat -= 3600;
    claims.nbf -= 3600;
    claims.exp = now() - 1800;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    let expired = jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_ed_der(&der)).expect("sign");

    let hubs = format!("{}/api/user/{uid}/hubs", s.proxy.url);
    assert_eq!(session_get(&hubs, &expired).await.status(), 401);
    let logout = client()
        .post(format!("{}/api/logout", s.proxy.url))
        .header("x-session-token", &expired)
        .send()
        .await;
    assert_eq!(logout.expect("logout").status(), 204);
    // The session behind it is gone: the live token of the same login stops working too.
    assert_eq!(session_get(&hubs, &token).await.status(), 401);
    let family = claims.sid.expect("family");
    assert_eq!(
        s.control.sql(&format!(
            "select revoked_reason from refresh_families where id = '{family}'"
        )),
        "logout"
    );
}
