//! The Redis keyspace shared by the proxy, the control plane and the worker. Every key carries a
//! deployment prefix, so several deployments (or test runs) can share one Redis without meeting.

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

    /// Held by whichever process is refreshing the user's Ajax session (single-flight).
    pub fn refresh_lock(&self, user_id: &str) -> String {
        format!("{}:refresh-lock:{user_id}", self.prefix)
    }

    /// Sorted set of users by the Unix time of their last proxied request (the worker keeps their
    /// Ajax sessions alive).
    pub fn active_users(&self) -> String {
        format!("{}:active-users", self.prefix)
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
}
