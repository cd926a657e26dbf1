//! The whole reservation decision in Rust, step for step what `budget.lua` does in Redis: the
//! local limiter runs it in memory, and the tests hold the script to it.

use std::time::Duration;

use super::config::BudgetPlan;
use super::decision::{BudgetSnapshot, LaneSnapshot, Outcome, RefusalReason, TenantQuota, hints};
use super::gcra::Track;
use super::lanes::{LANES, Lane};

/// The retry given to a tenant whose plan allows no requests at all.
const NO_ACCESS_RETRY_MS: i64 = 60_000;

/// The state the script keeps under the budget's keys (all the local limiter needs too).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BudgetState {
    /// Each lane's track TAT (0: idle).
    pub tats: [i64; LANES],
    /// The end of the last pause (0: none).
    pub pause_end_ms: i64,
    /// Granted slot times after `now - window`.
    pub grants: Vec<i64>,
}

/// A tenant's state: its GCRA time and its future slots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TenantState {
    pub tat_ms: i64,
    pub queued: Vec<i64>,
}

impl TenantState {
    /// Whether nothing of the tenant matters any more at `now_ms` (it may be forgotten).
    pub(crate) fn is_idle(&self, now_ms: i64) -> bool {
        self.tat_ms <= now_ms && self.queued.iter().all(|slot| *slot <= now_ms)
    }
}

/// The pause's end while it or its ramp window still matters at `now_ms`, else 0.
pub(crate) fn live_pause(pause_end_ms: i64, now_ms: i64, window_ms: i64) -> i64 {
    if pause_end_ms + window_ms <= now_ms {
        0
    } else {
        pause_end_ms
    }
}

fn tracks(plan: &BudgetPlan, tats: &[i64; LANES]) -> [Track; LANES] {
    Lane::ALL.map(|lane| {
        let params = plan.lane(lane);
        Track {
            tat_ms: tats[lane.index()],
            emission_ms: params.emission_ms,
            tolerance_ms: params.tolerance_ms,
        }
    })
}

/// The track and slot a request of `lane` gets: its own track if it is free at `not_before`, else
/// the most idle other track if that one is free then, else the next slot of its own track.
fn choose(tracks: &[Track; LANES], lane: Lane, not_before: i64) -> (usize, i64) {
    let own = lane.index();
    let slot = tracks[own].earliest_slot(not_before);
    if slot <= not_before {
        return (own, slot);
    }
    let most_idle = (0..LANES)
        .filter(|i| *i != own)
        .min_by_key(|i| (tracks[*i].tat_ms - tracks[*i].tolerance_ms, *i));
    match most_idle {
        Some(other) if tracks[other].is_free_at(not_before) => (other, not_before),
        _ => (own, slot),
    }
}

