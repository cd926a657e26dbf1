//! The global upstream budget end to end (budget shortened to 20 calls per 2 s so tests stay
//! short; ajax-sim enforces the same limit and is the witness): several proxy instances never
//! overspend it, commands get through reads' saturation, a flooding tenant is held back alone,
//! Ajax pushback pauses and recovers, a Redis outage neither overspends nor hangs, login storms
//! stay within it, and clients get the hints they read.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

const BUDGET: &str = "20/2s";

/// ajax-sim enforcing the budget, `count` proxies sharing it, and `users` logged-in users.
struct Budgeted {
    sim: Sim,
    proxies: Vec<Proxy>,
    users: Vec<(String, String)>,
    _jwks: JwksServer,
}

async fn budgeted(count: usize, users: usize, env: &[(&str, &str)]) -> Budgeted {
    let sim = Sim::start(&["--rate", BUDGET]).await;
    let issuer = Issuer::new("budget-key");
    let jwks_port = free_port();
    let jwks = JwksServer::start(jwks_port, vec![issuer.jwk()]).await;
    let shared = Shared::new();
    let mut extra_env: Vec<(&str, String)> =
        vec![("ASF_GLOBAL_RATE", BUDGET.into()), ("ASF_QUEUE_MAX_WAIT", "3s".into())];
    extra_env.extend(env.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let mut proxies = Vec::new();
    for _ in 0..count {
        let options = ProxyOptions {
            ajax_url: &sim.url,
            jwks_port,
            extra_env: extra_env.clone(),
        };
        proxies.push(Proxy::start_shared(options, shared.clone()).await);
    }
    let mut logged = Vec::new();
    for i in 0..users {
        let login = sim.login(&format!("load{i}@sim.test"), "secret").await;
        let uid = login["userId"].as_str().expect("uid").to_owned();
        let sub = format!("user-{i}");
        proxies[0].store_session(&sub, &login).await;
        logged.push((issuer.sign(&issuer.claims(&sub, &uid)), uid));
    }
    // The logins above were the test's own, outside the gateway: start the witness afresh, and let
    // the sim's window forget them.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    sim.reset().await;
    Budgeted {
        sim,
        proxies,
        users: logged,
        _jwks: jwks,
    }
}

/// What one client request ended as.
#[derive(Debug)]
enum Outcome {
    Served(u16),
    Throttled { retry_after: Option<String>, code: String },
    Other(String),
}

async fn hubs(base: &str, token: &str, uid: &str) -> Outcome {
    let response = client()
        .get(format!("{base}/api/user/{uid}/hubs"))
        .header("x-session-token", token)
        .send()
        .await;
    classify(response).await
}

async fn classify(response: reqwest::Result<reqwest::Response>) -> Outcome {
    match response {
        Ok(r) if r.status() == 429 => {
            let retry_after = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let code = body["errors"][0]["code"].as_str().unwrap_or("not our JSON").to_owned();
            Outcome::Throttled { retry_after, code }
        }
        Ok(r) if r.status().is_success() => Outcome::Served(r.status().as_u16()),
        Ok(r) => Outcome::Other(format!("status {}", r.status())),
        Err(e) => Outcome::Other(format!("error {e}")),
    }
}

fn assert_served_or_throttled(outcomes: &[Outcome]) -> (usize, usize) {
    let (mut served, mut throttled) = (0, 0);
    for outcome in outcomes {
        match outcome {
            Outcome::Served(_) => served += 1,
            Outcome::Throttled { retry_after, code } => {
                let secs: u64 = retry_after
                    .as_deref()
                    .and_then(|v| v.parse().ok())
                    .expect("429 carries Retry-After");
                assert!(secs >= 1, "{outcome:?}");
                assert_ne!(code, "not our JSON", "a 429 must say why");
                throttled += 1;
            }
            Outcome::Other(what) => panic!("a request was neither served nor throttled: {what}"),
        }
    }
    (served, throttled)
}

async fn assert_witness_within_budget(sim: &Sim) {
    let stats = sim.stats().await;
    assert_eq!(stats["over_limit_total"], 0, "Ajax saw calls over the limit: {stats}");
    let max = stats["max_in_window"].as_u64().expect("max_in_window");
    assert!(max <= 20, "Ajax saw {max} calls in one window: {stats}");
}

/// Sends `per_second` requests per second for `duration`, round-robin over proxies and users.
async fn flood(b: &Budgeted, per_second: u64, duration: Duration) -> Vec<Outcome> {
    let mut tasks = Vec::new();
    let gap = Duration::from_micros(1_000_000 / per_second);
    let started = Instant::now();
    let mut i = 0usize;
    while started.elapsed() < duration {
        let base = b.proxies[i % b.proxies.len()].url.clone();
        let (token, uid) = b.users[i % b.users.len()].clone();
        tasks.push(tokio::spawn(async move { hubs(&base, &token, &uid).await }));
        i += 1;
        tokio::time::sleep(gap).await;
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("join"));
    }
    outcomes
}

