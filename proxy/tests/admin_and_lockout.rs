//! Operators and attackers: admin rights granted from the command line, the admin API (401 without
//! a token, 403 for a non-admin), suspension that a running proxy enforces within a second, failed-
//! login lockout answered 429, and the worker keeping an active user's Ajax session alive.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

#[tokio::test]
async fn admin_api_needs_a_valid_token_and_the_admin_role() {
    let s = System::start(&[]).await;
    let (user_token, _) = logged_in(&s, "demo@example.com").await;
    let url = format!("{}/v1/admin/users", s.control.url);
    assert_eq!(client().get(&url).send().await.expect("req").status(), 401);
    assert_eq!(
        client()
            .get(&url)
            .bearer_auth("nonsense")
            .send()
            .await
            .expect("req")
            .status(),
        401
    );
    assert_eq!(
        client()
            .get(&url)
            .bearer_auth(&user_token)
            .send()
            .await
            .expect("req")
            .status(),
        403
    );

    let admin = admin_token(&s).await;
    let page: Value = bearer_json(format!("{url}?q=DEMO"), &admin).await;
    assert_eq!(page["total"], 2, "{page}");
    let emails: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|u| u["email"].as_str())
        .collect();
    assert!(
        emails.contains(&"demo@example.com") && emails.contains(&"demo2@example.com"),
        "{emails:?}"
    );
    let first = page["items"][0]["id"].as_str().expect("id");
    let detail = client()
        .get(format!("{url}/{first}"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("req");
    assert_eq!(detail.status(), 200);
    let missing = client()
        .get(format!("{url}/{}", uuid::Uuid::new_v4()))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("req");
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn granting_admin_to_an_unknown_email_fails_clearly() {
    let s = System::start(&[]).await;
    let out = s.control_command(&["admin", "grant", "nobody@example.com"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("log in once"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn suspension_is_refused_by_a_running_proxy_within_one_second_and_lifted_by_unsuspend() {
    let s = System::start(&[]).await;
    let (token, uid) = logged_in(&s, "demo@example.com").await;
    let admin = admin_token(&s).await;
    let hubs = format!("{}/api/user/{uid}/hubs", s.proxy.url);
    assert_eq!(session_get(&hubs, &token).await.status(), 200);

    let user_id = s
        .control
        .sql(&format!("select id from users where ajax_user_id = '{uid}'"));
    let suspended = client()
        .post(format!("{}/v1/admin/users/{user_id}/suspend", s.control.url))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("suspend");
    assert_eq!(suspended.status(), 200);
    let at = Instant::now();
    let status = session_get(&hubs, &token).await.status();
    assert_eq!(status, 401);
    assert!(at.elapsed() < Duration::from_secs(1));
    assert_eq!(
        login(&s, "demo@example.com", "demo").await.status(),
        403,
        "a suspended user cannot log in"
    );

    let lifted = client()
        .post(format!("{}/v1/admin/users/{user_id}/unsuspend", s.control.url))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("unsuspend");
    assert_eq!(lifted.status(), 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (fresh, _) = logged_in(&s, "demo@example.com").await;
    assert_eq!(session_get(&hubs, &fresh).await.status(), 200);
}

#[tokio::test]
async fn me_shows_profile_and_tenant_and_admins_create_and_fill_organisations() {
    let s = System::start(&[]).await;
    let (token, uid) = logged_in(&s, "demo@example.com").await;
    let me: Value = bearer_json(format!("{}/v1/me", s.control.url), &token).await;
    assert_eq!(me["user"]["ajax_user_id"], uid.as_str());
    assert_eq!(me["tenant"]["kind"], "personal");
    assert_eq!(me["tenant"]["plan"], "premium", "the tests' baseline plan");

    let admin = admin_token(&s).await;
    let org = client()
        .post(format!("{}/v1/admin/tenants", s.control.url))
        .bearer_auth(&admin)
        .json(&json!({"name": "Acme Security"}))
        .send()
        .await
        .expect("tenant");
    assert_eq!(org.status(), 201);
    let org: Value = org.json().await.expect("json");
    let user_id = me["user"]["id"].as_str().expect("id");
    let moved = client()
        .post(format!("{}/v1/admin/users/{user_id}/tenant", s.control.url))
        .bearer_auth(&admin)
        .json(&json!({"tenant_id": org["id"]}))
        .send()
        .await
        .expect("move");
    assert_eq!(moved.status(), 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (fresh, _) = logged_in(&s, "demo@example.com").await;
    let me: Value = bearer_json(format!("{}/v1/me", s.control.url), &fresh).await;
    assert_eq!(me["tenant"]["name"], "Acme Security");
    let bad = client()
        .post(format!("{}/v1/admin/tenants", s.control.url))
        .bearer_auth(&admin)
        .json(&json!({"name": ""}))
        .send()
        .await
        .expect("tenant");
    assert_eq!(bad.status(), 422);
}

#[tokio::test]
async fn repeated_wrong_passwords_lock_the_account_with_429_and_retry_after() {
    let s = System::start(&[("ASF_LOCKOUT_MAX_FAILURES", "3"), ("ASF_LOCKOUT_SECS", "60")]).await;
    for _ in 0..3 {
        assert_eq!(login(&s, "demo@example.com", "wrong").await.status(), 401);
    }
    let locked = login(&s, "demo@example.com", "demo").await;
    assert_eq!(locked.status(), 429, "even the right password waits out the lockout");
    let retry: u64 = locked.headers()["retry-after"]
        .to_str()
        .expect("header")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    let logins_before = s.sim.stats().await["login_total"].clone();
    assert_eq!(login(&s, "demo@example.com", "demo").await.status(), 429);
    assert_eq!(
        s.sim.stats().await["login_total"],
        logins_before,
        "a locked login never reaches Ajax"
    );
}

#[tokio::test]
async fn client_ip_lockout_catches_guessing_across_accounts() {
    let s = System::start(&[("ASF_LOCKOUT_MAX_FAILURES", "3"), ("ASF_LOCKOUT_SECS", "60")]).await;
    for name in ["a", "b", "c"] {
        assert_eq!(login(&s, &format!("{name}@sim.test"), "wrong").await.status(), 401);
    }
    assert_eq!(login(&s, "d@sim.test", "secret").await.status(), 429);
}

#[tokio::test]
async fn a_client_cannot_dodge_the_ip_lockout_with_its_own_forwarded_for() {
    let s = System::start(&[("ASF_LOCKOUT_MAX_FAILURES", "2"), ("ASF_LOCKOUT_SECS", "60")]).await;
    for spoof in ["1.1.1.1", "2.2.2.2"] {
        let response = client()
            .post(format!("{}/api/login", s.proxy.url))
            .header("x-forwarded-for", spoof)
            .json(&json!({"login": format!("{spoof}@sim.test"), "passwordHash": sha256_hex("wrong")}))
            .send()
            .await
            .expect("login");
        assert_eq!(response.status(), 401);
    }
    assert_eq!(login(&s, "other@sim.test", "secret").await.status(), 429);
}

#[tokio::test]
async fn the_worker_refreshes_an_active_users_session_before_it_expires() {
    let s = System::start(&[]).await;
    let (token, uid) = logged_in(&s, "demo@example.com").await;
    let hubs = format!("{}/api/user/{uid}/hubs", s.proxy.url);
    assert_eq!(session_get(&hubs, &token).await.status(), 200);
    // Make the stored session look about to expire.
    let user_id = s
        .control
        .sql(&format!("select id from users where ajax_user_id = '{uid}'"));
    let key = s.proxy.keys.ajax_session(&user_id);
    let mut redis = redis_connection().await;
    let sealed: String = redis::cmd("GET").arg(&key).query_async(&mut redis).await.expect("get");
    let mut session = asf_core::session::AjaxSession::open(&s.proxy.secrets, &key, &sealed).expect("open");
    let old_token = session.session_token.clone();
    session.session_expires_at = now() + 30;
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(session.seal(&s.proxy.secrets, &key))
        .query_async(&mut redis)
        .await
        .expect("set");

    let mut worker = s
        .control(&["worker"])
        .env("ASF_WORKER_INTERVAL_SECS", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("worker");
    let deadline = Instant::now() + Duration::from_secs(15);
    let refreshed = loop {
        let sealed: String = redis::cmd("GET").arg(&key).query_async(&mut redis).await.expect("get");
        let current = asf_core::session::AjaxSession::open(&s.proxy.secrets, &key, &sealed).expect("open");
        if current.session_token != old_token {
            break current;
        }
        if Instant::now() > deadline {
            let _ = worker.kill();
            panic!("the worker never refreshed the session");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let _ = worker.kill();
    let _ = worker.wait();
    assert!(refreshed.session_expires_at > now() + 600);
    assert_eq!(s.sim.stats().await["refresh_total"], 1);
    assert_eq!(session_get(&hubs, &token).await.status(), 200);
}

#[tokio::test]
async fn admins_see_the_global_budget_and_the_busiest_tenants() {
    let s = System::start(&[]).await;
    let (token, uid) = logged_in(&s, "demo@example.com").await;
    for _ in 0..3 {
        let status = client()
            .get(format!("{}/api/user/{uid}/hubs", s.proxy.url))
            .header("x-session-token", &token)
            .send()
            .await;
        assert_eq!(status.expect("req").status(), 200);
    }
    let admin = admin_token(&s).await;
    let url = format!("{}/v1/admin/throttle", s.control.url);
    assert_eq!(
        client()
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("req")
            .status(),
        403
    );
    // Usage is tallied by the proxy and written about once a second.
    let deadline = Instant::now() + Duration::from_secs(5);
    let view = loop {
        let view: Value = bearer_json(&url, &admin).await;
        if view["top_tenants"][0]["requests"] == 3 || Instant::now() > deadline {
            break view;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(view["limit"], 600000, "{view}");
    assert_eq!(view["lanes"].as_array().map(Vec::len), Some(3), "{view}");
    assert!(view["granted_in_window"].as_u64().expect("granted") >= 3, "{view}");
    let me: Value = bearer_json(format!("{}/v1/me", s.control.url), &token).await;
    let top = &view["top_tenants"][0];
    assert_eq!(top["tenant_id"], me["tenant"]["id"], "{view}");
    assert_eq!(top["requests"], 3, "{view}");
}

#[tokio::test]
async fn control_plane_answers_carry_security_headers() {
    let s = System::start(&[]).await;
    let (token, _) = logged_in(&s, "demo@example.com").await;
    let me = client()
        .get(format!("{}/v1/me", s.control.url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("me");
    assert_eq!(me.headers()["x-content-type-options"], "nosniff");
    assert_eq!(me.headers()["x-frame-options"], "DENY");
    let csp = me.headers()["content-security-policy"].to_str().expect("csp");
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let jwks = client()
        .get(format!("{}/.well-known/jwks.json", s.control.url))
        .send()
        .await
        .expect("jwks");
    assert_eq!(
        jwks.headers()["cache-control"],
        "max-age=60",
        "a handler's own caching is kept"
    );
}
