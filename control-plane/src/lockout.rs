//! Failed-login lockout per account and per client IP: after `max_failures` wrong passwords within
//! the lockout period, further attempts are answered 429 with `Retry-After` (never 403: clients
//! read 403 as bad credentials) without asking Ajax. Counters live in Redis, so every control-plane
//! instance sees the same count; accounts are keyed by a hash of the login, never the login itself.

use std::net::IpAddr;
use std::time::Duration;

use asf_core::keyspace::Keyspace;
use redis::aio::ConnectionManager;
use sha2::{Digest, Sha256};

/// The lockout rule and where its counters live.
#[derive(Clone)]
pub struct Lockout {
    pub redis: ConnectionManager,
    pub keys: Keyspace,
    pub max_failures: u32,
    pub period: Duration,
}

fn account_hash(login: &str) -> String {
    hex::encode(Sha256::digest(login.trim().to_lowercase().as_bytes()))
}

impl Lockout {
    fn key_pair(&self, login: &str, ip: IpAddr) -> [String; 2] {
        [
            self.keys.login_failures_account(&account_hash(login)),
            self.keys.login_failures_ip(&ip.to_string()),
        ]
    }

    /// `Some(seconds)` while the account or the IP is locked out.
    pub async fn locked_for(&self, login: &str, ip: IpAddr) -> redis::RedisResult<Option<u64>> {
        let [account, address] = self.key_pair(login, ip);
        let (account_count, account_ttl, ip_count, ip_ttl): (Option<u32>, i64, Option<u32>, i64) = redis::pipe()
            .cmd("GET")
            .arg(&account)
            .cmd("PTTL")
            .arg(&account)
            .cmd("GET")
            .arg(&address)
            .cmd("PTTL")
            .arg(&address)
            .query_async(&mut self.redis.clone())
            .await?;
        let locked = |count: Option<u32>, ttl_ms: i64| {
            (count.unwrap_or(0) >= self.max_failures).then(|| u64::try_from(ttl_ms.max(1000) + 999).unwrap_or(1) / 1000)
        };
        Ok(locked(account_count, account_ttl).max(locked(ip_count, ip_ttl)))
    }

    /// Counts one wrong password against the account and the IP.
    pub async fn record_failure(&self, login: &str, ip: IpAddr) -> redis::RedisResult<()> {
        let period_ms = u64::try_from(self.period.as_millis()).unwrap_or(u64::MAX);
        let mut pipe = redis::pipe();
        for key in self.key_pair(login, ip) {
            pipe.cmd("INCR")
                .arg(&key)
                .ignore()
                .cmd("PEXPIRE")
                .arg(&key)
                .arg(period_ms)
                .arg("NX")
                .ignore();
        }
        pipe.query_async::<()>(&mut self.redis.clone()).await
    }

    /// A successful login clears the account's count (the IP's stays: it may be guessing others).
    pub async fn record_success(&self, login: &str, ip: IpAddr) -> redis::RedisResult<()> {
        let [account, _] = self.key_pair(login, ip);
        redis::cmd("DEL")
            .arg(account)
            .query_async::<()>(&mut self.redis.clone())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_keys_do_not_carry_the_login_and_ignore_case() {
        let hash = account_hash(" Demo@Example.com ");
        assert_eq!(hash, account_hash("demo@example.com"));
        assert!(!hash.contains("demo"));
    }
}
