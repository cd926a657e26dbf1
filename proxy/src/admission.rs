//! Admission: the one Redis round trip a proxied request makes. One pipeline reads whether the
//! token's `jti` is revoked, the user's "not before" time (suspension, logout everywhere) and the
//! user's sealed Ajax session, and marks the user active (so the worker keeps their session alive).
//! An Ajax session that has already expired is refreshed first (single-flight across processes),
//! so no upstream call is wasted on a dead token. Redis trouble is answered quickly (bounded by a
//! timeout), never by hanging the request.

use std::sync::Arc;

use asf_core::ajax_client::AjaxClient;
use asf_core::claims::AccessClaims;
use asf_core::keyspace::Keyspace;
use asf_core::secrets::SecretsKey;
use asf_core::session::AjaxSession;
use asf_core::session_refresh::{RefreshError, SessionRefresher};
use redis::aio::ConnectionManager;
use tokio::sync::OnceCell;

use crate::config::ProxyConfig;

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The token was revoked (logout) or issued before the user's "not before" time (suspension).
    Revoked,
    /// No Ajax session is stored for the user (or it could not be renewed): they must log in again.
    NoSession,
    /// Redis did not answer in time, or failed.
    Unavailable,
}

/// Reads admission state from Redis.
pub struct Admission {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    keys: Keyspace,
    secrets: SecretsKey,
    timeout: std::time::Duration,
    ajax: AjaxClient,
}

impl Admission {
    /// Prepares the Redis client; the connection is made on first use, inside the serving runtime.
    pub fn new(config: &ProxyConfig) -> anyhow::Result<Self> {
        Ok(Self {
            client: redis::Client::open(config.redis_url.as_str())?,
            connection: OnceCell::new(),
            keys: Keyspace::new(config.redis_prefix.clone()),
            secrets: config.secrets_key.clone(),
            timeout: config.redis_timeout,
            ajax: AjaxClient::new(&config.ajax.url(), &config.ajax_api_key, config.upstream_timeout)?,
        })
    }

    async fn connection(&self) -> Result<ConnectionManager, Refusal> {
        let make = || async {
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(self.timeout))
                .set_response_timeout(Some(self.timeout))
                .set_number_of_retries(1);
            match tokio::time::timeout(self.timeout * 5, self.client.get_connection_manager_with_config(config)).await {
                Ok(Ok(manager)) => Ok(manager),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "redis connection failed");
                    Err(Refusal::Unavailable)
                }
                Err(_) => Err(Refusal::Unavailable),
            }
        };
        self.connection.get_or_try_init(make).await.cloned()
    }

    /// Admits a request of the token holder at Unix time `now` and returns their live Ajax session.
    pub async fn admit(&self, claims: &AccessClaims, now: i64) -> Result<Arc<AjaxSession>, Refusal> {
        let mut connection = self.connection().await?;
        let session_key = self.keys.ajax_session(&claims.sub);
        let mut pipe = redis::pipe();
        pipe.cmd("MGET")
            .arg(self.keys.revoked_token(&claims.jti))
            .arg(self.keys.user_not_before(&claims.sub))
            .arg(&session_key)
            .cmd("ZADD")
            .arg(self.keys.active_users())
            .arg(now)
            .arg(&claims.sub)
            .ignore();
        let reply = tokio::time::timeout(
            self.timeout,
            pipe.query_async::<(Vec<Option<String>>,)>(&mut connection),
        )
        .await;
        let values = match reply {
            Ok(Ok((values,))) if values.len() == 3 => values,
            Ok(Ok(_)) => return Err(Refusal::Unavailable),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "redis admission failed");
                return Err(Refusal::Unavailable);
            }
            Err(_) => return Err(Refusal::Unavailable),
        };
        let session = decide(&values, claims, &self.secrets, &session_key)?;
        if session.session_expires_at > now {
            return Ok(session);
        }
        self.renew(&claims.sub, &session.session_token, now).await
    }

    /// Replaces a dead Ajax session, single-flight with every other process holding it.
    pub async fn renew(&self, user_id: &str, stale_token: &str, now: i64) -> Result<Arc<AjaxSession>, Refusal> {
        let refresher = SessionRefresher {
            redis: self.connection().await?,
            keys: self.keys.clone(),
            secrets: self.secrets.clone(),
            ajax: self.ajax.clone(),
        };
        match refresher.refresh(user_id, stale_token, now).await {
            Ok(session) => Ok(Arc::new(session)),
            Err(RefreshError::SessionEnded | RefreshError::NoSession) => Err(Refusal::NoSession),
            Err(RefreshError::Unavailable(reason)) => {
                tracing::warn!(%reason, user = %user_id, "Ajax session refresh unavailable");
                Err(Refusal::Unavailable)
            }
        }
    }
}