/// One reservation at `now_ms`: decides, and changes the state only when it grants.
pub(crate) fn reserve(
    plan: &BudgetPlan,
    state: &mut BudgetState,
    tenant: Option<(&TenantQuota, &mut TenantState)>,
    lane: Lane,
    now_ms: i64,
) -> Outcome {
    let window = plan.window_ms();
    let max_wait = plan.max_wait_ms();
    let refuse = |reason, retry_ms| Outcome::Refused { reason, retry_ms };

    let pause_end = live_pause(state.pause_end_ms, now_ms, window);
    let not_before = now_ms.max(pause_end);
    if not_before - now_ms > max_wait {
        return refuse(RefusalReason::Paused, not_before - max_wait - now_ms);
    }

    let tenant = tenant.map(|(quota, tenant_state)| {
        let (emission_ms, tolerance_ms) = quota.gcra_ms();
        let track = Track {
            tat_ms: tenant_state.tat_ms,
            emission_ms,
            tolerance_ms,
        };
        (quota, tenant_state, track)
    });
    if let Some((_, _, track)) = &tenant {
        if track.emission_ms <= 0 {
            return refuse(RefusalReason::TenantLimit, NO_ACCESS_RETRY_MS);
        }
        let at = track.earliest_slot(now_ms);
        if at > now_ms {
            return refuse(RefusalReason::TenantLimit, at - now_ms);
        }
    }

    let mut tracks = tracks(plan, &state.tats);
    let (chosen, slot) = choose(&tracks, lane, not_before);
    if slot - now_ms > max_wait {
        let retry_at = (0..LANES)
            .filter(|i| *i != lane.index())
            .map(|i| tracks[i].earliest_slot(not_before))
            .fold(slot - max_wait, i64::min);
        return refuse(RefusalReason::QueueFull, retry_at - now_ms);
    }

    if let Some((quota, tenant_state, _)) = &tenant
        && slot > now_ms
    {
        let mut future = tenant_state.queued.iter().filter(|s| **s > now_ms);
        let queued = future.clone().count();
        if queued >= usize::try_from(quota.max_queued).unwrap_or(usize::MAX) {
            let first = future.by_ref().min().copied().unwrap_or(slot);
            return refuse(RefusalReason::TenantQueueCap, first - now_ms);
        }
    }

    // Granted: commit.
    let ramping = pause_end > 0 && slot < pause_end + window;
    let step = tracks[chosen].emission_ms * if ramping { 2 } else { 1 };
    tracks[chosen].commit(slot, step);
    state.tats[chosen] = tracks[chosen].tat_ms;
    if let Some((_, tenant_state, mut track)) = tenant {
        track.commit(now_ms, track.emission_ms);
        tenant_state.tat_ms = track.tat_ms;
        if slot > now_ms {
            tenant_state.queued.push(slot);
        }
        tenant_state.queued.retain(|s| *s > now_ms);
    }
    state.grants.push(slot);
    state.grants.retain(|s| *s > now_ms - window);
    Outcome::Granted {
        slot_ms: slot,
        now_ms,
        lane: Lane::from_index(chosen).unwrap_or(lane),
        count: i64::try_from(state.grants.len()).unwrap_or(i64::MAX),
        oldest_ms: state.grants.iter().copied().min().unwrap_or(0),
        limit: plan.limit(),
        window_ms: window,
    }
}

/// The raw values a snapshot is computed from (what the script's snapshot returns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawSnapshot {
    pub now_ms: i64,
    pub pause_end_ms: i64,
    pub tats: [i64; LANES],
    pub count: i64,
    pub oldest_ms: i64,
}

impl RawSnapshot {
    /// Reads the current state of the in-memory model.
    pub(crate) fn of(state: &BudgetState, now_ms: i64, window_ms: i64) -> Self {
        let live: Vec<i64> = state
            .grants
            .iter()
            .copied()
            .filter(|s| *s > now_ms - window_ms)
            .collect();
        Self {
            now_ms,
            pause_end_ms: state.pause_end_ms,
            tats: state.tats,
            count: i64::try_from(live.len()).unwrap_or(i64::MAX),
            oldest_ms: live.iter().copied().min().unwrap_or(0),
        }
    }
}

/// The snapshot a reader sees from the raw values.
pub(crate) fn snapshot(plan: &BudgetPlan, raw: &RawSnapshot) -> BudgetSnapshot {
    let now = raw.now_ms;
    let window = plan.window_ms();
    let pause_end = live_pause(raw.pause_end_ms, now, window);
    let not_before = now.max(pause_end);
    let tracks = tracks(plan, &raw.tats);
    let lanes = Lane::ALL
        .iter()
        .map(|lane| {
            let (_, slot) = choose(&tracks, *lane, not_before);
            let track = &tracks[lane.index()];
            LaneSnapshot {
                lane: *lane,
                next_free_ms: slot,
                wait: Duration::from_millis(u64::try_from(slot - now).unwrap_or(0)),
                queued: track.queued_at(now),
                emission: Duration::from_millis(track.emission_ms.unsigned_abs()),
            }
        })
        .collect();
    let (remaining, reset_secs, utilisation) = hints(raw.count, raw.oldest_ms, now, plan.limit(), window);
    BudgetSnapshot {
        now_ms: now,
        limit: plan.limit(),
        window: plan.window(),
        lanes,
        granted_in_window: u32::try_from(raw.count.max(0)).unwrap_or(u32::MAX),
        remaining,
        reset_secs,
        utilisation,
        paused_until_ms: (pause_end > now).then_some(pause_end),
        ramp_until_ms: (pause_end > 0).then_some(pause_end + window),
    }
}

