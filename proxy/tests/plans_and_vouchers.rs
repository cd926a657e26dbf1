//! Plans enforced by a running proxy (402 naming the plan that would allow the call, never
//! forwarded; an upgrade visible within a second), vouchers (generation, exactly-once redemption
//! under concurrency, every refusal, the lifetime cap, the attempt limit, never below a paid
//! plan), plan expiry at its exact time, admin plan edits, and notifications.

mod support;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::*;

/// A system whose tenants start on the free plan.
async fn free_system(control_env: &[(&str, &str)]) -> System {
    let env: Vec<(&str, &str)> = [("ASF_BASELINE_PLAN", "free")]
        .into_iter()
        .chain(control_env.iter().copied())
        .collect();
    System::start(&env).await
}

async fn user(s: &System, email: &str) -> (String, String) {
    let response = login(s, email, "secret").await;
    assert_eq!(response.status(), 200, "login of {email}");
    let pair: Value = response.json().await.expect("json");
    (
        pair["sessionToken"].as_str().expect("token").to_owned(),
        pair["userId"].as_str().expect("uid").to_owned(),
    )
}

async fn admin(s: &System) -> String {
    let _ = user(s, "boss@sim.test").await;
    assert!(s.control_command(&["admin", "grant", "boss@sim.test"]).status.success());
    user(s, "boss@sim.test").await.0
}

