//! Tenant usage counts (the admin's busiest tenants) and user activity marks (the worker keeps
//! active users' Ajax sessions alive), tallied in memory and written to Redis about once a second
//! in one pipeline by the budget heartbeat, rather than as three more commands in every request's
//! admission round trip.
//!
//! While Redis is unreachable the tally keeps growing (one entry per tenant and minute, one per
//! user) and is written when Redis answers again. What a process had not written when it stopped
//! (at most about a second's worth) is lost: both are statistics, not state the budget relies on.

use std::collections::HashMap;
use std::sync::Mutex;

use asf_core::keyspace::Keyspace;

/// How long a tenant's per-minute usage counter is kept.
pub const USAGE_TTL_SECS: i64 = 180;

#[derive(Debug, Default)]
struct Pending {
    /// Requests per Unix minute, per tenant.
    requests: HashMap<i64, HashMap<String, u64>>,
    /// Each user's last admitted request (Unix seconds).
    last_seen: HashMap<String, i64>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.requests.is_empty() && self.last_seen.is_empty()
    }

    /// Adds `other` (a tally that could not be written) back in.
    fn merge(&mut self, other: Pending) {
        for (minute, tenants) in other.requests {
            let counts = self.requests.entry(minute).or_default();
            for (tenant, n) in tenants {
                *counts.entry(tenant).or_default() += n;
            }
        }
        for (user, seen) in other.last_seen {
            let at = self.last_seen.entry(user).or_default();
            *at = (*at).max(seen);
        }
    }
}

/// This process's unwritten usage.
#[derive(Debug, Default)]
pub struct UsageTally {
    pending: Mutex<Pending>,
}

impl UsageTally {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one admitted request of `user` in `tenant` at Unix time `now` (seconds).
    pub fn count(&self, tenant: &str, user: &str, now: i64) {
        let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let counts = pending.requests.entry(now.div_euclid(60)).or_default();
        match counts.get_mut(tenant) {
            Some(n) => *n += 1,
            None => {
                counts.insert(tenant.to_owned(), 1);
            }
        }
        match pending.last_seen.get_mut(user) {
            Some(at) => *at = (*at).max(now),
            None => {
                pending.last_seen.insert(user.to_owned(), now);
            }
        }
    }

    /// Writes everything tallied so far in one pipeline. On failure the tally is kept for the next
    /// attempt.
    pub async fn flush(&self, conn: &mut impl redis::aio::ConnectionLike, keys: &Keyspace) -> redis::RedisResult<()> {
        let taken = {
            let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if pending.is_empty() {
                return Ok(());
            }
            std::mem::take(&mut *pending)
        };
        let result = write(conn, keys, &taken).await;
        if result.is_err() {
            self.pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .merge(taken);
        }
        result
    }
}

async fn write(conn: &mut impl redis::aio::ConnectionLike, keys: &Keyspace, tally: &Pending) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    if !tally.last_seen.is_empty() {
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
        let pending = tally.pending.lock().expect("lock");
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
        let tally = UsageTally::new();
        tally.count("t1", "u1", 120);
        tally.count("t1", "u2", 130);
        tally.count("t2", "u1", 179);
        tally.count("t1", "u1", 180);
        let (requests, seen) = snapshot(&tally);
        assert_eq!(
            requests,
            vec![(2, "t1".into(), 2), (2, "t2".into(), 1), (3, "t1".into(), 1)]
        );
        assert_eq!(seen, vec![("u1".into(), 180), ("u2".into(), 130)]);
    }

    #[test]
    fn a_tally_that_could_not_be_written_is_added_back() {
        let tally = UsageTally::new();
        tally.count("t1", "u1", 120);
        let taken = std::mem::take(&mut *tally.pending.lock().expect("lock"));
        tally.count("t1", "u1", 100);
        tally.pending.lock().expect("lock").merge(taken);
        let (requests, seen) = snapshot(&tally);
        assert_eq!(requests, vec![(1, "t1".into(), 1), (2, "t1".into(), 1)]);
        assert_eq!(seen, vec![("u1".into(), 120)]);
    }
}
