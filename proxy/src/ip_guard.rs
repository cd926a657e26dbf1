//! The per-client part of the shield, in memory, before authentication and before any Redis call:
//! CIDR allow and deny lists, a flood limit per client IP, and a slowdown for an IP that keeps
//! failing authentication. The client IP is the peer's, or the one trusted proxies report in
//! `X-Forwarded-For` (walked from the right).

use std::net::IpAddr;
use std::time::Duration;

use asf_core::client_ip::TrustedProxies;
use pingora_limits::rate::Rate;

use crate::respond::LocalAnswer;

pub const DENIED: LocalAnswer = LocalAnswer::new(404, "not_found", "Resource not found");
pub const FLOODING: LocalAnswer =
    LocalAnswer::new(429, "client_rate", "Too many requests from this address; slow down").retry_after(1);
pub const AUTH_FAILURES: LocalAnswer = LocalAnswer::new(
    429,
    "auth_failures",
    "Too many failed authentications from this address",
)
.retry_after(60);

/// The guard's settings.
#[derive(Debug, Clone, Default)]
pub struct IpGuardConfig {
    pub trusted_proxies: TrustedProxies,
    /// When not empty, only these ranges may connect.
    pub allow: TrustedProxies,
    pub deny: TrustedProxies,
    /// Requests per second one IP may make (0: no limit).
    pub per_ip_per_second: u32,
    /// Failed authentications per minute after which an IP is slowed down (0: never).
    pub auth_failures_per_minute: u32,
}

pub struct IpGuard {
    config: IpGuardConfig,
    requests: Rate,
    auth_failures: Rate,
}

impl IpGuard {
    pub fn new(config: IpGuardConfig) -> Self {
        Self {
            config,
            requests: Rate::new(Duration::from_secs(1)),
            auth_failures: Rate::new(Duration::from_secs(60)),
        }
    }

    /// The client's IP for a request from `peer` with these `X-Forwarded-For` values.
    pub fn client_ip<'a>(&self, peer: IpAddr, forwarded_for: impl IntoIterator<Item = &'a str>) -> IpAddr {
        self.config.trusted_proxies.client_ip(peer, forwarded_for)
    }

    /// Counts the request and refuses it if the IP is not allowed, floods, or keeps failing
    /// authentication.
    pub fn admit(&self, ip: IpAddr) -> Result<(), LocalAnswer> {
        if self.config.deny.contains(&ip) || (!self.config.allow.is_empty() && !self.config.allow.contains(&ip)) {
            return Err(DENIED);
        }
        let limit = self.config.auth_failures_per_minute;
        if limit > 0 {
            let failures = self.auth_failures.observe(&ip, 0).max(0) as u64;
            let recent = failures.max((self.auth_failures.rate(&ip) * 60.0) as u64);
            if recent >= u64::from(limit) {
                return Err(AUTH_FAILURES);
            }
        }
        let per_second = self.config.per_ip_per_second;
        if per_second > 0 && self.requests.observe(&ip, 1) > per_second as isize {
            return Err(FLOODING);
        }
        Ok(())
    }

    /// Records a failed authentication from `ip`.
    pub fn auth_failed(&self, ip: IpAddr) {
        if self.config.auth_failures_per_minute > 0 {
            self.auth_failures.observe(&ip, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn deny_and_allow_lists_are_applied() {
        let guard = IpGuard::new(IpGuardConfig {
            deny: TrustedProxies::parse(&["10.6.6.0/24"]).expect("cidr"),
            ..IpGuardConfig::default()
        });
        assert_eq!(guard.admit(ip("10.6.6.6")).err().map(|a| a.status), Some(404));
        assert!(guard.admit(ip("10.6.7.1")).is_ok());
        let only = IpGuard::new(IpGuardConfig {
            allow: TrustedProxies::parse(&["192.0.2.0/24"]).expect("cidr"),
            ..IpGuardConfig::default()
        });
        assert!(only.admit(ip("192.0.2.9")).is_ok());
        assert!(only.admit(ip("198.51.100.1")).is_err());
    }

    #[test]
    fn a_flooding_ip_is_refused_and_others_are_not() {
        let guard = IpGuard::new(IpGuardConfig {
            per_ip_per_second: 5,
            ..IpGuardConfig::default()
        });
        let refused = (0..20).filter(|_| guard.admit(ip("203.0.113.1")).is_err()).count();
        assert!(refused >= 14, "{refused}");
        assert!(guard.admit(ip("203.0.113.2")).is_ok());
    }

    #[test]
    fn repeated_auth_failures_slow_the_ip_down() {
        let guard = IpGuard::new(IpGuardConfig {
            auth_failures_per_minute: 3,
            ..IpGuardConfig::default()
        });
        for _ in 0..3 {
            assert!(guard.admit(ip("203.0.113.7")).is_ok());
            guard.auth_failed(ip("203.0.113.7"));
        }
        assert_eq!(
            guard.admit(ip("203.0.113.7")).err().map(|a| a.code),
            Some("auth_failures")
        );
        assert!(guard.admit(ip("203.0.113.8")).is_ok());
    }
}
