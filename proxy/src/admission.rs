//! Admission: the one Redis round trip a proxied request makes. One pipeline reserves the request's
//! slot in the global budget *only if* the token's `jti` is not revoked, the token is not older
//! than the user's "not before" time (suspension, logout everywhere), the user has an Ajax
//! session and the tenant's plan allows the route class, fetching that sealed session in the same
//! atomic step. The user's activity mark (the worker keeps their session alive) and the tenant's
//! use are tallied in memory and written about once a second (`usage`). A refused caller spends no
//! budget. An Ajax session that has already expired is refreshed first (single-flight across
//! processes), so no upstream call is wasted on a dead token.
//!
//! When Redis fails or is slow (one call's timeout), the instance switches to its local share of
//! the budget and to the sessions it saw recently; it returns to the shared budget by itself.

use std::sync::Arc;
use std::time::Instant;

use asf_core::ajax_client::AjaxClient;
use asf_core::catalogue::RouteClass;
use asf_core::claims::AccessClaims;
use asf_core::keyspace::Keyspace;
use asf_core::plans::Tier;
use asf_core::secrets::SecretsKey;
use asf_core::session::AjaxSession;
use asf_core::session_refresh::{RefreshError, SessionRefresher};
use asf_core::throttle::{
    Decision, EntitlementGuard, LocalBudget, Precondition, RefusalReason, Reservation, ReserveRequest,
};
use redis::aio::ConnectionManager;

use crate::entitlements::{EntitlementCache, upgrade_for};
use crate::metrics::Metrics;
use crate::redis_link::{RedisDown, RedisLink};
use crate::session_cache::SessionCache;
use crate::throttle::Throttle;
use crate::usage::UsageTally;

/// Why a request was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The token was revoked (logout) or issued before the user's "not before" time (suspension).
    Revoked,
    /// No Ajax session is stored for the user (or it could not be renewed): they must log in again.
    NoSession,
    /// Neither Redis nor this instance's memory can serve the request now.
    Unavailable,
    /// The tenant's plan does not allow the call (answered 402, never forwarded).
    NotEntitled { plan: String, upgrade: Option<String> },
    /// The budget refused: come back after `retry_after_secs`.
    Throttled {
        reason: RefusalReason,
        retry_after_secs: u64,
    },
}

/// An admitted request: the user's live Ajax session and the slot it may go upstream at.
#[derive(Debug)]
pub struct Admitted {
    pub session: Arc<AjaxSession>,
    pub reservation: Reservation,
}

/// Everything admission needs.
pub struct Admission {
    pub redis: Arc<RedisLink>,
    pub keys: Keyspace,
    pub secrets: SecretsKey,
    pub ajax: AjaxClient,
    pub throttle: Arc<Throttle>,
    pub sessions: SessionCache,
    pub entitlements: EntitlementCache,
    pub usage: Arc<UsageTally>,
    pub metrics: Metrics,
}

impl Admission {
    /// Admits a request of class `class` by the token holder at Unix time `now`.
    pub async fn admit(&self, claims: &AccessClaims, class: RouteClass, now: i64) -> Result<Admitted, Refusal> {
        let precondition = Precondition {
            absent: vec![self.keys.revoked_token(&claims.jti)],
            not_before: Some((self.keys.user_not_before(&claims.sub), claims.iat)),
            fetch: Some(self.keys.ajax_session(&claims.sub)),
            entitlement: Some(EntitlementGuard {
                key: self.keys.entitlement(&claims.tid),
                class: class.as_str().to_owned(),
                allowed_when_absent: Tier::Free.allows(class.as_str()),
                upgrade_when_absent: upgrade_for(class).unwrap_or_default(),
            }),
        };
        let plan_rate = self.entitlements.per_minute(&claims.tid);
        let request = self.throttle.request(class, &claims.tid, plan_rate, precondition);
        if let Some(local) = self.throttle.fallback() {
            return self.admit_locally(&local, claims, class, &request, now);
        }
        match self.admit_shared(claims, &request, now).await {
            Ok(result) => result,
            Err(RedisDown) => match self.throttle.enter_fallback() {
                Some(local) => self.admit_locally(&local, claims, class, &request, now),
                None => Err(Refusal::Unavailable),
            },
        }
    }

