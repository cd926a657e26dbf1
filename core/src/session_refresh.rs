//! Single-flight refresh of a user's Ajax session across every process that holds it (worker and
//! all proxy instances). Ajax invalidates a refresh token once used, so two concurrent refreshes
//! would break the session: one process takes a Redis lock and refreshes; the others wait for the
//! stored session to change and use the winner's result.

use std::time::Duration;

use redis::aio::ConnectionManager;

use crate::ajax_client::{AjaxCallError, AjaxClient};
use crate::ajax_wire::RefreshRequest;
use crate::keyspace::Keyspace;
use crate::secrets::SecretsKey;
use crate::session::AjaxSession;
use crate::throttle::{Decision, GlobalBudget, Lane, ReserveRequest};

/// Ajax's session lifetime; the refreshed session is recorded as expiring after it.
pub const AJAX_SESSION_SECS: i64 = 15 * 60;
/// Ajax's refresh-token lifetime.
pub const AJAX_REFRESH_SECS: i64 = 7 * 24 * 3600;

/// How long the lock is held at most (a crashed holder frees it by expiry).
const LOCK_MS: u64 = 35_000;
/// How long a waiter waits for the holder's result.
const WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(25);

/// Releases the lock only if it is still ours.
const RELEASE: &str =
    r#"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end"#;

/// Why no fresh session could be had.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// Ajax refused the refresh token: the user must log in again. Their stored session is gone
    /// and every token issued to them before now is refused.
    #[error("the Ajax session has ended")]
    SessionEnded,
    /// No session is stored for the user.
    #[error("no Ajax session is stored")]
    NoSession,
    /// Ajax or Redis could not be used now; the session is unchanged.
    #[error("refresh unavailable: {0}")]
    Unavailable(String),
}

impl From<redis::RedisError> for RefreshError {
    fn from(e: redis::RedisError) -> Self {
        Self::Unavailable(format!("redis: {e}"))
    }
}

/// What a refresh needs: Redis, the keyspace, the secrets key, the Ajax client, and the global
/// budget (a refresh is an Ajax call: it takes a slot in the account lane).
#[derive(Clone)]
pub struct SessionRefresher {
    pub redis: ConnectionManager,
    pub keys: Keyspace,
    pub secrets: SecretsKey,
    pub ajax: AjaxClient,
    pub budget: GlobalBudget,
}

impl SessionRefresher {
    async fn load(&self, user_id: &str) -> Result<Option<AjaxSession>, RefreshError> {
        let key = self.keys.ajax_session(user_id);
        let sealed: Option<String> = redis::cmd("GET").arg(&key).query_async(&mut self.redis.clone()).await?;
        Ok(sealed.and_then(|s| AjaxSession::open(&self.secrets, &key, &s).ok()))
    }

    /// Refreshes the user's session if it expires within `within_secs` of `now`; `Ok(false)` when
    /// it had time left (or no session is stored).
    pub async fn refresh_if_expiring(&self, user_id: &str, within_secs: i64, now: i64) -> Result<bool, RefreshError> {
        let Some(current) = self.load(user_id).await? else {
            return Ok(false);
        };
        if current.session_expires_at - now > within_secs {
            return Ok(false);
        }
        self.refresh(user_id, &current.session_token, now).await.map(|_| true)
    }

    /// Returns a session newer than the one whose token was `stale_token`, refreshing it with Ajax
    /// if no other process has done so (or is doing so).
    pub async fn refresh(&self, user_id: &str, stale_token: &str, now: i64) -> Result<AjaxSession, RefreshError> {
        let current = self.load(user_id).await?.ok_or(RefreshError::NoSession)?;
        if current.session_token != stale_token {
            return Ok(current);
        }
        let lock = self.keys.refresh_lock(user_id);
        let nonce = uuid::Uuid::new_v4().to_string();
        let acquired: Option<String> = redis::cmd("SET")
            .arg(&lock)
            .arg(&nonce)
            .arg("NX")
            .arg("PX")
            .arg(LOCK_MS)
            .query_async(&mut self.redis.clone())
            .await?;
        if acquired.is_none() {
            return self.wait_for_winner(user_id, stale_token).await;
        }
        let result = self.refresh_holding_lock(user_id, stale_token, now).await;
        let _: Result<i64, _> = redis::Script::new(RELEASE)
            .key(&lock)
            .arg(&nonce)
            .invoke_async(&mut self.redis.clone())
            .await;
        result
    }