async fn vouchers(s: &System, admin: &str, body: Value) -> Vec<String> {
    let response = client()
        .post(format!("{}/v1/admin/vouchers", s.control.url))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await
        .expect("generate");
    assert_eq!(response.status(), 201);
    let batch: Value = response.json().await.expect("json");
    batch["codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect()
}

async fn redeem(s: &System, token: &str, code: &str) -> (StatusCode, Value) {
    let response = client()
        .post(format!("{}/v1/vouchers/redeem", s.control.url))
        .bearer_auth(token)
        .json(&json!({ "code": code }))
        .send()
        .await
        .expect("redeem");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn code_of(answer: &Value) -> &str {
    answer["errors"][0]["code"].as_str().unwrap_or("")
}

async fn arm(s: &System, token: &str, uid: &str) -> reqwest::Response {
    disarm(s, token, uid).await
}

#[tokio::test]
async fn a_call_the_plan_lacks_is_402_never_forwarded_and_an_upgrade_shows_within_a_second() {
    let s = free_system(&[]).await;
    let (token, uid) = logged_in(&s, "demo@example.com").await;
    assert_eq!(
        session_get(format!("{}/api/user/{uid}/hubs", s.proxy.url), &token)
            .await
            .status(),
        200
    );
    s.sim.reset().await;

    let devices = session_get(format!("{}/api/user/{uid}/hubs/0001A001/devices", s.proxy.url), &token).await;
    assert_eq!(devices.status(), 402);
    let body: Value = devices.json().await.expect("json");
    assert_eq!(
        (body["plan"].as_str(), body["requiredPlan"].as_str()),
        (Some("free"), Some("basic"))
    );
    assert_eq!(body["upgradeUrl"], "/v1/billing");
    assert_eq!(code_of(&body), "plan_upgrade_required");
    let armed = arm(&s, &token, &uid).await;
    assert_eq!(armed.status(), 402);
    assert_eq!(armed.json::<Value>().await.expect("json")["requiredPlan"], "pro");
    assert_eq!(s.sim.stats().await["requests_total"], 0, "nothing reached Ajax");

    let admin = admin(&s).await;
    let code = vouchers(&s, &admin, json!({"count": 1, "plan": "pro", "duration_days": 30}))
        .await
        .remove(0);
    let (status, redeemed) = redeem(&s, &token, &code).await;
    assert_eq!(status, 200, "{redeemed}");
    assert_eq!(redeemed["plan"], "pro");
    let upgraded = Instant::now();
    loop {
        let status = arm(&s, &token, &uid).await.status();
        if status.is_success() {
            break;
        }
        assert_eq!(status, 402);
        assert!(
            upgraded.elapsed() < Duration::from_secs(1),
            "the upgrade took over a second"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(upgraded.elapsed() < Duration::from_secs(1));
    // Pro does not include settings: the answer names premium.
    let settings = client()
        .put(format!("{}/api/user/{uid}/hubs/0001A001/rooms/1", s.proxy.url))
        .bearer_auth(&token)
        .json(&json!({"roomName": "Hall"}))
        .send()
        .await
        .expect("settings");
    if settings.status() == 402 {
        assert_eq!(settings.json::<Value>().await.expect("json")["requiredPlan"], "premium");
    }
    let metrics = metrics_containing(&s.proxy.metrics_url, &[r#"decision="refused_plan""#]).await;
    assert!(
        metrics.contains(r#"decision="refused_plan",status="402"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_single_use_code_redeemed_a_hundred_times_at_once_succeeds_once() {
    let s = free_system(&[("ASF_VOUCHER_ATTEMPTS_PER_IP_HOUR", "1000")]).await;
    let admin = admin(&s).await;
    let code = vouchers(&s, &admin, json!({"count": 1, "plan": "basic", "duration_days": 7}))
        .await
        .remove(0);
    let mut tokens = Vec::new();
    for i in 0..10 {
        tokens.push(user(&s, &format!("race{i}@sim.test")).await.0);
    }
    let attempts: Vec<_> = (0..100)
        .map(|i| {
            let (url, token, code) = (
                format!("{}/v1/vouchers/redeem", s.control.url),
                tokens[i % 10].clone(),
                code.clone(),
            );
            tokio::spawn(async move {
                client()
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({ "code": code }))
                    .send()
                    .await
                    .expect("redeem")
                    .status()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.expect("join"));
    }
    let successes = statuses.iter().filter(|s| s.is_success()).count();
    assert_eq!(successes, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| s.is_success() || *s == StatusCode::CONFLICT || *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert_eq!(s.control.sql("select count(*) from voucher_grants"), "1");
    assert_eq!(s.control.sql("select redemptions from vouchers"), "1");
}

#[tokio::test]
async fn every_way_a_redemption_can_fail_has_its_own_answer() {
    let s = free_system(&[("ASF_VOUCHER_LIFETIME_CAP", "2")]).await;
    let admin = admin(&s).await;
    let (token, _) = user(&s, "alice@sim.test").await;
    let codes = vouchers(
        &s,
        &admin,
        json!({"count": 6, "plan": "basic", "duration_days": 3, "redeem_by": "2099-12-31"}),
    )
    .await;
    assert!(
        codes.iter().all(|c| c.len() == 15 && !c.contains(['0', '1', 'O', 'I'])),
        "{codes:?}"
    );

    // Unknown, mistyped (one symbol changed), malformed.
    let unknown = asf_core::voucher_code::generate().display();
    assert_eq!(code_of(&redeem(&s, &token, &unknown).await.1), "voucher_unknown");
    let mut typo: Vec<char> = codes[0].chars().collect();
    typo[2] = if typo[2] == 'A' { 'B' } else { 'A' };
    let (status, answer) = redeem(&s, &token, &typo.into_iter().collect::<String>()).await;
    assert_eq!(
        (status, code_of(&answer)),
        (StatusCode::UNPROCESSABLE_ENTITY, "voucher_mistyped")
    );
    assert_eq!(code_of(&redeem(&s, &token, "O0I1").await.1), "voucher_malformed");

    // Revoked and expired.
    let listed = bearer_json(format!("{}/v1/admin/vouchers?code={}", s.control.url, codes[1]), &admin).await;
    let id = listed["vouchers"][0]["id"].as_str().expect("found by code").to_owned();
    let revoked = client()
        .post(format!("{}/v1/admin/vouchers/{id}/revoke", s.control.url))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status(), 200);
    let (status, answer) = redeem(&s, &token, &codes[1]).await;
    assert_eq!((status, code_of(&answer)), (StatusCode::GONE, "voucher_revoked"));
    let revoked_list = bearer_json(format!("{}/v1/admin/vouchers?status=revoked", s.control.url), &admin).await;
    assert_eq!(revoked_list["vouchers"].as_array().map(Vec::len), Some(1));
    s.control.sql(&format!(
        "update vouchers set redeem_by = now() - interval '1 day' where id = (select id from vouchers where id <> '{id}' order by id desc limit 1)"
    ));
    let expired_id = s.control.sql("select id from vouchers where redeem_by < now()");
    let expired_code = {
        let mut found = None;
        for code in &codes {
            let listed = bearer_json(format!("{}/v1/admin/vouchers?code={code}", s.control.url), &admin).await;
            if listed["vouchers"][0]["id"] == expired_id.as_str() {
                found = Some(code.clone());
            }
        }
        found.expect("the expired code")
    };
    assert_eq!(code_of(&redeem(&s, &token, &expired_code).await.1), "voucher_expired");

    // Redeemed once; again by the same user; used up for another; lifetime cap.
    let usable: Vec<&String> = codes
        .iter()
        .filter(|c| **c != codes[1] && **c != expired_code)
        .collect();
    assert_eq!(redeem(&s, &token, usable[0]).await.0, 200);
    assert_eq!(code_of(&redeem(&s, &token, usable[0]).await.1), "voucher_used_up");
    let (bob, _) = user(&s, "bob@sim.test").await;
    assert_eq!(code_of(&redeem(&s, &bob, usable[0]).await.1), "voucher_used_up");
    let (status, answer) = redeem(&s, &token, usable[1]).await;
    assert_eq!(status, 200, "{answer}");
    // Same plan again: time is added after the last grant.
    let ends: Vec<String> = s
        .control
        .sql("select ends_at - starts_at from voucher_grants order by created_at")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(ends, vec!["3 days", "3 days"]);
    assert_eq!(
        s.control
            .sql("select count(*) from voucher_grants g1 join voucher_grants g2 on g2.starts_at = g1.ends_at"),
        "1",
        "the second grant starts when the first ends"
    );
    let (status, answer) = redeem(&s, &token, usable[2]).await;
    assert_eq!(
        (status, code_of(&answer)),
        (StatusCode::CONFLICT, "voucher_cap_reached")
    );

    // Never below the current plan.
    let premium = vouchers(&s, &admin, json!({"count": 1, "plan": "premium", "duration_days": 3}))
        .await
        .remove(0);
    assert_eq!(redeem(&s, &bob, &premium).await.0, 200);
    let (status, answer) = redeem(&s, &bob, usable[3]).await;
    assert_eq!(
        (status, code_of(&answer)),
        (StatusCode::CONFLICT, "voucher_plan_not_higher")
    );
    assert_eq!(
        s.control.sql("select count(*) from vouchers where redemptions > 0"),
        "3"
    );

    // Bad batches.
    for bad in [
        json!({"count": 0, "plan": "pro", "duration_days": 3}),
        json!({"count": 1, "plan": "gold", "duration_days": 3}),
        json!({"count": 1, "plan": "pro", "duration_days": 3, "redeem_by": "2001-01-01"}),
    ] {
        let response = client()
            .post(format!("{}/v1/admin/vouchers", s.control.url))
            .bearer_auth(&admin)
            .json(&bad)
            .send()
            .await
            .expect("bad batch");
        assert_eq!(response.status(), 422, "{bad}");
    }
    let by_user = client()
        .post(format!("{}/v1/admin/vouchers", s.control.url))
        .bearer_auth(&token)
        .json(&json!({"count": 1, "plan": "pro", "duration_days": 3}))
        .send()
        .await
        .expect("non-admin");
    assert_eq!(by_user.status(), 403);
}

#[tokio::test]
async fn redemption_attempts_are_limited_per_user() {
    let s = free_system(&[("ASF_VOUCHER_ATTEMPTS_PER_USER_HOUR", "3")]).await;
    let (token, _) = user(&s, "guesser@sim.test").await;
    for _ in 0..3 {
        let unknown = asf_core::voucher_code::generate().display();
        assert_eq!(redeem(&s, &token, &unknown).await.0, StatusCode::NOT_FOUND);
    }
    let unknown = asf_core::voucher_code::generate().display();
    let response = client()
        .post(format!("{}/v1/vouchers/redeem", s.control.url))
        .bearer_auth(&token)
        .json(&json!({ "code": unknown }))
        .send()
        .await
        .expect("redeem");
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn a_voucher_plan_ends_at_its_exact_time() {
    let s = free_system(&[]).await;
    let _worker = s.start_worker(&[("ASF_BASELINE_PLAN", "free")]);
    let admin = admin(&s).await;
    let (token, uid) = logged_in(&s, "demo@example.com").await;
    let code = vouchers(&s, &admin, json!({"count": 1, "plan": "pro", "duration_days": 1}))
        .await
        .remove(0);
    assert_eq!(redeem(&s, &token, &code).await.0, 200);
    assert!(arm(&s, &token, &uid).await.status().is_success());

    // Bring the grant's end to two whole seconds from now, as the worker would see it at the end
    // of a day (grants end on whole seconds).
    s.control
        .sql("update voucher_grants set ends_at = date_trunc('second', now()) + interval '2 seconds'");
    s.control
        .sql("update tenants set plan_changes_at = (select ends_at from voucher_grants) where plan = 'pro'");
    let end_ms: f64 = s
        .control
        .sql("select extract(epoch from ends_at) * 1000 from voucher_grants")
        .parse()
        .expect("end");
    let wall_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as f64
    };
    loop {
        let status = arm(&s, &token, &uid).await.status();
        if status == 402 {
            break;
        }
        assert!(status.is_success(), "{status}");
        assert!(wall_ms() - end_ms < 1500.0, "the plan outlived its grant by over 1.5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(wall_ms() >= end_ms, "the plan ended {} ms early", end_ms - wall_ms());
    assert_eq!(
        s.control.sql(
            "select plan || ' ' || plan_source from tenants where plan_changes_at is null and plan = 'free' limit 1"
        ),
        "free free"
    );
}

#[tokio::test]
async fn an_admin_plan_edit_reaches_the_proxy_and_notifications_page() {
    let s = free_system(&[]).await;
    let admin = admin(&s).await;
    let (token, uid) = logged_in(&s, "demo@example.com").await;
    let devices = format!("{}/api/user/{uid}/hubs/0001A001/devices", s.proxy.url);
    assert_eq!(session_get(&devices, &token).await.status(), 402);
    let edited = client()
        .put(format!("{}/v1/admin/plans/free", s.control.url))
        .bearer_auth(&admin)
        .json(&json!({"classes": ["hub_read", "read"], "rate_per_minute": 30}))
        .send()
        .await
        .expect("edit");
    assert_eq!(edited.status(), 200);
    assert_eq!(session_get(&devices, &token).await.status(), 200);
    let bad = client()
        .put(format!("{}/v1/admin/plans/free", s.control.url))
        .bearer_auth(&admin)
        .json(&json!({"classes": ["everything"], "rate_per_minute": 30}))
        .send()
        .await
        .expect("bad edit");
    assert_eq!(bad.status(), 422);

    // A voucher: two notifications (redeemed, plan changed), newest first, paginated, marked read.
    let code = vouchers(&s, &admin, json!({"count": 1, "plan": "pro", "duration_days": 3}))
        .await
        .remove(0);
    assert_eq!(redeem(&s, &token, &code).await.0, 200);
    let page = bearer_json(format!("{}/v1/notifications?limit=1", s.control.url), &token).await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1), "{page}");
    let cursor = page["next_cursor"].as_str().expect("more").to_owned();
    let next = bearer_json(
        format!("{}/v1/notifications?limit=1&cursor={cursor}", s.control.url),
        &token,
    )
    .await;
    let kinds: Vec<&str> = [&page, &next]
        .iter()
        .map(|p| p["items"][0]["kind"].as_str().unwrap_or(""))
        .collect();
    assert!(
        kinds.contains(&"voucher_redeemed") && kinds.contains(&"plan_changed"),
        "{kinds:?}"
    );
    let id = page["items"][0]["id"].as_str().expect("id");
    let marked = client()
        .post(format!("{}/v1/notifications/{id}/read", s.control.url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("read");
    assert_eq!(marked.status(), 204);
    let unread = bearer_json(format!("{}/v1/notifications?unread=true", s.control.url), &token).await;
    assert_eq!(unread["items"].as_array().map(Vec::len), Some(1));
    let all = client()
        .post(format!("{}/v1/notifications/read-all", s.control.url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("read all");
    assert_eq!(all.json::<Value>().await.expect("json")["marked"], 1);
    let too_many = client()
        .get(format!("{}/v1/notifications?limit=1000", s.control.url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("bounded");
    assert_eq!(too_many.status(), 400);
}

#[tokio::test]
async fn the_command_line_generates_codes_that_redeem() {
    let s = free_system(&[]).await;
    let (token, _) = user(&s, "cli@sim.test").await;
    let out = s.control_command(&[
        "vouchers",
        "generate",
        "--count",
        "3",
        "--plan",
        "basic",
        "--duration-days",
        "10",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let codes: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(codes.len(), 3);
    let (status, answer) = redeem(&s, &token, &codes[0].to_lowercase().replace('-', " ")).await;
    assert_eq!(
        status, 200,
        "codes are read case- and separator-insensitively: {answer}"
    );
    // Stored as the SHA-256 of the canonical code, never the code itself.
    let canonical = codes[1].replace('-', "");
    assert_eq!(
        s.control.sql(&format!(
            "select count(*) from vouchers where code_hash = sha256('{canonical}'::bytea)"
        )),
        "1"
    );
}

#[tokio::test]
async fn entitlements_lost_with_a_redis_restart_are_published_again_at_once() {
    let mut redis = OwnRedis::start().await;
    let url = redis.url();
    let s = System::start_with(&[], &[("ASF_BASELINE_PLAN", "free")], &[("REDIS_URL", url.as_str())]).await;
    let _worker = s.start_worker(&[("ASF_BASELINE_PLAN", "free"), ("REDIS_URL", url.as_str())]);
    let admin = admin(&s).await;
    let (token, _) = user(&s, "steady@sim.test").await;
    let code = vouchers(&s, &admin, json!({"count": 1, "plan": "pro", "duration_days": 3}))
        .await
        .remove(0);
    assert_eq!(redeem(&s, &token, &code).await.0, 200);
    let tenant = s.control.sql("select id from tenants where plan = 'pro'");
    let key = asf_core::keyspace::Keyspace::new(s.shared.prefix.clone()).entitlement(&tenant);

    redis.stop();
    redis.resume().await;
    let restarted = Instant::now();
    let mut conn = redis_connection_to(&url).await;
    loop {
        let plan: Option<String> = redis::cmd("HGET")
            .arg(&key)
            .arg("plan")
            .query_async(&mut conn)
            .await
            .expect("hget");
        if plan.as_deref() == Some("pro") {
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(3),
            "the entitlement was not published again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