#[tokio::test]
async fn three_proxies_under_ten_times_the_budget_never_overspend_and_answer_every_request() {
    let b = budgeted(3, 6, &[]).await;
    // Ten times the budget (20 per 2 s) for three windows.
    let outcomes = flood(&b, 100, Duration::from_secs(6)).await;
    let (served, throttled) = assert_served_or_throttled(&outcomes);
    assert!(served >= 40, "the budget should be used: {served} served");
    assert!(throttled > 0, "ten times the budget cannot all be served");
    assert_witness_within_budget(&b.sim).await;
}

#[tokio::test]
async fn commands_get_through_within_seconds_while_reads_saturate_the_budget() {
    let b = budgeted(1, 4, &[]).await;
    let (token, uid) = b.users[0].clone();
    let hub: Value = session_get(format!("{}/api/user/{uid}/hubs", b.proxies[0].url), &token)
        .await
        .json()
        .await
        .expect("json");
    let hub = hub[0]["hubId"].as_str().expect("hub").to_owned();
    let readers = {
        let b_urls: Vec<String> = b.proxies.iter().map(|p| p.url.clone()).collect();
        let users = b.users.clone();
        tokio::spawn(async move {
            let mut tasks = Vec::new();
            let started = Instant::now();
            let mut i = 0;
            while started.elapsed() < Duration::from_secs(5) {
                let (token, uid) = users[1 + i % 3].clone();
                let base = b_urls[0].clone();
                tasks.push(tokio::spawn(async move { hubs(&base, &token, &uid).await }));
                i += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            for task in tasks {
                let _ = task.await;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    for command in ["ARM", "DISARM"] {
        let started = Instant::now();
        let response = client()
            .put(format!(
                "{}/api/user/{uid}/hubs/{hub}/commands/arming",
                b.proxies[0].url
            ))
            .header("x-session-token", &token)
            .json(&json!({"command": command, "ignoreProblems": true}))
            .send()
            .await
            .expect("arming");
        assert_eq!(response.status(), 204, "{command} under saturation");
        // One command interval at 20/2s is about 0.6 s; allow for the machine.
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "{command} took {:?}",
            started.elapsed()
        );
    }
    readers.await.expect("readers");
    assert_witness_within_budget(&b.sim).await;
}

#[tokio::test]
async fn a_flooding_tenant_gets_429_while_another_tenant_keeps_flowing() {
    let b = budgeted(
        1,
        2,
        &[
            ("ASF_GLOBAL_RATE", "200/2s"),
            ("ASF_TENANT_RATE_PER_MINUTE", "60"),
            ("ASF_TENANT_BURST", "5"),
            ("ASF_TENANT_MAX_QUEUED", "5"),
        ],
    )
    .await;
    let (noisy_token, noisy_uid) = b.users[0].clone();
    let base = b.proxies[0].url.clone();
    let flood: Vec<_> = (0..40)
        .map(|_| {
            let (base, token, uid) = (base.clone(), noisy_token.clone(), noisy_uid.clone());
            tokio::spawn(async move { hubs(&base, &token, &uid).await })
        })
        .collect();
    let mut noisy = Vec::new();
    for task in flood {
        noisy.push(task.await.expect("join"));
    }
    let tenant_refusals = noisy
        .iter()
        .filter(|o| matches!(o, Outcome::Throttled { code, .. } if code == "tenant_limit"))
        .count();
    assert!(
        tenant_refusals >= 30,
        "the flooding tenant must be held back: {noisy:?}"
    );
    let (quiet_token, quiet_uid) = b.users[1].clone();
    for _ in 0..5 {
        let outcome = hubs(&base, &quiet_token, &quiet_uid).await;
        assert!(
            matches!(outcome, Outcome::Served(200)),
            "the other tenant is unaffected: {outcome:?}"
        );
    }
}

#[tokio::test]
async fn ajax_pushback_pauses_the_budget_and_clients_never_see_a_raw_upstream_429() {
    let b = budgeted(1, 1, &[]).await;
    let (token, uid) = b.users[0].clone();
    let base = b.proxies[0].url.clone();
    let faults = format!("{}/_sim/faults", b.sim.url);
    client()
        .post(&faults)
        .json(&json!({"force_429": 1}))
        .send()
        .await
        .expect("faults");
    let started = Instant::now();
    let outcome = hubs(&base, &token, &uid).await;
    assert!(
        matches!(outcome, Outcome::Served(200)),
        "retried after the pause: {outcome:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "the pause was honoured"
    );

    client()
        .post(&faults)
        .json(&json!({"force_429": 5}))
        .send()
        .await
        .expect("faults");
    let outcome = hubs(&base, &token, &uid).await;
    match outcome {
        Outcome::Throttled { code, retry_after } => {
            assert_eq!(code, "upstream_pushback");
            assert!(retry_after.is_some());
        }
        other => panic!("expected the gateway's own 429: {other:?}"),
    }
    let metrics = metrics_text(&b.proxies[0].metrics_url).await;
    assert!(
        metrics.contains(r#"asf_ajax_pushbacks_total{kind="status"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn proxied_answers_carry_rate_limit_hints_and_a_suggested_interval() {
    let b = budgeted(1, 1, &[]).await;
    let (token, uid) = b.users[0].clone();
    let response = session_get(format!("{}/api/user/{uid}/hubs", b.proxies[0].url), &token).await;
    assert_eq!(response.status(), 200);
    let header = |name: &str| -> u64 {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .expect(name)
    };
    assert_eq!(header("ratelimit-limit"), 20);
    assert!(header("ratelimit-remaining") < 20);
    assert!(header("ratelimit-reset") <= 2);
    assert!(header("x-suggested-interval") >= 30);
}

#[tokio::test]
async fn a_redis_outage_neither_overspends_nor_hangs_and_recovers_without_restart() {
    let mut redis = OwnRedis::start().await;
    let b = budgeted(1, 2, &[("REDIS_URL", &redis.url()), ("ASF_QUEUE_MAX_WAIT", "2s")]).await;
    let (token, uid) = b.users[0].clone();
    let base = b.proxies[0].url.clone();
    assert!(matches!(hubs(&base, &token, &uid).await, Outcome::Served(200)));

    redis.stop();
    let during = {
        let started = Instant::now();
        let mut outcomes = Vec::new();
        while started.elapsed() < Duration::from_secs(6) {
            let asked = Instant::now();
            let outcome = hubs(&base, &token, &uid).await;
            assert!(
                asked.elapsed() < Duration::from_secs(5),
                "a request hung for {:?}",
                asked.elapsed()
            );
            outcomes.push(outcome);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        outcomes
    };
    let (served, throttled) = assert_served_or_throttled(&during);
    assert!(throttled > 0, "the local share starts full");
    assert!(
        served > 0,
        "users seen before the outage are served from the local share: {during:?}"
    );

    redis.resume().await;
    // Redis lost everything (no persistence): the control plane would store the session again at
    // the next login; do what it does.
    let login = b.sim.login("load0@sim.test", "secret").await;
    b.proxies[0].store_session("user-0", &login).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if matches!(hubs(&base, &token, &uid).await, Outcome::Served(200)) {
            let metrics = metrics_text(&b.proxies[0].metrics_url).await;
            if metrics.contains("asf_budget_fallback 0") {
                break;
            }
        }
        assert!(Instant::now() < deadline, "never returned to the shared budget");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_witness_within_budget(&b.sim).await;
}

#[tokio::test]
async fn a_login_storm_stays_within_the_budget() {
    let budget = [("ASF_GLOBAL_RATE", BUDGET), ("ASF_QUEUE_MAX_WAIT", "3s")];
    let s = System::start_with(&["--rate", BUDGET], &[], &budget).await;
    let storm: Vec<_> = (0..40)
        .map(|i| {
            let url = format!("{}/api/login", s.proxy.url);
            tokio::spawn(async move {
                let response = client()
                    .post(url)
                    .json(&json!({"login": format!("storm{i}@sim.test"), "passwordHash": sha256_hex("secret")}))
                    .send()
                    .await;
                classify(response).await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in storm {
        outcomes.push(task.await.expect("join"));
    }
    let (served, _) = assert_served_or_throttled(&outcomes);
    assert!(served >= 1, "{outcomes:?}");
    assert_witness_within_budget(&s.sim).await;
}

#[tokio::test]
async fn a_client_that_hangs_up_while_queued_is_never_forwarded() {
    // Three slots at once (one per lane), then one every ~2.9 s.
    let b = budgeted(1, 1, &[("ASF_GLOBAL_RATE", "4/2s")]).await;
    let (token, uid) = b.users[0].clone();
    let base = b.proxies[0].url.clone();
    for _ in 0..3 {
        assert!(matches!(hubs(&base, &token, &uid).await, Outcome::Served(200)));
    }
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let gone = impatient
        .get(format!("{base}/api/user/{uid}/hubs"))
        .header("x-session-token", &token)
        .send()
        .await;
    assert!(gone.is_err(), "the request had to wait for its slot");
    // Past the slot it would have had: Ajax never saw it.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(b.sim.stats().await["requests_total"], 3);
}

#[tokio::test]
async fn a_limit_message_inside_a_200_pauses_the_budget() {
    let b = budgeted(1, 1, &[]).await;
    let (token, uid) = b.users[0].clone();
    let base = b.proxies[0].url.clone();
    client()
        .post(format!("{}/_sim/faults", b.sim.url))
        .json(&json!({"force_429": 1, "limit_as_200": true}))
        .send()
        .await
        .expect("faults");
    // Ajax's disguised refusal reaches this client as Ajax sent it...
    let first = session_get(format!("{base}/api/user/{uid}/hubs"), &token).await;
    assert_eq!(first.status(), 200);
    assert!(first.text().await.expect("body").contains("exceeded the limit"));
    // ...but the whole budget is paused at once, beyond the wait bound: the next caller is told so.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match hubs(&base, &token, &uid).await {
            Outcome::Throttled { code, .. } if code == "upstream_pushback" => break,
            other => assert!(Instant::now() < deadline, "the budget was not paused: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = metrics_text(&b.proxies[0].metrics_url).await;
    assert!(
        metrics.contains(r#"asf_ajax_pushbacks_total{kind="body"} 1"#),
        "{metrics}"
    );
}