/// Records a pause until `now_ms + duration_ms` (never shortening one in force); returns its end.
pub(crate) fn pause(state: &mut BudgetState, now_ms: i64, duration_ms: i64, window_ms: i64) -> i64 {
    let current = live_pause(state.pause_end_ms, now_ms, window_ms);
    state.pause_end_ms = current.max(now_ms + duration_ms.max(0));
    state.pause_end_ms
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::throttle::config::BudgetConfig;
    use crate::throttle::decision::Decision;
    use crate::throttle::spec::RateSpec;

    const NOW: i64 = 1_700_000_000_000;

    fn plan(rate: &str, burst: u32) -> BudgetPlan {
        let config = BudgetConfig {
            burst,
            ..BudgetConfig::new(RateSpec::parse(rate).expect("rate"))
        };
        BudgetPlan::shared(&config).expect("plan")
    }

    fn decide(plan: &BudgetPlan, state: &mut BudgetState, lane: Lane, now: i64) -> Decision {
        reserve(plan, state, None, lane, now).into_decision()
    }

    /// Random arrivals in phases: bursts, overload, load at about the limit, a trickle, quiet; each
    /// phase with its own lane mix.
    #[derive(Default)]
    struct Arrivals {
        left: u32,
        max_gap: i64,
        lanes: Vec<Lane>,
    }

    impl Arrivals {
        fn next(&mut self, rng: &mut StdRng, limit: u32, window: i64) -> (i64, Lane) {
            if self.left == 0 {
                self.left = rng.gen_range(10..400);
                let per_call = window / i64::from(limit);
                self.max_gap = match rng.gen_range(0..5) {
                    0 => 0,
                    1 => per_call / 2,
                    2 => 2 * per_call,
                    3 => 8 * per_call,
                    _ => window,
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
    fn busiest_window(slots: &[i64], window: i64) -> usize {
        let mut sorted = slots.to_vec();
        sorted.sort_unstable();
        let mut end = 0;
        let mut most = 0;
        for start in 0..sorted.len() {
            while end < sorted.len() && sorted[end] <= sorted[start] + window {
                end += 1;
            }
            most = most.max(end - start);
        }
        most
    }

    #[test]
    fn no_window_ever_holds_more_than_the_limit_under_random_arrivals() {
        for (seed, rate, burst) in [(1, "100/60s", 3), (2, "100/60s", 10), (3, "20/10s", 5), (4, "9/1s", 3)] {
            let plan = plan(rate, burst);
            let mut rng = StdRng::seed_from_u64(seed);
            let mut state = BudgetState::default();
            let mut slots = Vec::new();
            let mut now = NOW;
            let mut arrivals = Arrivals::default();
            for _ in 0..20_000 {
                let (gap, lane) = arrivals.next(&mut rng, plan.limit(), plan.window_ms());
                now += gap;
                if rng.gen_bool(0.002) {
                    pause(&mut state, now, rng.gen_range(0..plan.window_ms()), plan.window_ms());
                }
                if let Decision::Granted(r) = decide(&plan, &mut state, lane, now) {
                    slots.push(r.slot_at_ms);
                }
            }
            let most = busiest_window(&slots, plan.window_ms());
            assert!(most <= plan.limit() as usize, "{rate}: {most} slots in one window");
            // The arrivals did saturate the budget, so the check above had something to catch.
            assert!(
                most >= plan.limit() as usize * 9 / 10,
                "{rate}: at most {most} slots in one window"
            );
            assert!(
                slots.len() > 1000,
                "{rate}: the budget was used ({} slots)",
                slots.len()
            );
        }
    }

    #[test]
    fn reads_alone_use_the_whole_budget_by_taking_idle_capacity_of_other_lanes() {
        let plan = plan("100/60s", 3);
        let mut state = BudgetState::default();
        let mut slots = Vec::new();
        let mut now = NOW;
        while now < NOW + 10 * 60_000 {
            if let Decision::Granted(r) = decide(&plan, &mut state, Lane::Read, now) {
                slots.push(r.slot_at_ms);
            }
            now += 50;
        }
        let per_window = slots
            .iter()
            .filter(|s| **s >= NOW + 60_000 && **s < NOW + 9 * 60_000)
            .count()
            / 8;
        assert!(per_window >= 95, "reads got {per_window} slots per minute");
        assert!(busiest_window(&slots, 60_000) <= 100);
    }

    #[test]
    fn a_command_gets_a_slot_within_one_command_interval_while_reads_saturate() {
        let plan = plan("100/60s", 3);
        let command_interval = plan.lane(Lane::Command).emission_ms;
        let mut state = BudgetState::default();
        let mut rng = StdRng::seed_from_u64(7);
        let mut now = NOW;
        let mut worst = 0;
        // Commands within their own share: at random gaps of one to four command intervals.
        let mut next_command = NOW + 60_000;
        for _ in 0..40_000 {
            now += 25;
            // Reads keep the queue full up to the max wait.
            decide(&plan, &mut state, Lane::Read, now);
            if now >= next_command {
                next_command = now + rng.gen_range(command_interval..4 * command_interval);
                match decide(&plan, &mut state, Lane::Command, now) {
                    Decision::Granted(r) => worst = worst.max(r.slot_at_ms - now),
                    refused => panic!("a command was refused: {refused:?}"),
                }
            }
        }
        assert!(
            state.tats[Lane::Read.index()] - now > plan.max_wait_ms() - 1000,
            "reads were queued up to the max wait"
        );
        assert!(worst <= command_interval, "a command waited {worst} ms");
        assert!(
            worst > 0,
            "commands did wait: reads had taken the idle command capacity"
        );
    }

    #[test]
    fn a_request_beyond_the_max_wait_is_refused_without_changing_anything() {
        let plan = plan("100/60s", 3);
        let mut state = BudgetState::default();
        let mut refused = None;
        for _ in 0..200 {
            let before = state.clone();
            match decide(&plan, &mut state, Lane::Read, NOW) {
                Decision::Granted(_) => {}
                decision => {
                    assert_eq!(state, before);
                    refused = Some(decision);
                    break;
                }
            }
        }
        // 20 s of reads (one per 884 ms) plus the idle command and account slots.
        assert_eq!(state.grants.len(), 1 + 20_000 / 884 + 2);
        let Some(Decision::Refused {
            reason,
            retry_after_secs,
        }) = refused
        else {
            panic!("no refusal");
        };
        assert_eq!(reason, RefusalReason::QueueFull);
        // The next read slot is 332 ms beyond the max wait: a retry is admitted within a second.
        assert_eq!(retry_after_secs, 1);
    }

    #[test]
    fn tenant_limits_refuse_at_once_and_leave_the_budget_and_other_tenants_alone() {
        let plan = plan("100/60s", 3);
        let mut state = BudgetState::default();
        let quota = TenantQuota::new("a", 6).with_burst(2);
        let mut a = TenantState::default();
        let mut b = TenantState::default();
        let reserve_for = |tenant: &mut TenantState, state: &mut BudgetState, now| {
            reserve(&plan, state, Some((&quota, tenant)), Lane::Read, now).into_decision()
        };
        assert!(reserve_for(&mut a, &mut state, NOW).is_granted());
        assert!(reserve_for(&mut a, &mut state, NOW).is_granted());
        let before = state.clone();
        assert_eq!(
            reserve_for(&mut a, &mut state, NOW),
            Decision::Refused {
                reason: RefusalReason::TenantLimit,
                retry_after_secs: 10
            }
        );
        assert_eq!(state, before);
        assert!(reserve_for(&mut b, &mut state, NOW).is_granted());
        assert!(reserve_for(&mut a, &mut state, NOW + 10_000).is_granted());
    }

    #[test]
    fn a_tenant_at_its_queue_cap_is_refused_until_a_queued_slot_passes() {
        let plan = plan("100/60s", 3);
        let mut state = BudgetState::default();
        let quota = TenantQuota::new("a", 6000).with_burst(100).with_max_queued(2);
        let mut tenant = TenantState::default();
        let mut slots = Vec::new();
        let decision = loop {
            match reserve(&plan, &mut state, Some((&quota, &mut tenant)), Lane::Read, NOW).into_decision() {
                Decision::Granted(r) => slots.push(r.slot_at_ms),
                refused => break refused,
            }
        };
        // Three present slots (own and idle tracks), then two queued.
        assert_eq!(slots, vec![NOW, NOW, NOW, NOW + 884, NOW + 1768]);
        assert_eq!(
            decision,
            Decision::Refused {
                reason: RefusalReason::TenantQueueCap,
                retry_after_secs: 1
            }
        );
        let mut other = TenantState::default();
        assert!(reserve(&plan, &mut state, Some((&quota, &mut other)), Lane::Read, NOW).is_granted());
    }

    impl Outcome {
        fn is_granted(&self) -> bool {
            matches!(self, Outcome::Granted { .. })
        }
    }

    #[test]
    fn a_pause_holds_every_lane_then_the_next_window_runs_at_half_rate() {
        let plan = plan("100/60s", 3);
        let mut state = BudgetState::default();
        let end = pause(&mut state, NOW, 10_000, plan.window_ms());
        assert_eq!(end, NOW + 10_000);
        // Within the max wait: queued behind the pause.
        let Decision::Granted(r) = decide(&plan, &mut state, Lane::Command, NOW) else {
            panic!("refused");
        };
        assert_eq!(r.slot_at_ms, NOW + 10_000);
        // A longer pause is refused at once.
        pause(&mut state, NOW, 50_000, plan.window_ms());
        assert_eq!(
            decide(&plan, &mut state, Lane::Read, NOW),
            Decision::Refused {
                reason: RefusalReason::Paused,
                retry_after_secs: 30
            }
        );
        // After the pause, reads come at twice the read interval for one window.
        let after = NOW + 50_000;
        let mut reads = Vec::new();
        let mut now = after;
        while now < after + 60_000 {
            if let Decision::Granted(r) = decide(&plan, &mut state, Lane::Read, now)
                && r.lane_used == Lane::Read
                && r.slot_at_ms < after + 60_000
            {
                reads.push(r.slot_at_ms);
            }
            now += 100;
        }
        let gaps: Vec<i64> = reads.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|g| *g >= 2 * 884), "{gaps:?}");
        let snapshot = snapshot(&plan, &RawSnapshot::of(&state, after + 1000, plan.window_ms()));
        assert_eq!(snapshot.paused_until_ms, None);
        assert_eq!(snapshot.ramp_until_ms, Some(after + 60_000));
    }

    #[test]
    fn a_snapshot_shows_each_lanes_next_slot_and_queue() {
        let plan = plan("100/60s", 3);
        let mut state = BudgetState::default();
        for _ in 0..10 {
            decide(&plan, &mut state, Lane::Read, NOW);
        }
        let snap = snapshot(&plan, &RawSnapshot::of(&state, NOW, plan.window_ms()));
        let read = snap.lane(Lane::Read).expect("read lane");
        // 8 read slots (NOW .. NOW + 7 * 884) plus the idle command and account slots taken at NOW.
        assert_eq!(read.next_free_ms, NOW + 8 * 884);
        assert_eq!(read.queued, 7);
        let command = snap.lane(Lane::Command).expect("command lane");
        assert_eq!(command.next_free_ms, NOW + 3093);
        assert_eq!(snap.granted_in_window, 10);
        assert_eq!(snap.remaining, 90);
        assert_eq!(snap.paused_until_ms, None);
    }
}
