//! The control plane's side of the Redis keyspace it shares with the proxy: the sealed Ajax
//! session of each user, revoked token ids, and users' "not before" times.

use asf_core::keyspace::Keyspace;
use asf_core::secrets::SecretsKey;
use asf_core::session::AjaxSession;
use redis::aio::ConnectionManager;

/// Writes and deletes what the proxy reads on every request.
#[derive(Clone)]
pub struct SessionStore {
    pub redis: ConnectionManager,
    pub keys: Keyspace,
    secrets: SecretsKey,
}

impl SessionStore {
    pub fn new(redis: ConnectionManager, keys: Keyspace, secrets: SecretsKey) -> Self {
        Self { redis, keys, secrets }
    }

    /// Stores the user's Ajax session, sealed, until its refresh token expires.
    pub async fn put_ajax_session(&self, user_id: &str, session: &AjaxSession, now: i64) -> redis::RedisResult<()> {
        let key = self.keys.ajax_session(user_id);
        let ttl = (session.refresh_expires_at - now).max(1);
        redis::cmd("SET")
            .arg(&key)
            .arg(session.seal(&self.secrets, &key))
            .arg("EX")
            .arg(ttl)
            .query_async::<()>(&mut self.redis.clone())
            .await
    }

    /// The user's Ajax session, if one is stored and opens.
    pub async fn ajax_session(&self, user_id: &str) -> redis::RedisResult<Option<AjaxSession>> {
        let key = self.keys.ajax_session(user_id);
        let sealed: Option<String> = redis::cmd("GET").arg(&key).query_async(&mut self.redis.clone()).await?;
        Ok(sealed.and_then(|s| AjaxSession::open(&self.secrets, &key, &s).ok()))
    }

    pub async fn delete_ajax_session(&self, user_id: &str) -> redis::RedisResult<()> {
        redis::cmd("DEL")
            .arg(self.keys.ajax_session(user_id))
            .query_async::<()>(&mut self.redis.clone())
            .await
    }

    /// Whether the token was revoked or issued before the user's "not before" time.
    pub async fn is_revoked(&self, claims: &asf_core::claims::AccessClaims) -> redis::RedisResult<bool> {
        let (revoked, not_before): (Option<String>, Option<i64>) = redis::cmd("MGET")
            .arg(self.keys.revoked_token(&claims.jti))
            .arg(self.keys.user_not_before(&claims.sub))
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(revoked.is_some() || not_before.is_some_and(|nbf| claims.iat < nbf))
    }

    /// Refuses every token of the user issued before `not_before` (suspension, tenant moves).
    pub async fn set_user_not_before(&self, user_id: &str, not_before: i64, ttl_secs: i64) -> redis::RedisResult<()> {
        redis::cmd("SET")
            .arg(self.keys.user_not_before(user_id))
            .arg(not_before)
            .arg("EX")
            .arg(ttl_secs.max(1))
            .query_async::<()>(&mut self.redis.clone())
            .await
    }

    /// Refuses the token `jti` at every proxy until it would have expired anyway.
    pub async fn revoke_token(&self, jti: &str, exp: i64, now: i64) -> redis::RedisResult<()> {
        let ttl = (exp - now).max(1) + 120;
        redis::cmd("SET")
            .arg(self.keys.revoked_token(jti))
            .arg(1)
            .arg("EX")
            .arg(ttl)
            .query_async::<()>(&mut self.redis.clone())
            .await
    }
}
