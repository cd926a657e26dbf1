//! Tenant usage counts (the admin's busiest tenants) and user activity marks (the worker keeps
//! active users' Ajax sessions alive), tallied in memory and written to Redis about once a second
//! in one transaction by the budget heartbeat, rather than as three more commands in every
//! request's admission round trip.
//!
//! While Redis is unreachable the tally keeps growing, up to [`MAX_PENDING`] tenants and as many
//! users, and is written when Redis answers again. A write is attempted once: if it fails or times
//! out, its tally is dropped and logged rather than sent again (it may have been applied, and
//! counting twice is worse than a gap). What a process had not written when it stopped, at most
//! about a second's worth, is lost too: both are statistics, not state the budget relies on.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use asf_core::keyspace::Keyspace;

/// How long a tenant's per-minute usage counter is kept.
pub const USAGE_TTL_SECS: i64 = 180;
/// Most tenants (per minute) and most users held unwritten; past it, new ones are not tallied.
pub const MAX_PENDING: usize = 100_000;

#[derive(Debug, Default)]
struct Pending {
    /// Requests per Unix minute, per tenant.
    requests: HashMap<i64, HashMap<String, u64>>,
    /// Each active user's last admitted request (Unix seconds).
    last_seen: HashMap<String, i64>,
    /// Marks not tallied because the tally was full.
    skipped: u64,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.requests.is_empty() && self.last_seen.is_empty()
    }
}

/// This process's unwritten usage, and where it goes.
#[derive(Debug)]
pub struct UsageTally {
    keys: Keyspace,
    pending: Mutex<Pending>,
}

impl UsageTally {
    pub fn new(keys: Keyspace) -> Self {
        Self {
            keys,
            pending: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one request of `tenant` that reached the budget at Unix time `now` (seconds).
    pub fn count_request(&self, tenant: &str, now: i64) {
        let mut pending = self.lock();
        let counts = pending.requests.entry(now.div_euclid(60)).or_default();
        if let Some(n) = counts.get_mut(tenant) {
            *n += 1;
        } else if counts.len() < MAX_PENDING {
            counts.insert(tenant.to_owned(), 1);
        } else {
            pending.skipped += 1;
        }
    }

    /// Marks `user` active at Unix time `now` (seconds): an admitted request.
    pub fn mark_active(&self, user: &str, now: i64) {
        let mut pending = self.lock();
        if let Some(at) = pending.last_seen.get_mut(user) {
            *at = (*at).max(now);
        } else if pending.last_seen.len() < MAX_PENDING {
            pending.last_seen.insert(user.to_owned(), now);
        } else {
            pending.skipped += 1;
        }
    }

    /// Writes everything tallied so far in one `MULTI`/`EXEC`, within `timeout`. Never fails: a
    /// tally that could not be written is dropped and logged (see the module doc).
    pub async fn flush(&self, conn: &mut impl redis::aio::ConnectionLike, timeout: Duration) {
        let taken = {
            let mut pending = self.lock();
            if pending.is_empty() && pending.skipped == 0 {
                return;
            }
            std::mem::take(&mut *pending)
        };
        if taken.skipped > 0 {
            tracing::warn!(
                skipped = taken.skipped,
                "usage tally full: some requests were not counted"
            );
        }
        if taken.is_empty() {
            return;
        }
        let error = match tokio::time::timeout(timeout, write(conn, &self.keys, &taken)).await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timed out".to_owned(),
        };
        let requests: u64 = taken.requests.values().flat_map(HashMap::values).sum();
        tracing::warn!(
            %error,
            requests,
            users = taken.last_seen.len(),
            "usage tally not written; dropped"
        );
    }
}

async fn write(conn: &mut impl redis::aio::ConnectionLike, keys: &Keyspace, tally: &Pending) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    pipe.atomic();
    if !tally.last_seen.is_empty() {
        // GT: a user's mark never moves back (another process may have written a later one).
        let zadd = pipe.cmd("ZADD").arg(keys.active_users()).arg("GT");
        for (user, seen) in &tally.last_seen {
            zadd.arg(*seen).arg(user);
        }
        zadd.ignore();
    }
    for (minute, tenants) in &tally.requests {
        let key = keys.tenant_usage(*minute);
        for (tenant, n) in tenants {
            pipe.cmd("ZINCRBY").arg(&key).arg(*n).arg(tenant).ignore();
        }
        pipe.cmd("EXPIRE").arg(&key).arg(USAGE_TTL_SECS).ignore();
    }
    pipe.query_async::<()>(conn).await
}

#[cfg(test)]
mod tests {
    use super::*;

    type Counts = Vec<(i64, String, u64)>;
    type Seen = Vec<(String, i64)>;

    fn snapshot(tally: &UsageTally) -> (Counts, Seen) {
        let pending = tally.lock();
        let mut requests: Vec<_> = pending
            .requests
            .iter()
            .flat_map(|(m, t)| t.iter().map(move |(tenant, n)| (*m, tenant.clone(), *n)))
            .collect();
        requests.sort();
        let mut seen: Vec<_> = pending.last_seen.iter().map(|(u, s)| (u.clone(), *s)).collect();
        seen.sort();
        (requests, seen)
    }

    #[test]
    fn counts_per_tenant_and_minute_and_keeps_each_users_latest_time() {
        let tally = UsageTally::new(Keyspace::new("t"));
        for (tenant, user, now) in [
            ("t1", "u1", 120),
            ("t1", "u2", 130),
            ("t2", "u1", 179),
            ("t1", "u1", 180),
        ] {
            tally.count_request(tenant, now);
            tally.mark_active(user, now);
        }
        tally.mark_active("u2", 100);
        let (requests, seen) = snapshot(&tally);
        assert_eq!(
            requests,
            vec![(2, "t1".into(), 2), (2, "t2".into(), 1), (3, "t1".into(), 1)]
        );
        assert_eq!(seen, vec![("u1".into(), 180), ("u2".into(), 130)]);
    }

    #[test]
    fn a_full_tally_skips_newcomers_but_still_counts_those_it_holds() {
        let tally = UsageTally::new(Keyspace::new("t"));
        for i in 0..MAX_PENDING {
            tally.mark_active(&format!("u{i}"), 1);
        }
        tally.mark_active("late", 1);
        tally.mark_active("u0", 5);
        let pending = tally.lock();
        assert_eq!(pending.last_seen.len(), MAX_PENDING);
        assert!(!pending.last_seen.contains_key("late"));
        assert_eq!(pending.last_seen["u0"], 5);
        assert_eq!(pending.skipped, 1);
    }
}
