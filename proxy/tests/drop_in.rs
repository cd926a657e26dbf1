//! End to end: an Ajax client pointed at asf-proxy works against ajax-sim with the project's own
//! tokens, while the company key and the user's real Ajax token are added only on the way out.

mod support;

use serde_json::{Value, json};
use support::*;

struct World {
    sim: Sim,
    proxy: Proxy,
    issuer: Issuer,
    _jwks: JwksServer,
    /// Ajax user id of demo@example.com and a token for it.
    uid: String,
    token: String,
}

async fn world() -> World {
    world_with(vec![]).await
}

async fn world_with(extra_env: Vec<(&'static str, String)>) -> World {
    let sim = Sim::start(&[]).await;
    let issuer = Issuer::new("test-key-1");
    let jwks_port = free_port();
    let jwks = JwksServer::start(jwks_port, vec![issuer.jwk()]).await;
    let proxy = Proxy::start(ProxyOptions {
        ajax_url: &sim.url,
        jwks_port,
        extra_env,
    })
    .await;
    let login = sim.login("demo@example.com", "demo").await;
    let uid = login["userId"].as_str().expect("uid").to_owned();
    proxy.store_session("user-1", &login).await;
    let token = issuer.sign(&issuer.claims("user-1", &uid));
    sim.reset().await;
    World {
        sim,
        proxy,
        issuer,
        _jwks: jwks,
        uid,
        token,
    }
}

async fn get(world: &World, path: &str, token: &str) -> reqwest::Response {
    session_get(format!("{}{path}", world.proxy.url), token).await
}

fn assert_ajax_error_shape(body: &Value) {
    assert!(body["message"].is_string(), "{body}");
    assert!(body["messageId"].is_string(), "{body}");
}

#[tokio::test]
async fn client_reads_hubs_devices_groups_and_logs_and_arms_through_the_proxy() {
    let w = world().await;
    let hubs = get(&w, &format!("/api/user/{}/hubs", w.uid), &w.token).await;
    assert_eq!(hubs.status(), 200);
    assert!(
        hubs.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("application/json")
    );
    assert!(hubs.headers().contains_key("x-request-id"));
    let hubs: Value = hubs.json().await.expect("json");
    let hub = hubs[0]["hubId"].as_str().expect("hub id").to_owned();

    for tail in ["", "/devices", "/groups", "/rooms", "/logs"] {
        let response = get(&w, &format!("/api/user/{}/hubs/{hub}{tail}", w.uid), &w.token).await;
        assert_eq!(response.status(), 200, "GET hub{tail}");
    }

    let arm = client()
        .put(format!("{}/api/user/{}/hubs/{hub}/commands/arming", w.proxy.url, w.uid))
        .header("x-session-token", &w.token)
        .json(&json!({"command": "ARM", "ignoreProblems": true}))
        .send()
        .await
        .expect("arm");
    assert!(arm.status() == 204 || arm.status() == 202, "arm: {}", arm.status());
    let detail: Value = get(&w, &format!("/api/user/{}/hubs/{hub}", w.uid), &w.token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(detail["state"], "ARMED", "{detail}");

    let disarm = client()
        .put(format!("{}/api/user/{}/hubs/{hub}/commands/arming", w.proxy.url, w.uid))
        .bearer_auth(&w.token)
        .json(&json!({"command": "DISARM", "ignoreProblems": true}))
        .send()
        .await
        .expect("disarm");
    assert_eq!(disarm.status(), 204);
    let detail: Value = get(&w, &format!("/api/user/{}/hubs/{hub}", w.uid), &w.token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(detail["state"], "DISARMED", "{detail}");
}

#[tokio::test]
async fn ajax_sees_the_company_key_and_the_real_session_never_the_client_token() {
    let w = world().await;
    let response = client()
        .get(format!("{}/api/user/{}/hubs", w.proxy.url, w.uid))
        .header("x-session-token", &w.token)
        .header("x-api-key", "client-supplied-key")
        .header("x-company-token", "client-company-token")
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-user-id", &w.uid)
        .header("cookie", "session=abc")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let stats = w.sim.stats().await;
    let seen = stats["last_requests"].as_array().expect("recorded requests");
    assert_eq!(seen.len(), 1, "{stats}");
    let request = &seen[0];
    assert_eq!(request["api_key_ok"], true, "the company key must be sent: {request}");
    let ajax_token = request["session_token"].as_str().expect("session token sent");
    assert_ne!(ajax_token, w.token, "the client's token must never reach Ajax");
    assert!(
        !ajax_token.contains('.'),
        "Ajax must get its own hex token, not our JWT"
    );
    assert!(request["authorization"].is_null(), "{request}");
    assert_ne!(request["x_forwarded_for"], "6.6.6.6", "{request}");
    let names: Vec<String> = request["other_headers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_ascii_lowercase))
                .collect()
        })
        .unwrap_or_default();
    for leaked in ["x-company-token", "cookie", "x-user-id"] {
        assert!(!names.iter().any(|n| n == leaked), "{leaked} reached Ajax: {names:?}");
    }
    assert_eq!(stats["requests_total"], 1);
}

#[tokio::test]
async fn forged_expired_and_unsigned_tokens_get_401_without_reaching_ajax() {
    let w = world().await;
    let forger = Issuer::new("test-key-1");
    let forged = forger.sign(&forger.claims("user-1", &w.uid));
    let mut old = w.issuer.claims("user-1", &w.uid);
    old.iat -= 4000;
    old.nbf -= 4000;
    old.exp = now() - 3000;
    let expired = w.issuer.sign(&old);
    let b64 = |bytes: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    };
    let claims = serde_json::to_vec(&w.issuer.claims("user-1", &w.uid)).expect("claims");
    let unsigned = format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), b64(&claims));

    for (name, token) in [
        ("forged", forged.as_str()),
        ("expired", &expired),
        ("alg none", &unsigned),
        ("garbage", "abc"),
    ] {
        let response = get(&w, &format!("/api/user/{}/hubs", w.uid), token).await;
        assert_eq!(response.status(), 401, "{name}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .expect("ct")
                .starts_with("application/json")
        );
        assert_ajax_error_shape(&response.json().await.expect("json"));
    }
    let missing = client()
        .get(format!("{}/api/user/{}/hubs", w.proxy.url, w.uid))
        .send()
        .await
        .expect("req");
    assert_eq!(missing.status(), 401);
    let two_tokens = client()
        .get(format!("{}/api/user/{}/hubs", w.proxy.url, w.uid))
        .header("x-session-token", &w.token)
        .bearer_auth(&forged)
        .send()
        .await
        .expect("req");
    assert_eq!(two_tokens.status(), 401);
    assert_eq!(w.sim.stats().await["requests_total"], 0);
}

