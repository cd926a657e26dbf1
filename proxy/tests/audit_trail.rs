//! The audit trail end to end: every request the proxy answers and every control-plane event
//! becomes one row in PostgreSQL with the right fields; the chain verifies and an edited row is
//! named; a worker killed between commit and acknowledgement, a PostgreSQL outage and a Redis
//! outage lose and duplicate nothing; retention prunes without breaking verification.

mod support;

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use support::*;

const HUBS_ROUTE: &str = "/user/{userId}/hubs";

/// The claims inside one of our access tokens (no verification: the test minted nothing).
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("claims")
}

fn count(s: &System, condition: &str) -> i64 {
    s.control
        .sql(&format!("select count(*) from audit_log where {condition}"))
        .parse()
        .unwrap_or(-1)
}

/// Waits until `count(condition)` reaches `expected`, then checks it stays there (no duplicates).
async fn wait_for_rows(s: &System, condition: &str, expected: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = count(s, condition);
        assert!(
            now <= expected,
            "{now} rows where {condition}, more than the {expected} sent"
        );
        if now == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{now} of {expected} rows where {condition} after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn hubs(s: &System, token: &str, uid: &str) -> reqwest::Response {
    session_get(format!("{}/api/user/{uid}/hubs", s.proxy.url), token).await
}

fn assert_no_duplicates(s: &System) {
    let duplicates = s
        .control
        .sql("select count(*) - count(distinct record_id) from audit_log");
    assert_eq!(duplicates, "0", "duplicate audit records");
}

async fn assert_nothing_dropped(s: &System) {
    let metrics = metrics_text(&s.proxy.metrics_url).await;
    assert!(metrics.contains("asf_audit_dropped_total 0"), "{metrics}");
}

#[tokio::test]
async fn every_request_and_event_lands_in_postgres_with_its_fields() {
    let s = System::start(&[]).await;
    let _worker = s.start_worker(&[]);
    let (token, uid) = logged_in(&s, "demo@example.com").await;
    let claims = claims_of(&token);
    let (user, tenant) = (
        claims["sub"].as_str().expect("sub"),
        claims["tid"].as_str().expect("tid"),
    );

    assert_eq!(hubs(&s, &token, &uid).await.status(), 200);
    let served = hubs(&s, &token, &uid).await;
    assert_eq!(served.status(), 200);
    let served_id = served.headers()["x-request-id"].to_str().expect("id").to_owned();
    let arm = client()
        .put(format!("{}/api/user/{uid}/hubs/0001A001/commands/arming", s.proxy.url))
        .bearer_auth(&token)
        .json(&json!({"command": "ARM", "ignoreProblems": true}))
        .send()
        .await
        .expect("arm");
    assert!(arm.status().is_success(), "arm: {}", arm.status());
    let (probe, _) = raw_request(&s.proxy.url, "GET", "/.env", &[]).await;
    assert_eq!(probe, 404);
    let anonymous = client()
        .get(format!("{}/api/user/{uid}/hubs", s.proxy.url))
        .send()
        .await
        .expect("anonymous");
    assert_eq!(anonymous.status(), 401);

    wait_for_rows(&s, "kind = 'request'", 6).await; // login (forwarded to us), 2 hubs, arm, probe, anonymous
    let row = s.control.sql(&format!(
        "select user_id, tenant_id, method, route, path, route_class, decision, status, upstream_status, \
         client_ip, latency_ms >= 0, queue_wait_ms >= 0 from audit_log where record_id = '{served_id}'"
    ));
    assert_eq!(
        row,
        format!("{user}|{tenant}|GET|{HUBS_ROUTE}|/api/user/{uid}/hubs|hub_read|forwarded|200|200|127.0.0.1|t|t")
    );
    assert_eq!(
        s.control
            .sql("select decision || ' ' || status || ' ' || route_class from audit_log where method = 'PUT'"),
        format!("forwarded {} command", arm.status().as_u16())
    );
    assert_eq!(
        s.control
            .sql("select decision || ' ' || status from audit_log where path = '/.env'"),
        "refused_shield 404"
    );
    assert_eq!(
        count(
            &s,
            &format!("decision = 'refused_auth' and status = 401 and path = '/api/user/{uid}/hubs'")
        ),
        1
    );
    // The control plane's own record of the login, with who it was.
    wait_for_rows(
        &s,
        &format!("kind = 'login' and user_id = '{user}' and decision = 'ok'"),
        1,
    )
    .await;

    // Admin queries: filters, pagination with a cursor, bounded pages.
    let admin = admin_token(&s).await;
    // The grant, made from the command line, is an admin change on record too.
    wait_for_rows(
        &s,
        "kind = 'admin' and route = 'asf-control grant_admin' and detail like '%demo2@example.com%'",
        1,
    )
    .await;
    let first = bearer_json(
        format!("{}/v1/admin/audit?user={user}&kind=request&limit=2", s.control.url),
        &admin,
    )
    .await;
    let items = first["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{first}");
    assert!(
        items
            .iter()
            .all(|i| i["request_id"].is_string() && i["time"].is_string())
    );
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second = bearer_json(
        format!(
            "{}/v1/admin/audit?user={user}&kind=request&limit=2&cursor={cursor}",
            s.control.url
        ),
        &admin,
    )
    .await;
    let ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| i["request_id"].as_str().expect("id").to_owned())
            .collect()
    };
    assert!(ids(&second).iter().all(|id| !ids(&first).contains(id)), "pages overlap");
    let total = ids(&first).len() + ids(&second).len();
    assert_eq!(total, 3, "two hub lists and the arming: {first} {second}");
    let refused = bearer_json(
        format!("{}/v1/admin/audit?decision=refused_shield&status=404", s.control.url),
        &admin,
    )
    .await;
    assert_eq!(refused["items"][0]["path"], "/.env", "{refused}");
    for bad in [
        "limit=0",
        "limit=501",
        "cursor=abc",
        "from=yesterday",
        "kind=nope",
        "colour=red",
    ] {
        let response = client()
            .get(format!("{}/v1/admin/audit?{bad}", s.control.url))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("bad query");
        assert_eq!(response.status(), 400, "{bad}");
    }
    let forbidden = client()
        .get(format!("{}/v1/admin/audit", s.control.url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("non-admin");
    assert_eq!(forbidden.status(), 403);

    // A user's own record: logins and commands, not reads.
    let own = bearer_json(format!("{}/v1/audit", s.control.url), &token).await;
    let kinds: Vec<String> = own["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            format!(
                "{}:{}",
                i["kind"].as_str().unwrap_or(""),
                i["class"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert!(kinds.contains(&"login:-".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"request:command".to_owned()), "{kinds:?}");
    assert!(!kinds.iter().any(|k| k.ends_with(":hub_read")), "{kinds:?}");

    assert_no_duplicates(&s);
    assert_nothing_dropped(&s).await;
}

#[tokio::test]
async fn the_chain_verifies_and_an_edited_row_is_named() {
    let s = System::start(&[]).await;
    let _worker = s.start_worker(&[]);
    let (token, uid) = logged_in(&s, "demo@example.com").await;
    for _ in 0..5 {
        assert_eq!(hubs(&s, &token, &uid).await.status(), 200);
    }
    wait_for_rows(&s, &format!("route = '{HUBS_ROUTE}'"), 5).await;
    let verified = s.control_command(&["audit", "verify"]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(String::from_utf8_lossy(&verified.stdout).contains("intact"));

    // Someone turns a refusal into a success, or the reverse: the check names that very record.
    let (seq, id) = {
        let row = s.control.sql(&format!(
            "select seq || '|' || record_id from audit_log where route = '{HUBS_ROUTE}' order by seq limit 1 offset 2"
        ));
        let (seq, id) = row.split_once('|').expect("row");
        (seq.to_owned(), id.to_owned())
    };
    s.control
        .sql(&format!("update audit_log set status = 403 where seq = {seq}"));
    let broken = s.control_command(&["audit", "verify"]);
    assert!(!broken.status.success());
    let message = String::from_utf8_lossy(&broken.stderr);
    assert!(
        message.contains(&format!("record {seq}")) && message.contains(&id),
        "{message}"
    );

    // Restoring the value restores the chain; deleting a row breaks it again.
    s.control
        .sql(&format!("update audit_log set status = 200 where seq = {seq}"));
    assert!(s.control_command(&["audit", "verify"]).status.success());
    s.control.sql(&format!("delete from audit_log where seq = {seq}"));
    let gap = s.control_command(&["audit", "verify"]);
    assert!(!gap.status.success());
    assert!(String::from_utf8_lossy(&gap.stderr).contains("missing"));
}

#[tokio::test]
async fn retention_prunes_old_records_and_what_remains_still_verifies() {
    let s = System::start(&[]).await;
    // Records from 400 days ago, written to the stream as a producer would, before the worker runs.
    let mut redis = redis_connection().await;
    let stream = asf_core::keyspace::Keyspace::new(s.shared.prefix.clone()).audit_stream();
    let old_ms = (now() - 400 * 86_400) * 1000;
    for i in 0..3 {
        let mut record = asf_core::audit::AuditRecord::new(asf_core::audit::Kind::Request, "forwarded", 200);
        record.at_ms = old_ms + i;
        let _: String = redis::cmd("XADD")
            .arg(&stream)
            .arg("*")
            .arg("r")
            .arg(serde_json::to_string(&record).expect("json"))
            .query_async(&mut redis)
            .await
            .expect("xadd");
    }
    // This worker keeps them (its own hourly pruning would race the test); the command below uses
    // the default retention of 365 days.
    let _worker = s.start_worker(&[("ASF_AUDIT_RETENTION_DAYS", "1000")]);
    wait_for_rows(&s, &format!("at_ms < {}", old_ms + 10), 3).await;
    let (token, uid) = logged_in(&s, "demo@example.com").await;
    assert_eq!(hubs(&s, &token, &uid).await.status(), 200);
    wait_for_rows(&s, &format!("route = '{HUBS_ROUTE}'"), 1).await;

    let pruned = s.control_command(&["audit", "prune"]);
    assert!(pruned.status.success());
    let out = String::from_utf8_lossy(&pruned.stdout);
    assert!(out.contains("pruned 3 "), "{out}");
    assert!(count(&s, "true") > 0);
    assert_eq!(count(&s, &format!("at_ms < {}", old_ms + 10)), 0);
    let verified = s.control_command(&["audit", "verify"]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(String::from_utf8_lossy(&verified.stdout).contains("(4..="));

    // Cutting the newest record and rewriting the head to match is found: the head is sealed.
    s.control
        .sql("delete from audit_log where seq = (select max(seq) from audit_log)");
    s.control.sql(
        "update audit_chain set last_seq = (select max(seq) from audit_log), \
         last_hash = (select chain_hash from audit_log order by seq desc limit 1)",
    );
    let cut = s.control_command(&["audit", "verify"]);
    assert!(!cut.status.success());
    assert!(
        String::from_utf8_lossy(&cut.stderr).contains("rewritten"),
        "{}",
        String::from_utf8_lossy(&cut.stderr)
    );
    // Pruning refuses to write on top of the rewrite (it would seal it), so it stays visible;
    // so does a rewrite that also removes the seal.
    assert!(!s.control_command(&["audit", "prune"]).status.success());
    s.control.sql("update audit_chain set seal = null");
    assert!(!s.control_command(&["audit", "prune"]).status.success());
    let unsealed = s.control_command(&["audit", "verify"]);
    assert!(!unsealed.status.success());
    assert!(String::from_utf8_lossy(&unsealed.stderr).contains("rewritten"));
}

#[tokio::test]
async fn a_worker_killed_between_commit_and_acknowledgement_loses_and_duplicates_nothing() {
    let s = System::start(&[]).await;
    let (token, uid) = logged_in(&s, "demo@example.com").await;
    for _ in 0..40 {
        assert_eq!(hubs(&s, &token, &uid).await.status(), 200);
    }
    // The records wait on the stream; the worker stores its first batch and dies before the ack.
    let mut doomed = s.start_worker(&[("ASF_TEST_FAULT", "audit-exit-after-commit")]);
    let exit = tokio::task::spawn_blocking(move || doomed.0.wait().expect("wait"))
        .await
        .expect("join");
    assert_eq!(exit.code(), Some(3), "the worker died at the fault point");
    let stored = count(&s, &format!("route = '{HUBS_ROUTE}'"));
    assert_eq!(stored, 40, "the batch was committed before the crash");
    let mut redis = redis_connection().await;
    let stream = asf_core::keyspace::Keyspace::new(s.shared.prefix.clone()).audit_stream();
    let summary: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg(&stream)
        .arg("audit-writers")
        .query_async(&mut redis)
        .await
        .expect("xpending");
    // A stream entry may carry several records, so only "some" entries can be asserted.
    assert!(
        matches!(summary.first(), Some(redis::Value::Int(n)) if *n >= 1),
        "the stored batch is still unacknowledged: {summary:?}"
    );

    // Its successor reads them again, stores nothing twice, and carries on.
    let _worker = s.start_worker(&[]);
    for _ in 0..10 {
        assert_eq!(hubs(&s, &token, &uid).await.status(), 200);
    }
    wait_for_rows(&s, &format!("route = '{HUBS_ROUTE}'"), 50).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let length: i64 = redis::cmd("XLEN")
            .arg(&stream)
            .query_async(&mut redis)
            .await
            .expect("xlen");
        if length == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{length} entries never acknowledged");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_no_duplicates(&s);
    assert!(s.control_command(&["audit", "verify"]).status.success());
}

#[tokio::test]
async fn a_postgres_outage_delays_records_but_loses_none() {
    let mut pg = OwnPostgres::start().await;
    let url = pg.url();
    let s = System::start(&[("DATABASE_URL", url.as_str())]).await;
    let _worker = s.start_worker(&[]);
    let (token, uid) = logged_in(&s, "demo@example.com").await;
    for _ in 0..20 {
        assert_eq!(hubs(&s, &token, &uid).await.status(), 200);
    }
    wait_for_rows(&s, &format!("route = '{HUBS_ROUTE}'"), 20).await;

    pg.stop();
    let outage = Instant::now();
    let mut sent = 20;
    while outage.elapsed() < Duration::from_secs(8) {
        assert_eq!(
            hubs(&s, &token, &uid).await.status(),
            200,
            "the proxy does not need PostgreSQL"
        );
        sent += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pg.resume().await;
    wait_for_rows(&s, &format!("route = '{HUBS_ROUTE}'"), sent).await;
    assert_no_duplicates(&s);
    assert_nothing_dropped(&s).await;
    assert!(s.control_command(&["audit", "verify"]).status.success());
}

#[tokio::test]
async fn a_redis_outage_is_buffered_at_the_proxy_and_flushed_after() {
    let mut redis = OwnRedis::start().await;
    let redis_url = redis.url();
    let s = System::start_with(&[], &[], &[("REDIS_URL", redis_url.as_str())]).await;
    let _worker = s.start_worker(&[("REDIS_URL", redis_url.as_str())]);
    let (token, uid) = logged_in(&s, "demo@example.com").await;
    for _ in 0..10 {
        assert_eq!(hubs(&s, &token, &uid).await.status(), 200);
    }
    wait_for_rows(&s, &format!("route = '{HUBS_ROUTE}'"), 10).await;

    redis.stop();
    let mut sent = 10;
    for _ in 0..30 {
        // Served from the local share or refused 429: recorded either way.
        let status = hubs(&s, &token, &uid).await.status();
        assert!(status == 200 || status == 429 || status == 503, "{status}");
        sent += 1;
    }
    let metrics = metrics_text(&s.proxy.metrics_url).await;
    let buffered: i64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("asf_audit_buffered "))
        .and_then(|v| v.trim().parse().ok())
        .expect("asf_audit_buffered");
    assert!(
        buffered >= 30,
        "records wait at the proxy while Redis is away: {buffered}"
    );

    redis.resume().await;
    wait_for_rows(&s, &format!("route = '{HUBS_ROUTE}'"), sent).await;
    assert_no_duplicates(&s);
    assert_nothing_dropped(&s).await;
}
