//! The Redis keyspace shared by the proxy, the control plane and the worker. Every key carries a
//! deployment prefix, so several deployments (or test runs) can share one Redis without meeting.

use crate::throttle::Lane;

/// Builds the project's Redis keys under one prefix.
#[derive(Debug, Clone)]
pub struct Keyspace {
    prefix: String,
}

impl Default for Keyspace {
    fn default() -> Self {
        Self::new("asf")
    }
}

impl Keyspace {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self { prefix: prefix.into() }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The user's Ajax session, sealed with the secrets key (see [`crate::secrets`]).
    pub fn ajax_session(&self, user_id: &str) -> String {
        format!("{}:ajax-session:{user_id}", self.prefix)
    }

    /// Present while an access token's `jti` is revoked (expires with the token).
    pub fn revoked_token(&self, jti: &str) -> String {
        format!("{}:revoked:{jti}", self.prefix)
    }

    /// Unix seconds before which every token of the user is refused (suspension, logout everywhere).
    pub fn user_not_before(&self, user_id: &str) -> String {
        format!("{}:user-nbf:{user_id}", self.prefix)
    }

    /// Failed logins for one account (keyed by a hash of the normalised login, not the login itself).
    pub fn login_failures_account(&self, login_hash: &str) -> String {
        format!("{}:login-fail:acct:{login_hash}", self.prefix)
    }

    /// Failed logins from one client IP.
    pub fn login_failures_ip(&self, ip: &str) -> String {
        format!("{}:login-fail:ip:{ip}", self.prefix)
    }

    /// Requests per tenant in one minute (Unix minute number), for the admin's "top tenants" view.
    pub fn tenant_usage(&self, minute: i64) -> String {
        format!("{}:tenant-usage:{minute}", self.prefix)
    }

    /// Held by whichever process is refreshing the user's Ajax session (single-flight).
    pub fn refresh_lock(&self, user_id: &str) -> String {
        format!("{}:refresh-lock:{user_id}", self.prefix)
    }

    /// Sorted set of users by the Unix time of their last proxied request (the worker keeps their
    /// Ajax sessions alive).
    pub fn active_users(&self) -> String {
        format!("{}:active-users", self.prefix)
    }

    /// The keys of the global upstream budget ([`crate::throttle`]) all start with this hash tag, so
    /// that its one Lua script may touch them together on Redis Cluster (one slot).
    fn budget_tag(&self) -> String {
        format!("{{{}:budget}}", self.prefix)
    }

    /// A lane's GCRA track: the theoretical arrival time (Unix ms, Redis clock) of its next slot.
    pub fn budget_lane(&self, lane: Lane) -> String {
        format!("{}:lane:{}", self.budget_tag(), lane.as_str())
    }

    /// The end (Unix ms) of the last pause Ajax asked for; kept one window longer for the ramp.
    pub fn budget_pause(&self) -> String {
        format!("{}:pause", self.budget_tag())
    }

    /// Sorted set of recently granted slot times, read for the client hints (remaining, utilisation).
    pub fn budget_grants(&self) -> String {
        format!("{}:grants", self.budget_tag())
    }

    /// The tenant's own GCRA time (its per-minute limit from its plan).
    pub fn tenant_rate(&self, tenant_id: &str) -> String {
        format!("{}:tenant-rate:{tenant_id}", self.budget_tag())
    }

    /// Sorted set of the tenant's granted slots that are still in the future (its queued requests).
    pub fn tenant_queue(&self, tenant_id: &str) -> String {
        format!("{}:tenant-queue:{tenant_id}", self.budget_tag())
    }

    /// A tenant's entitlement (see [`crate::entitlement`]).
    pub fn entitlement(&self, tenant_id: &str) -> String {
        format!("{}:entitlement:{tenant_id}", self.prefix)
    }

    /// Set once every tenant's entitlement has been published; its absence (a Redis that restarted
    /// empty) makes the worker publish them all again at once.
    pub fn entitlements_published(&self) -> String {
        format!("{}:entitlements-published", self.prefix)
    }

    /// Voucher redemption attempts in the current hour, by `kind` (`user`, `ip`) and subject.
    pub fn voucher_attempts(&self, kind: &str, subject: &str) -> String {
        format!("{}:voucher-attempts:{kind}:{subject}", self.prefix)
    }

    /// The stream of audit records on their way to PostgreSQL (see [`crate::audit`]).
    pub fn audit_stream(&self) -> String {
        format!("{}:audit", self.prefix)
    }

    /// Sorted set of the processes sharing the budget, by the time of their last heartbeat.
    pub fn instances(&self) -> String {
        format!("{}:instances", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_the_prefix_and_the_subject() {
        let keys = Keyspace::new("t42");
        assert_eq!(keys.ajax_session("u1"), "t42:ajax-session:u1");
        assert_eq!(keys.revoked_token("j1"), "t42:revoked:j1");
        assert_eq!(keys.user_not_before("u1"), "t42:user-nbf:u1");
    }

    #[test]
    fn budget_keys_share_one_cluster_hash_tag_under_the_prefix() {
        let keys = Keyspace::new("t42");
        assert_eq!(keys.budget_lane(Lane::Command), "{t42:budget}:lane:command");
        assert_eq!(keys.budget_lane(Lane::Read), "{t42:budget}:lane:read");
        assert_eq!(keys.budget_pause(), "{t42:budget}:pause");
        assert_eq!(keys.budget_grants(), "{t42:budget}:grants");
        assert_eq!(keys.tenant_rate("acme"), "{t42:budget}:tenant-rate:acme");
        assert_eq!(keys.tenant_queue("acme"), "{t42:budget}:tenant-queue:acme");
        assert_eq!(keys.instances(), "t42:instances");
    }
}