    async fn refresh_holding_lock(
        &self,
        user_id: &str,
        stale_token: &str,
        now: i64,
    ) -> Result<AjaxSession, RefreshError> {
        // Someone may have finished between our first read and taking the lock.
        let current = self.load(user_id).await?.ok_or(RefreshError::NoSession)?;
        if current.session_token != stale_token {
            return Ok(current);
        }
        match self
            .budget
            .reserve(&mut self.redis.clone(), &ReserveRequest::new(Lane::Account))
            .await?
        {
            Decision::Granted(slot) => tokio::time::sleep(slot.wait_duration()).await,
            Decision::Refused {
                reason,
                retry_after_secs,
            } => {
                return Err(RefreshError::Unavailable(format!(
                    "no budget for the refresh ({}), retry in {retry_after_secs} s",
                    reason.as_str()
                )));
            }
            // Not asked for: the refresh's reservation carries no entitlement check.
            Decision::NotEntitled { .. } => {
                return Err(RefreshError::Unavailable("refresh refused by a plan check".into()));
            }
        }
        let request = RefreshRequest {
            user_id: current.ajax_user_id.clone(),
            refresh_token: current.refresh_token.clone(),
        };
        match self.ajax.refresh(&request).await {
            Ok(triple) => {
                let fresh = AjaxSession {
                    session_token: triple.session_token,
                    refresh_token: triple.refresh_token,
                    ajax_user_id: triple.user_id,
                    session_expires_at: now + AJAX_SESSION_SECS,
                    refresh_expires_at: now + AJAX_REFRESH_SECS,
                };
                let key = self.keys.ajax_session(user_id);
                redis::cmd("SET")
                    .arg(&key)
                    .arg(fresh.seal(&self.secrets, &key))
                    .arg("EX")
                    .arg(AJAX_REFRESH_SECS)
                    .query_async::<()>(&mut self.redis.clone())
                    .await?;
                Ok(fresh)
            }
            Err(AjaxCallError::Rejected { .. }) => {
                self.end_session(user_id, now).await?;
                Err(RefreshError::SessionEnded)
            }
            Err(e) => Err(RefreshError::Unavailable(e.to_string())),
        }
    }

    /// The Ajax refresh token is dead: forget the session and refuse the user's current tokens.
    async fn end_session(&self, user_id: &str, now: i64) -> Result<(), RefreshError> {
        redis::pipe()
            .atomic()
            .cmd("DEL")
            .arg(self.keys.ajax_session(user_id))
            .ignore()
            .cmd("SET")
            .arg(self.keys.user_not_before(user_id))
            .arg(now + 1)
            .arg("EX")
            .arg(AJAX_REFRESH_SECS)
            .ignore()
            .query_async::<()>(&mut self.redis.clone())
            .await?;
        Ok(())
    }

    async fn wait_for_winner(&self, user_id: &str, stale_token: &str) -> Result<AjaxSession, RefreshError> {
        let lock = self.keys.refresh_lock(user_id);
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(POLL).await;
            match self.load(user_id).await? {
                Some(session) if session.session_token != stale_token => return Ok(session),
                None => return Err(RefreshError::SessionEnded),
                Some(_) => {}
            }
            let held: bool = redis::cmd("EXISTS")
                .arg(&lock)
                .query_async(&mut self.redis.clone())
                .await?;
            if !held {
                // Read once more: the holder stores the new session before releasing the lock.
                return match self.load(user_id).await? {
                    Some(session) if session.session_token != stale_token => Ok(session),
                    None => Err(RefreshError::SessionEnded),
                    Some(_) => Err(RefreshError::Unavailable(
                        "the refresh by another process failed".into(),
                    )),
                };
            }
        }
        Err(RefreshError::Unavailable(
            "timed out waiting for another process's refresh".into(),
        ))
    }
}