#[tokio::test]
async fn another_users_path_is_404_and_never_reaches_ajax() {
    let w = world().await;
    let other = w.sim.login("demo2@example.com", "demo").await;
    let other_uid = other["userId"].as_str().expect("uid");
    let response = get(&w, &format!("/api/user/{other_uid}/hubs"), &w.token).await;
    assert_eq!(response.status(), 404);
    assert_ajax_error_shape(&response.json().await.expect("json"));
    w.sim.reset().await;
    let response = get(&w, &format!("/api/user/{other_uid}/hubs"), &w.token).await;
    assert_eq!(response.status(), 404);
    assert_eq!(w.sim.stats().await["requests_total"], 0);
}

#[tokio::test]
async fn unknown_company_and_malformed_routes_are_answered_locally() {
    let w = world().await;
    for (path, status) in [
        ("/api/user/x/unknown", 404),
        ("/.env", 404),
        ("/wp-admin/", 404),
        ("/api/company/c1/hubs", 404),
        ("/api/user/%2e%2e/hubs", 400),
        ("/api/user/../user/x/hubs", 400),
        ("/api/user/a%2Fb/hubs", 400),
        ("/api/user/a%252Fb/hubs", 400),
    ] {
        let (got, body) = raw_request(&w.proxy.url, "GET", path, &[("x-session-token", &w.token)]).await;
        assert_eq!(got, status, "{path}");
        assert_ajax_error_shape(&serde_json::from_str(&body).expect("json body"));
    }
    assert_eq!(w.sim.stats().await["requests_total"], 0);
    // Probes outside the API are counted apart from mistyped API routes.
    let metrics = metrics_containing(
        &w.proxy.metrics_url,
        &[r#"asf_shield_refusals_total{reason="outside_api"} 2"#],
    )
    .await;
    assert!(
        metrics.contains(r#"asf_shield_refusals_total{reason="outside_api"} 2"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"asf_shield_refusals_total{reason="unknown_route"} 1"#));
    // No substring blocklist: a real route whose ids look like probes reaches Ajax.
    for hub in [".env", "wp-admin", "manager1"] {
        let (got, body) = raw_request(
            &w.proxy.url,
            "GET",
            &format!("/api/user/{}/hubs/{hub}", w.uid),
            &[("x-session-token", &w.token)],
        )
        .await;
        assert!(
            !body.contains("outside_api") && !body.contains("unknown_route"),
            "{hub}: {got} {body}"
        );
    }
    assert_eq!(w.sim.stats().await["requests_total"], 3);
}

#[tokio::test]
async fn revoked_tokens_and_missing_sessions_get_401() {
    let w = world().await;
    let mut redis = redis_connection().await;
    let claims = w.issuer.claims("user-1", &w.uid);
    let token = w.issuer.sign(&claims);
    assert_eq!(
        get(&w, &format!("/api/user/{}/hubs", w.uid), &token).await.status(),
        200
    );
    redis::cmd("SET")
        .arg(w.proxy.keys.revoked_token(&claims.jti))
        .arg(1)
        .arg("EX")
        .arg(60)
        .query_async::<()>(&mut redis)
        .await
        .expect("set");
    assert_eq!(
        get(&w, &format!("/api/user/{}/hubs", w.uid), &token).await.status(),
        401
    );

    let stranger = w.issuer.sign(&w.issuer.claims("user-without-session", &w.uid));
    assert_eq!(
        get(&w, &format!("/api/user/{}/hubs", w.uid), &stranger).await.status(),
        401
    );
}

#[tokio::test]
async fn refusals_keep_the_connection_alive() {
    let w = world().await;
    let response = get(&w, &format!("/api/user/{}/hubs", w.uid), "not-a-token").await;
    assert_eq!(response.status(), 401);
    let connection = response
        .headers()
        .get("connection")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(!connection.eq_ignore_ascii_case("close"), "connection: {connection}");
}

#[tokio::test]
async fn proxy_answers_503_until_keys_exist_then_serves() {
    let sim = Sim::start(&[]).await;
    let issuer = Issuer::new("late-key");
    let jwks_port = free_port();
    let proxy = Proxy::start(ProxyOptions {
        ajax_url: &sim.url,
        jwks_port,
        extra_env: vec![],
    })
    .await;
    let login = sim.login("demo@example.com", "demo").await;
    let uid = login["userId"].as_str().expect("uid").to_owned();
    proxy.store_session("user-1", &login).await;
    let token = issuer.sign(&issuer.claims("user-1", &uid));
    let url = format!("{}/api/user/{uid}/hubs", proxy.url);

    let early = session_get(&url, &token).await;
    assert_eq!(early.status(), 503);
    assert!(early.headers().contains_key("retry-after"));

    let _jwks = JwksServer::start(jwks_port, vec![issuer.jwk()]).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let status = session_get(&url, &token).await.status();
        if status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {status} after keys appeared"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn hs256_mode_accepts_tokens_signed_with_the_shared_secret() {
    let sim = Sim::start(&[]).await;
    let secret = "an-hs256-shared-secret-of-32-bytes-or-more";
    let proxy = Proxy::start(ProxyOptions {
        ajax_url: &sim.url,
        jwks_port: free_port(),
        extra_env: vec![
            ("ASF_JWT_MODE", "hs256".into()),
            ("ASF_JWT_HS256_SECRET", secret.into()),
        ],
    })
    .await;
    let login = sim.login("demo@example.com", "demo").await;
    let uid = login["userId"].as_str().expect("uid").to_owned();
    proxy.store_session("user-1", &login).await;
    let issuer = Issuer::new("unused");
    let claims = issuer.claims("user-1", &uid);
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).expect("key");
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &key,
    )
    .expect("sign");
    let url = format!("{}/api/user/{uid}/hubs", proxy.url);
    assert_eq!(session_get(&url, &token).await.status(), 200);
    // An EdDSA token is refused in HS256 mode: no algorithm mix-ups.
    let ed = issuer.sign(&claims);
    assert_eq!(session_get(&url, &ed).await.status(), 401);
}

#[tokio::test]
async fn metrics_count_requests_by_class_status_and_decision() {
    let w = world().await;
    assert_eq!(
        get(&w, &format!("/api/user/{}/hubs", w.uid), &w.token).await.status(),
        200
    );
    assert_eq!(get(&w, "/api/user/x/unknown", &w.token).await.status(), 404);
    let text = metrics_containing(
        &w.proxy.metrics_url,
        &[
            r#"decision="forwarded",status="200"} 1"#,
            r#"decision="refused_shield",status="404"} 1"#,
        ],
    )
    .await;
    assert!(
        text.contains(r#"asf_proxy_requests_total{class="hub_read",decision="forwarded",status="200"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"decision="refused_shield",status="404"} 1"#), "{text}");
    assert!(text.contains("asf_proxy_upstream_seconds_bucket"), "{text}");
    assert!(
        text.contains(r#"asf_proxy_jwks_refreshes_total{outcome="ok"}"#),
        "{text}"
    );
}

#[tokio::test]
async fn base_path_prefix_works_for_clients_with_a_prefixed_base_url() {
    let w = world_with(vec![("ASF_BASE_PATH", "/ajax".into())]).await;
    let prefixed = get(&w, &format!("/ajax/api/user/{}/hubs", w.uid), &w.token).await;
    assert_eq!(prefixed.status(), 200);
    let bare = get(&w, &format!("/api/user/{}/hubs", w.uid), &w.token).await;
    assert_eq!(bare.status(), 404);
}

#[tokio::test]
async fn a_flooding_client_ip_is_held_back_before_any_redis_call() {
    let w = world_with(vec![("ASF_PER_IP_PER_SECOND", "20".into())]).await;
    let url = format!("{}/api/user/{}/hubs", w.proxy.url, w.uid);
    let burst: Vec<_> = (0..60)
        .map(|_| {
            let (url, token) = (url.clone(), w.token.clone());
            tokio::spawn(async move { session_get(url, &token).await.status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in burst {
        statuses.push(task.await.expect("join"));
    }
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(refused >= 30, "{statuses:?}");
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count() + refused,
        60,
        "{statuses:?}"
    );
    let text = metrics_text(&w.proxy.metrics_url).await;
    assert!(
        text.contains(r#"asf_shield_refusals_total{reason="client_rate"}"#),
        "{text}"
    );
}

#[tokio::test]
async fn denied_ranges_and_oversized_headers_are_refused_without_reaching_ajax() {
    let w = world_with(vec![("ASF_DENY_CIDRS", "127.0.0.0/8".into())]).await;
    let denied = session_get(format!("{}/api/user/{}/hubs", w.proxy.url, w.uid), &w.token).await;
    assert_eq!(denied.status(), 404);
    let w2 = world().await;
    let mut request = client()
        .get(format!("{}/api/user/{}/hubs", w2.proxy.url, w2.uid))
        .header("x-session-token", &w2.token);
    for i in 0..80 {
        request = request.header(format!("x-filler-{i}"), "1");
    }
    assert_eq!(request.send().await.expect("req").status(), 400);
    assert_eq!(w.sim.stats().await["requests_total"], 0);
    assert_eq!(w2.sim.stats().await["requests_total"], 0);
}

#[tokio::test]
async fn an_ip_that_keeps_failing_authentication_is_slowed_down() {
    let w = world_with(vec![("ASF_AUTH_FAILURES_PER_MINUTE", "5".into())]).await;
    let url = format!("{}/api/user/{}/hubs", w.proxy.url, w.uid);
    for _ in 0..5 {
        assert_eq!(session_get(&url, "forged.token.here").await.status(), 401);
    }
    let slowed = session_get(&url, &w.token).await;
    assert_eq!(slowed.status(), 429, "even a valid token waits: the IP is guessing");
    assert!(slowed.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn malformed_or_invalid_commands_are_refused_before_they_reach_ajax_or_the_budget() {
    let w = world().await;
    let hubs: Value = session_get(format!("{}/api/user/{}/hubs", w.proxy.url, w.uid), &w.token)
        .await
        .json()
        .await
        .expect("json");
    let hub = hubs[0]["hubId"].as_str().expect("hub").to_owned();
    w.sim.reset().await;
    let arming = format!("{}/api/user/{}/hubs/{hub}/commands/arming", w.proxy.url, w.uid);
    let send = |body: &'static str, content_type: &'static str| {
        let (url, token) = (arming.clone(), w.token.clone());
        async move {
            let response = client()
                .put(url)
                .header("x-session-token", token)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .expect("arming");
            let status = response.status().as_u16();
            let body: Value = response.json().await.expect("json body");
            (status, body["errors"][0]["code"].as_str().unwrap_or("").to_owned())
        }
    };
    assert_eq!(
        send(r#"{"command":"EXPLODE","ignoreProblems":true}"#, "application/json").await,
        (422, "invalid_command".into())
    );
    assert_eq!(
        send(r#"{"command":"ARM""#, "application/json").await,
        (400, "malformed_json".into())
    );
    assert_eq!(
        send(r#"{"command":"ARM"}"#, "text/plain").await,
        (400, "body_not_json".into())
    );
    // Every command is checked against its own schema from the spec, not only arming.
    let refusal = |path: String, body: Value| {
        let token = w.token.clone();
        async move {
            let response = client()
                .request(reqwest::Method::PUT, path)
                .header("x-session-token", token)
                .json(&body)
                .send()
                .await
                .expect("command");
            let status = response.status().as_u16();
            let body: Value = response.json().await.expect("json body");
            (status, body["message"].as_str().unwrap_or("").to_owned())
        }
    };
    let base = format!("{}/api/user/{}/hubs/{hub}", w.proxy.url, w.uid);
    let (status, message) = refusal(
        format!("{base}/groups/1/commands/arming"),
        json!({"command": "NIGHT_MODE_ON", "ignoreProblems": true}),
    )
    .await;
    assert_eq!(
        (status, message.as_str()),
        (422, "body.command: must be one of ARM, DISARM")
    );
    let (status, message) = refusal(format!("{base}/commands/muteFireDetectors"), json!({})).await;
    assert_eq!((status, message.as_str()), (422, "body: muteType is required"));
    let (status, message) = refusal(format!("{base}/commands/groupsMode"), json!({"groupsMode": true})).await;
    assert_eq!((status, message.as_str()), (422, "body.groupsMode: must be a string"));
    assert_eq!(w.sim.stats().await["requests_total"], 0, "nothing reached Ajax");
    // A valid command still goes through, body intact.
    let (status, _) = {
        let response = client()
            .put(&arming)
            .header("x-session-token", &w.token)
            .json(&json!({"command": "NIGHT_MODE_ON", "ignoreProblems": false}))
            .send()
            .await
            .expect("arming");
        (response.status().as_u16(), ())
    };
    assert!(status == 204 || status == 422, "forwarded to Ajax: {status}");
    assert_eq!(w.sim.stats().await["requests_total"], 1);
}

/// Calls of one Redis command on a server, from `INFO commandstats`.
async fn redis_calls(url: &str, command: &str) -> u64 {
    let mut redis = redis_connection_to(url).await;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut redis)
        .await
        .expect("info");
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn shield_refusals_cost_no_redis_call_and_never_reach_ajax() {
    let redis = OwnRedis::start().await;
    let w = world_with(vec![("REDIS_URL", redis.url())]).await;
    let hubs = format!("/api/user/{}/hubs", w.uid);
    assert_eq!(get(&w, &hubs, &w.token).await.status(), 200);
    w.sim.reset().await;
    // Only the admission script reads the tenant's entitlement (HMGET, counted inside the script);
    // nothing else the proxy sends uses it.
    let admissions = redis_calls(&redis.url(), "hmget").await;
    assert!(admissions >= 1, "the admitted request made its round trip");

    let token = w.token.as_str();
    let many_headers: Vec<(String, String)> = (0..80).map(|i| (format!("x-h{i}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many_headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    for (method, path, headers, status) in [
        ("GET", "/.git/config", vec![("x-session-token", token)], 404),
        ("GET", "/api/user/a%2Fb/hubs", vec![("x-session-token", token)], 400),
        ("GET", "/api/user/x/nothing", vec![("x-session-token", token)], 404),
        ("DELETE", "/api/login", vec![], 405),
        (
            "PUT",
            &format!("{hubs}/H1"),
            vec![("x-session-token", token), ("content-length", "999999999")],
            413,
        ),
        ("GET", hubs.as_str(), many, 400),
    ] {
        let (got, _) = raw_request(&w.proxy.url, method, path, &headers).await;
        assert_eq!(got, status, "{method} {path}");
    }
    let arming = format!("{}{hubs}/0001A001/commands/arming", w.proxy.url);
    for (body, status) in [
        (r#"{"command":"#, 400),
        (r#"{"command":"EXPLODE","ignoreProblems":true}"#, 422),
    ] {
        let response = client()
            .put(&arming)
            .header("x-session-token", token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("command");
        assert_eq!(response.status(), status, "{body}");
    }
    assert_eq!(
        redis_calls(&redis.url(), "hmget").await,
        admissions,
        "no admission round trip"
    );
    assert_eq!(w.sim.stats().await["requests_total"], 0, "nothing reached Ajax");
}