/// The admission decision from the three values read (revoked marker, user not-before, sealed session).
fn decide(
    values: &[Option<String>],
    claims: &AccessClaims,
    secrets: &SecretsKey,
    session_key: &str,
) -> Result<Arc<AjaxSession>, Refusal> {
    if values.first().is_some_and(Option::is_some) {
        return Err(Refusal::Revoked);
    }
    let not_before = values
        .get(1)
        .and_then(|v| v.as_deref())
        .and_then(|v| v.parse::<i64>().ok());
    if not_before.is_some_and(|nbf| claims.iat < nbf) {
        return Err(Refusal::Revoked);
    }
    let sealed = values.get(2).and_then(|v| v.as_deref()).ok_or(Refusal::NoSession)?;
    match AjaxSession::open(secrets, session_key, sealed) {
        Ok(session) => Ok(Arc::new(session)),
        Err(e) => {
            tracing::error!(error = %e, user = %claims.sub, "stored Ajax session does not open");
            Err(Refusal::NoSession)
        }
    }
}

#[cfg(test)]
mod tests {
    use asf_core::claims::Role;

    use super::*;

    fn claims() -> AccessClaims {
        AccessClaims {
            sub: "u1".into(),
            uid: "A1".into(),
            tid: "t1".into(),
            role: Role::User,
            jti: "j1".into(),
            iat: 1000,
            nbf: 1000,
            exp: 1900,
            iss: "i".into(),
            aud: "a".into(),
            sid: None,
        }
    }

    fn sealed(key: &SecretsKey) -> String {
        AjaxSession {
            session_token: "ajax-token".into(),
            refresh_token: "ajax-refresh".into(),
            ajax_user_id: "A1".into(),
            session_expires_at: 2000,
            refresh_expires_at: 9000,
        }
        .seal(key, "k")
    }

    #[test]
    fn stored_session_is_opened_for_a_live_token() {
        let key = SecretsKey::from_base64(&SecretsKey::generate_base64()).expect("key");
        let session = decide(&[None, None, Some(sealed(&key))], &claims(), &key, "k").expect("admitted");
        assert_eq!(session.session_token, "ajax-token");
    }

    #[test]
    fn revoked_and_suspended_tokens_are_refused() {
        let key = SecretsKey::from_base64(&SecretsKey::generate_base64()).expect("key");
        let revoked = decide(&[Some("1".into()), None, Some(sealed(&key))], &claims(), &key, "k");
        assert_eq!(revoked.err(), Some(Refusal::Revoked));
        let suspended = decide(&[None, Some("1001".into()), Some(sealed(&key))], &claims(), &key, "k");
        assert_eq!(suspended.err(), Some(Refusal::Revoked));
        let earlier = decide(&[None, Some("999".into()), Some(sealed(&key))], &claims(), &key, "k");
        assert!(earlier.is_ok());
    }

    #[test]
    fn missing_or_foreign_sessions_mean_log_in_again() {
        let key = SecretsKey::from_base64(&SecretsKey::generate_base64()).expect("key");
        assert_eq!(
            decide(&[None, None, None], &claims(), &key, "k").err(),
            Some(Refusal::NoSession)
        );
        let other_key = SecretsKey::from_base64(&SecretsKey::generate_base64()).expect("key");
        let foreign = decide(&[None, None, Some(sealed(&other_key))], &claims(), &key, "k");
        assert_eq!(foreign.err(), Some(Refusal::NoSession));
    }
}
