//! The shared budget against a real Redis (redis://127.0.0.1:6379): the script agrees with the
//! Rust model, keeps every window within the limit, and serves tenants, pauses and pipelines.
//! Each test has its own key prefix; keys expire by themselves.

use std::time::Duration;

use asf_core::keyspace::Keyspace;
use asf_core::throttle::{
    BudgetConfig, Clock, Decision, GlobalBudget, Heartbeat, Lane, LocalBudget, ManualClock, RateSpec, RefusalReason,
    ReserveRequest, TenantQuota,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::aio::MultiplexedConnection;

const REDIS_URL: &str = "redis://127.0.0.1:6379";
/// A fixed Unix time for tests on an injected clock.
const NOW: i64 = 1_700_000_000_000;

async fn redis() -> MultiplexedConnection {
    redis::Client::open(REDIS_URL)
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis is running at 127.0.0.1:6379")
}

fn keys() -> Keyspace {
    Keyspace::new(format!("t-{}", uuid::Uuid::new_v4()))
}

fn config(rate: &str) -> BudgetConfig {
    BudgetConfig::new(RateSpec::parse(rate).expect("rate"))
}

/// A shared budget under fresh keys, on an injected clock.
fn budget_on(clock: &ManualClock, config: &BudgetConfig) -> GlobalBudget {
    GlobalBudget::new(keys(), config)
        .expect("budget")
        .with_clock(Clock::Manual(clock.clone()))
}

/// Random arrivals in phases: bursts, overload, load at about the limit, a trickle, quiet; each
/// phase with its own lane mix.
#[derive(Default)]
struct Arrivals {
    left: u32,
    max_gap: u64,
    lanes: Vec<Lane>,
}

impl Arrivals {
    fn next(&mut self, rng: &mut StdRng, limit: u64, window_ms: u64) -> (u64, Lane) {
        if self.left == 0 {
            self.left = rng.gen_range(10..200);
            let per_call = window_ms / limit;
            self.max_gap = match rng.gen_range(0..5) {
                0 => 0,
                1 => per_call / 2,
                2 => 2 * per_call,
                3 => 8 * per_call,
                _ => window_ms,
            };
            self.lanes = match rng.gen_range(0..4) {
                0 => vec![Lane::Read],
                1 => vec![Lane::Command, Lane::Account],
                _ => Lane::ALL.to_vec(),
            };
        }
        self.left -= 1;
        let lane = self.lanes[rng.gen_range(0..self.lanes.len())];
        (rng.gen_range(0..=self.max_gap), lane)
    }
}

/// The most slots found in any closed window `[t, t + window]`.
fn busiest_window(slots: &[i64], window_ms: i64) -> usize {
    let mut sorted = slots.to_vec();
    sorted.sort_unstable();
    let mut end = 0;
    let mut most = 0;
    for start in 0..sorted.len() {
        while end < sorted.len() && sorted[end] <= sorted[start] + window_ms {
            end += 1;
        }
        most = most.max(end - start);
    }
    most
}

#[tokio::test]
async fn the_script_and_the_rust_model_agree_on_a_random_sequence_of_calls() {
    let mut conn = redis().await;
    let clock = ManualClock::new(NOW);
    let config = config("30/10s");
    let shared = budget_on(&clock, &config);
    let model = LocalBudget::standalone(&config, Clock::Manual(clock.clone())).expect("model");
    let tenants = [
        TenantQuota::new("small", 12).with_burst(2).with_max_queued(1),
        TenantQuota::new("large", 600).with_burst(10).with_max_queued(5),
        TenantQuota::new("none", 0),
    ];
    let mut rng = StdRng::seed_from_u64(42);
    let mut seen = std::collections::BTreeSet::new();
    for step in 0..1500 {
        clock.advance(Duration::from_millis(match rng.gen_range(0..10) {
            0 => rng.gen_range(0..15_000),
            1..=4 => 0,
            _ => rng.gen_range(0..400),
        }));
        if rng.gen_bool(0.005) {
            let duration = Duration::from_millis(rng.gen_range(0..25_000));
            let shared_end = shared.pause(&mut conn, duration).await.expect("pause");
            assert_eq!(shared_end, model.pause(duration), "pause at step {step}");
        }
        let lane = Lane::ALL[rng.gen_range(0..3)];
        let request = match rng.gen_range(0..5) {
            0 | 1 => ReserveRequest::new(lane),
            i => ReserveRequest::for_tenant(lane, tenants[i - 2].clone()),
        };
        let expected = model.reserve(&request);
        let actual = shared.reserve(&mut conn, &request).await.expect("reserve");
        assert_eq!(actual, expected, "step {step}: {request:?}");
        seen.insert(match &actual {
            Decision::Granted(r) if r.wait.is_zero() => format!("now via {}", r.lane_used),
            Decision::Granted(r) => format!("queued via {}", r.lane_used),
            Decision::Refused { reason, .. } => reason.as_str().to_string(),
            Decision::NotEntitled { .. } => "not entitled".to_string(),
        });
        if step % 100 == 0 {
            assert_eq!(
                shared.snapshot(&mut conn).await.expect("snapshot"),
                model.snapshot(),
                "step {step}"
            );
        }
    }
    // Every path was taken: present slots from every track, queued slots, every refusal.
    let expected: std::collections::BTreeSet<String> = [
        "now via command",
        "now via account",
        "now via read",
        "queued via command",
        "queued via account",
        "queued via read",
        "queue_full",
        "tenant_limit",
        "tenant_queue_cap",
        "paused",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn no_window_ever_holds_more_than_the_limit_in_redis_under_random_arrivals() {
    let mut conn = redis().await;
    let clock = ManualClock::new(NOW);
    let config = config("20/5s");
    // Two "instances" sharing the keys.
    let keys = keys();
    let instance = || {
        GlobalBudget::new(keys.clone(), &config)
            .expect("budget")
            .with_clock(Clock::Manual(clock.clone()))
    };
    let (first, second) = (instance(), instance());
    let mut rng = StdRng::seed_from_u64(7);
    let mut slots = Vec::new();
    let mut arrivals = Arrivals::default();
    for _ in 0..3000 {
        let (gap, lane) = arrivals.next(&mut rng, 20, 5000);
        clock.advance(Duration::from_millis(gap));
        let budget = if rng.gen_bool(0.5) { &first } else { &second };
        if let Decision::Granted(r) = budget
            .reserve(&mut conn, &ReserveRequest::new(lane))
            .await
            .expect("reserve")
        {
            slots.push(r.slot_at_ms);
        }
    }
    assert!(slots.len() > 500, "the budget was used: {}", slots.len());
    let most = busiest_window(&slots, 5000);
    assert!(most <= 20, "{most} slots in one window");
    // The arrivals did saturate the budget, so the check above had something to catch.
    assert!(most >= 18, "at most {most} slots in one window");
}

#[tokio::test]
async fn a_command_gets_a_slot_within_one_command_interval_while_reads_saturate() {
    let mut conn = redis().await;
    let clock = ManualClock::new(NOW);
    let budget = budget_on(&clock, &config("100/60s"));
    let command_interval = budget.plan().lane(Lane::Command).emission_ms;
    // Reads every 50 ms fill the queue up to the max wait.
    for _ in 0..600 {
        clock.advance(Duration::from_millis(50));
        budget
            .reserve(&mut conn, &ReserveRequest::new(Lane::Read))
            .await
            .expect("read");
    }
    let snapshot = budget.snapshot(&mut conn).await.expect("snapshot");
    assert!(snapshot.lane(Lane::Read).expect("read").wait > Duration::from_secs(19));
    let mut worst = Duration::ZERO;
    // Commands within their own share: one every 3.5 s.
    for _ in 0..20 {
        for _ in 0..70 {
            clock.advance(Duration::from_millis(50));
            budget
                .reserve(&mut conn, &ReserveRequest::new(Lane::Read))
                .await
                .expect("read");
        }
        match budget
            .reserve(&mut conn, &ReserveRequest::new(Lane::Command))
            .await
            .expect("command")
        {
            Decision::Granted(r) => worst = worst.max(r.wait),
            refused => panic!("a command was refused: {refused:?}"),
        }
    }
    assert!(
        worst <= Duration::from_millis(command_interval as u64),
        "worst command wait {worst:?}"
    );
}

#[tokio::test]
async fn a_full_queue_is_refused_at_once_and_spends_nothing() {
    let mut conn = redis().await;
    let clock = ManualClock::new(NOW);
    let budget = budget_on(&clock, &config("100/60s"));
    let refusal = loop {
        match budget
            .reserve(&mut conn, &ReserveRequest::new(Lane::Read))
            .await
            .expect("reserve")
        {
            Decision::Granted(_) => {}
            refused => break refused,
        }
    };
    assert_eq!(
        refusal,
        Decision::Refused {
            reason: RefusalReason::QueueFull,
            retry_after_secs: 1
        }
    );
    let before = budget.snapshot(&mut conn).await.expect("snapshot");
    for _ in 0..5 {
        assert!(
            !budget
                .reserve(&mut conn, &ReserveRequest::new(Lane::Read))
                .await
                .expect("reserve")
                .is_granted()
        );
    }
    assert_eq!(budget.snapshot(&mut conn).await.expect("snapshot"), before);
    // Commands still have their reserved share.
    let command = budget
        .reserve(&mut conn, &ReserveRequest::new(Lane::Command))
        .await
        .expect("command");
    assert_eq!(command.reservation().map(|r| r.lane_used), Some(Lane::Command));
}

#[tokio::test]
async fn a_tenant_over_its_limit_is_refused_while_another_tenant_is_served() {
    let mut conn = redis().await;
    let budget = GlobalBudget::new(keys(), &config("100/60s")).expect("budget");
    let noisy = TenantQuota::new("noisy", 2).with_burst(2);
    let quiet = TenantQuota::new("quiet", 2).with_burst(2);
    for _ in 0..2 {
        let decision = budget
            .reserve(&mut conn, &ReserveRequest::for_tenant(Lane::Read, noisy.clone()))
            .await;
        assert!(decision.expect("reserve").is_granted());
    }
    let before = budget.snapshot(&mut conn).await.expect("snapshot");
    let over = budget
        .reserve(&mut conn, &ReserveRequest::for_tenant(Lane::Read, noisy.clone()))
        .await
        .expect("reserve");
    let Decision::Refused {
        reason: RefusalReason::TenantLimit,
        retry_after_secs,
    } = over
    else {
        panic!("not refused: {over:?}");
    };
    assert!((29..=30).contains(&retry_after_secs), "{retry_after_secs}");
    let after = budget.snapshot(&mut conn).await.expect("snapshot");
    assert_eq!(after.granted_in_window, before.granted_in_window);
    let other = budget
        .reserve(&mut conn, &ReserveRequest::for_tenant(Lane::Read, quiet))
        .await;
    assert!(other.expect("reserve").is_granted());
}

#[tokio::test]
async fn a_tenant_at_its_queue_cap_is_refused_until_a_queued_slot_passes() {
    let mut conn = redis().await;
    let clock = ManualClock::new(NOW);
    let budget = budget_on(&clock, &config("100/60s"));
    let quota = TenantQuota::new("acme", 6000).with_burst(100).with_max_queued(2);
    let request = ReserveRequest::for_tenant(Lane::Read, quota);
    let mut waits = Vec::new();
    let refusal = loop {
        match budget.reserve(&mut conn, &request).await.expect("reserve") {
            Decision::Granted(r) => waits.push(r.wait.as_millis()),
            refused => break refused,
        }
    };
    assert_eq!(waits, vec![0, 0, 0, 884, 1768]);
    assert!(matches!(
        refusal,
        Decision::Refused {
            reason: RefusalReason::TenantQueueCap,
            retry_after_secs: 1
        }
    ));
    clock.advance(Duration::from_millis(900));
    assert!(budget.reserve(&mut conn, &request).await.expect("reserve").is_granted());
}

#[tokio::test]
async fn a_pause_reaches_every_process_sharing_the_keys_and_then_ramps_up() {
    let mut conn = redis().await;
    let keys = keys();
    let config = config("100/60s");
    let proxy = GlobalBudget::new(keys.clone(), &config).expect("budget");
    let worker = GlobalBudget::new(keys, &config).expect("budget");
    let until = proxy.pause(&mut conn, Duration::from_secs(45)).await.expect("pause");
    let refused = worker
        .reserve(&mut conn, &ReserveRequest::new(Lane::Command))
        .await
        .expect("reserve");
    let Decision::Refused {
        reason: RefusalReason::Paused,
        retry_after_secs,
    } = refused
    else {
        panic!("not paused: {refused:?}");
    };
    assert!((24..=25).contains(&retry_after_secs), "{retry_after_secs}");
    // A shorter pause does not shorten it.
    assert_eq!(
        worker.pause(&mut conn, Duration::from_secs(1)).await.expect("pause"),
        until
    );
    let snapshot = worker.snapshot(&mut conn).await.expect("snapshot");
    assert_eq!(snapshot.paused_until_ms, Some(until));
    assert_eq!(snapshot.ramp_until_ms, Some(until + 60_000));
    assert!(snapshot.lanes.iter().all(|l| l.next_free_ms == until));
}

#[tokio::test]
async fn slots_after_a_pause_come_at_half_rate_for_one_window() {
    let mut conn = redis().await;
    let clock = ManualClock::new(NOW);
    let budget = budget_on(&clock, &config("100/60s"));
    let until = budget.pause(&mut conn, Duration::from_secs(5)).await.expect("pause");
    let mut command_slots = Vec::new();
    for _ in 0..4 {
        let r = budget
            .reserve(&mut conn, &ReserveRequest::new(Lane::Command))
            .await
            .expect("reserve");
        if let Some(r) = r.reservation()
            && r.lane_used == Lane::Command
        {
            command_slots.push(r.slot_at_ms - until);
        }
    }
    // The first command slot at the pause's end, the next one two command intervals later.
    assert_eq!(command_slots, vec![0, 2 * 3093]);
}

#[tokio::test]
async fn reservations_use_redis_time_and_carry_the_client_hints() {
    let mut conn = redis().await;
    let budget = GlobalBudget::new(keys(), &config("100/60s")).expect("budget");
    let decision = budget
        .reserve(&mut conn, &ReserveRequest::new(Lane::Read))
        .await
        .expect("reserve");
    let r = decision.reservation().expect("granted");
    let system_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    assert!(
        (r.slot_at_ms - system_ms).abs() < 5000,
        "Redis and this machine roughly agree"
    );
    assert_eq!(r.wait_duration(), Duration::ZERO);
    assert_eq!(r.lane_used, Lane::Read);
    assert_eq!(r.remaining, 99);
    assert!((59..=60).contains(&r.reset_secs));
    assert!((r.utilisation - 0.01).abs() < 1e-9);
}

#[tokio::test]
async fn every_key_the_budget_writes_expires() {
    let mut conn = redis().await;
    let keys = keys();
    let budget = GlobalBudget::new(keys.clone(), &config("100/60s")).expect("budget");
    let quota = TenantQuota::new("acme", 600);
    for _ in 0..6 {
        budget
            .reserve(&mut conn, &ReserveRequest::for_tenant(Lane::Read, quota.clone()))
            .await
            .expect("reserve");
    }
    budget.pause(&mut conn, Duration::from_millis(10)).await.expect("pause");
    Heartbeat::new(keys.clone(), Duration::from_secs(1))
        .heartbeat(&mut conn, "proxy-1")
        .await
        .expect("heartbeat");
    let written = [
        keys.budget_lane(Lane::Command),
        keys.budget_lane(Lane::Account),
        keys.budget_lane(Lane::Read),
        keys.budget_pause(),
        keys.budget_grants(),
        keys.tenant_rate("acme"),
        keys.tenant_queue("acme"),
        keys.instances(),
    ];
    for key in written {
        let ttl: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut conn).await.expect("pttl");
        assert!(ttl > 0 && ttl <= 81_000, "{key}: {ttl}");
    }
}

#[tokio::test]
async fn live_instances_count_recent_heartbeats_and_forget_silent_ones() {
    let mut conn = redis().await;
    let clock = ManualClock::new(NOW);
    let heartbeat = Heartbeat::new(keys(), Duration::from_secs(5)).with_clock(Clock::Manual(clock.clone()));
    assert_eq!(heartbeat.live_instances(&mut conn).await.expect("count"), 0);
    assert_eq!(heartbeat.heartbeat(&mut conn, "proxy-1").await.expect("beat"), 1);
    assert_eq!(heartbeat.heartbeat(&mut conn, "worker").await.expect("beat"), 2);
    assert_eq!(heartbeat.heartbeat(&mut conn, "proxy-1").await.expect("beat"), 2);
    clock.advance(Duration::from_secs(10));
    assert_eq!(heartbeat.heartbeat(&mut conn, "proxy-2").await.expect("beat"), 3);
    clock.advance(Duration::from_secs(6));
    // proxy-1 and worker last beat 16 s ago: more than three intervals.
    assert_eq!(heartbeat.live_instances(&mut conn).await.expect("count"), 1);
}

#[tokio::test]
async fn a_failed_precondition_is_refused_before_anything_is_spent() {
    use asf_core::throttle::Precondition;
    let mut conn = redis().await;
    let keys = keys();
    let budget = GlobalBudget::new(keys.clone(), &config("100/60s")).expect("budget");
    let guarded = |issued_at: i64| {
        ReserveRequest::for_tenant(Lane::Read, TenantQuota::new("t1", 60)).with_precondition(Precondition {
            absent: vec![keys.revoked_token("j1")],
            not_before: Some((keys.user_not_before("u1"), issued_at)),
            fetch: Some(keys.ajax_session("u1")),
            entitlement: None,
        })
    };
    let before = budget.snapshot(&mut conn).await.expect("snapshot");

    let missing = budget.reserve(&mut conn, &guarded(1000)).await.expect("reserve");
    assert!(
        matches!(
            missing,
            Decision::Refused {
                reason: RefusalReason::Missing,
                ..
            }
        ),
        "{missing:?}"
    );

    let _: () = redis::cmd("SET")
        .arg(keys.ajax_session("u1"))
        .arg("sealed")
        .query_async(&mut conn)
        .await
        .expect("set");
    let _: () = redis::cmd("SET")
        .arg(keys.user_not_before("u1"))
        .arg(2000)
        .query_async(&mut conn)
        .await
        .expect("set");
    let suspended = budget.reserve(&mut conn, &guarded(1000)).await.expect("reserve");
    assert!(
        matches!(
            suspended,
            Decision::Refused {
                reason: RefusalReason::Precondition,
                ..
            }
        ),
        "{suspended:?}"
    );

    let granted = budget.reserve(&mut conn, &guarded(2000)).await.expect("reserve");
    assert_eq!(granted.reservation().and_then(|r| r.fetched.as_deref()), Some("sealed"));

    let _: () = redis::cmd("SET")
        .arg(keys.revoked_token("j1"))
        .arg(1)
        .query_async(&mut conn)
        .await
        .expect("set");
    let revoked = budget.reserve(&mut conn, &guarded(3000)).await.expect("reserve");
    assert!(
        matches!(
            revoked,
            Decision::Refused {
                reason: RefusalReason::Precondition,
                ..
            }
        ),
        "{revoked:?}"
    );

    // Only the one granted call was spent.
    let after = budget.snapshot(&mut conn).await.expect("snapshot");
    assert_eq!(after.granted_in_window, before.granted_in_window + 1);
}

#[tokio::test]
async fn the_plan_is_checked_in_the_same_step_and_a_refusal_spends_nothing() {
    use asf_core::entitlement::Entitlement;
    use asf_core::throttle::{EntitlementGuard, Precondition};
    let mut conn = redis().await;
    let keys = keys();
    let budget = GlobalBudget::new(keys.clone(), &config("100/60s")).expect("budget");
    let _: () = redis::cmd("SET")
        .arg(keys.ajax_session("u1"))
        .arg("sealed")
        .query_async(&mut conn)
        .await
        .expect("set");
    let call = |class: &str, allowed_when_absent: bool| {
        ReserveRequest::for_tenant(Lane::Command, TenantQuota::new("t1", 60)).with_precondition(Precondition {
            absent: vec![],
            not_before: None,
            fetch: Some(keys.ajax_session("u1")),
            entitlement: Some(EntitlementGuard {
                key: keys.entitlement("t1"),
                class: class.into(),
                allowed_when_absent,
                upgrade_when_absent: "pro".into(),
            }),
        })
    };
    let before = budget.snapshot(&mut conn).await.expect("snapshot");

    // No entitlement stored: only what the free plan allows.
    let refused = budget
        .reserve(&mut conn, &call("command", false))
        .await
        .expect("reserve");
    assert_eq!(
        refused,
        Decision::NotEntitled {
            plan: "free".into(),
            upgrade: Some("pro".into())
        }
    );
    let free_read = budget
        .reserve(&mut conn, &call("hub_read", true))
        .await
        .expect("reserve");
    assert_eq!(free_read.reservation().and_then(|r| r.entitlement.clone()), None);

    // A stored plan decides, and comes back with the grant.
    let basic = Entitlement {
        plan: "basic".into(),
        per_minute: 30,
        classes: vec!["hub_read".into(), "read".into()],
        upgrades: vec![("command".into(), "pro".into())],
    };
    let mut set = redis::pipe();
    set.cmd("DEL").arg(keys.entitlement("t1")).ignore();
    for (field, value) in basic.fields() {
        set.cmd("HSET")
            .arg(keys.entitlement("t1"))
            .arg(field)
            .arg(value)
            .ignore();
    }
    let _: () = set.query_async(&mut conn).await.expect("hset");
    let refused = budget
        .reserve(&mut conn, &call("command", false))
        .await
        .expect("reserve");
    assert_eq!(
        refused,
        Decision::NotEntitled {
            plan: "basic".into(),
            upgrade: Some("pro".into())
        }
    );
    let granted = budget.reserve(&mut conn, &call("read", false)).await.expect("reserve");
    let reservation = granted.reservation().expect("granted");
    assert_eq!(reservation.fetched.as_deref(), Some("sealed"));
    let seen = reservation.entitlement.clone().expect("entitlement seen");
    assert_eq!((seen.plan.as_str(), seen.per_minute), ("basic", Some(30)));
    assert!(seen.allows("read") && !seen.allows("command"));

    // Two granted calls were spent; the refusals spent nothing.
    let after = budget.snapshot(&mut conn).await.expect("snapshot");
    assert_eq!(after.granted_in_window, before.granted_in_window + 2);
}