    async fn admit_shared(
        &self,
        claims: &AccessClaims,
        request: &ReserveRequest,
        now: i64,
    ) -> Result<Result<Admitted, Refusal>, RedisDown> {
        let mut connection = self.redis.connection().await?;
        let started = Instant::now();
        let decision = self.reserve_shared(&mut connection, request).await;
        self.metrics
            .redis_seconds
            .with_label_values(&["admission"])
            .observe(started.elapsed().as_secs_f64());
        let decision = decision?;
        self.usage.count_request(&claims.tid, now);
        self.throttle.observe(&decision);
        let reservation = match decision {
            Decision::Granted(reservation) => {
                self.usage.mark_active(&claims.sub, now);
                reservation
            }
            Decision::Refused {
                reason: RefusalReason::Precondition,
                ..
            } => return Ok(Err(Refusal::Revoked)),
            Decision::Refused {
                reason: RefusalReason::Missing,
                ..
            } => return Ok(Err(Refusal::NoSession)),
            Decision::NotEntitled { plan, upgrade } => return Ok(Err(Refusal::NotEntitled { plan, upgrade })),
            Decision::Refused {
                reason,
                retry_after_secs,
            } => {
                return Ok(Err(Refusal::Throttled {
                    reason,
                    retry_after_secs,
                }));
            }
        };
        if let Some(seen) = reservation.entitlement.clone() {
            self.entitlements.remember(&claims.tid, seen);
        }
        let session_key = self.keys.ajax_session(&claims.sub);
        let Some(sealed) = reservation.fetched.as_deref() else {
            return Ok(Err(Refusal::NoSession));
        };
        let session = match self.sessions.opened(&claims.sub, sealed) {
            Some(session) => session,
            None => match AjaxSession::open(&self.secrets, &session_key, sealed) {
                Ok(session) => Arc::new(session),
                Err(e) => {
                    tracing::error!(error = %e, user = %claims.sub, "stored Ajax session does not open");
                    return Ok(Err(Refusal::NoSession));
                }
            },
        };
        let session = if session.session_expires_at > now {
            session
        } else {
            match self.renew(&claims.sub, &session.session_token, now).await {
                Ok(fresh) => fresh,
                Err(refusal) => return Ok(Err(refusal)),
            }
        };
        self.sessions.remember(&claims.sub, sealed, session.clone());
        Ok(Ok(Admitted { session, reservation }))
    }

    /// The guarded reservation: one `EVALSHA` ([`asf_core::throttle::GlobalBudget::reserve`], which loads the script
    /// when Redis lacks it), bounded by the Redis timeout.
    async fn reserve_shared(
        &self,
        connection: &mut ConnectionManager,
        request: &ReserveRequest,
    ) -> Result<Decision, RedisDown> {
        match tokio::time::timeout(self.redis.timeout, self.throttle.global.reserve(connection, request)).await {
            Ok(Ok(decision)) => Ok(decision),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "redis admission failed");
                Err(RedisDown)
            }
            Err(_) => {
                tracing::warn!("redis admission timed out");
                Err(RedisDown)
            }
        }
    }

    /// Without Redis: the session this instance saw recently and its own share of the budget.
    fn admit_locally(
        &self,
        local: &LocalBudget,
        claims: &AccessClaims,
        class: RouteClass,
        request: &ReserveRequest,
        now: i64,
    ) -> Result<Admitted, Refusal> {
        let session = self.sessions.recent(&claims.sub, now).ok_or(Refusal::Unavailable)?;
        self.entitlements
            .allows_offline(&claims.tid, class)
            .map_err(|(plan, upgrade)| Refusal::NotEntitled { plan, upgrade })?;
        let mut unguarded = request.clone();
        unguarded.precondition = None;
        let decision = local.reserve(&unguarded);
        self.throttle.observe(&decision);
        match decision {
            Decision::Granted(reservation) => Ok(Admitted { session, reservation }),
            Decision::Refused {
                reason,
                retry_after_secs,
            } => Err(Refusal::Throttled {
                reason,
                retry_after_secs,
            }),
            Decision::NotEntitled { plan, upgrade } => Err(Refusal::NotEntitled { plan, upgrade }),
        }
    }

    /// Replaces a dead Ajax session, single-flight with every other process holding it.
    pub async fn renew(&self, user_id: &str, stale_token: &str, now: i64) -> Result<Arc<AjaxSession>, Refusal> {
        let refresher = SessionRefresher {
            redis: self.redis.connection().await.map_err(|_| Refusal::Unavailable)?,
            keys: self.keys.clone(),
            secrets: self.secrets.clone(),
            ajax: self.ajax.clone(),
            budget: self.throttle.global.clone(),
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
