//! Login by identity sync, refresh and logout: the credentials are checked by Ajax itself, the
//! user is provisioned on first success, the Ajax session is kept (sealed) in Redis, and the client
//! gets the project's tokens in Ajax's own response shape. No password is stored.

use asf_core::ajax_client::AjaxCallError;
use asf_core::ajax_wire::LoginRequest;
use asf_core::claims::{AccessClaims, Role};
use asf_core::session::AjaxSession;
use asf_core::throttle::{Decision, Lane, ReserveRequest};
use chrono::Utc;
use jsonwebtoken::{Algorithm, Header};
use serde::Serialize;

use crate::accounts::{self, User};
use crate::error::ApiError;
use crate::refresh_tokens::{self, Rotation};
use crate::state::AppState;

/// Ajax's lifetimes for the session it hands out (the project cannot read them from the answer).
const AJAX_SESSION_SECS: i64 = 15 * 60;
const AJAX_REFRESH_SECS: i64 = 7 * 24 * 3600;

/// What login and refresh answer, in Ajax's shape with the project's tokens. Never an `apiKey`.
#[derive(Serialize)]
pub struct TokenPair {
    #[serde(rename = "sessionToken")]
    pub session_token: String,
    #[serde(rename = "refreshToken")]
    pub refresh_token: String,
    #[serde(rename = "userId")]
    pub user_id: String,
}

/// Tokens issued to a user, with who they are (for the audit record).
pub struct Issued {
    pub pair: TokenPair,
    pub user_id: uuid::Uuid,
    pub tenant_id: uuid::Uuid,
}

/// Maps an Ajax failure during login or refresh to what the client must see (never a 500).
fn ajax_failure(e: AjaxCallError) -> ApiError {
    match e {
        AjaxCallError::Rejected {
            status: 401 | 403 | 404 | 422,
            ..
        } => ApiError::Unauthorized("Wrong login or password"),
        AjaxCallError::Rejected { status, message } => {
            tracing::warn!(status, %message, "ajax refused login for another reason");
            ApiError::BadGateway
        }
        AjaxCallError::Throttled { retry_after_secs } => ApiError::Unavailable {
            message: "Ajax is busy; retry shortly",
            retry_after_secs,
        },
        AjaxCallError::Unavailable(reason) => {
            tracing::warn!(%reason, "ajax unavailable during login");
            ApiError::BadGateway
        }
        AjaxCallError::Timeout => ApiError::GatewayTimeout,
    }
}

/// Checks the body's values (shape is checked by deserialisation).
pub fn validate_login(request: &LoginRequest) -> Result<(), ApiError> {
    let login = request.login.trim();
    if login.is_empty() || login.len() > 254 {
        return Err(ApiError::Unprocessable(
            "login must be a non-empty e-mail or phone number".into(),
        ));
    }
    let hash = &request.password_hash;
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::Unprocessable(
            "passwordHash must be the SHA-256 of the password in hex".into(),
        ));
    }
    if let Some(role) = &request.user_role
        && role != "USER"
        && role != "PRO"
    {
        return Err(ApiError::Unprocessable("userRole must be USER or PRO".into()));
    }
    Ok(())
}

/// `POST /api/login` from the client at `ip`.
pub async fn login(state: &AppState, request: LoginRequest, ip: std::net::IpAddr) -> Result<Issued, ApiError> {
    validate_login(&request)?;
    if let Some(retry_after_secs) = state.lockout.locked_for(&request.login, ip).await? {
        return Err(ApiError::TooManyRequests {
            message: "Too many failed logins; try again later",
            retry_after_secs,
        });
    }
    take_budget_slot(state).await?;
    let triple = match state.ajax.login(&request).await {
        Ok(triple) => triple,
        Err(e) => {
            let failure = ajax_failure(e);
            if matches!(failure, ApiError::Unauthorized(_)) {
                state.lockout.record_failure(&request.login, ip).await?;
            }
            return Err(failure);
        }
    };
    state.lockout.record_success(&request.login, ip).await?;
    let now = Utc::now().timestamp();
    let mut tx = state.db.begin().await?;
    let (user, created) = accounts::sync_on_login(&mut tx, &triple.user_id, request.login.trim()).await?;
    if user.is_suspended() {
        return Err(ApiError::Forbidden("Account suspended; contact your provider"));
    }
    let (refresh, refresh_hash) = refresh_tokens::new_token();
    let expires = Utc::now() + state.settings.refresh_ttl;
    let family = refresh_tokens::start_family(&mut tx, user.id, &refresh_hash, expires).await?;
    let session = AjaxSession {
        session_token: triple.session_token,
        refresh_token: triple.refresh_token,
        ajax_user_id: triple.user_id,
        session_expires_at: now + AJAX_SESSION_SECS,
        refresh_expires_at: now + AJAX_REFRESH_SECS,
    };
    // Stored before the commit: if Redis fails, the transaction rolls back and nothing is provisioned.
    state
        .sessions
        .put_ajax_session(&user.id.to_string(), &session, now)
        .await?;
    let access = mint_access(state, &user, &family.to_string()).await?;
    tx.commit().await?;
    // The tenant's plan is computed and its entitlement published before the first proxied call
    // (a new tenant, one whose entry a Redis restart lost, or one whose plan changed unseen).
    state.plans.recompute_or_defer(user.tenant_id).await;
    tracing::info!(user = %user.id, created, "login");
    Ok(Issued {
        pair: TokenPair {
            session_token: access,
            refresh_token: refresh,
            user_id: user.ajax_user_id,
        },
        user_id: user.id,
        tenant_id: user.tenant_id,
    })
}

/// Waits for a slot in the global budget's account lane (the Ajax login is an upstream call like
/// any other); a refusal is a 429 with `Retry-After`, so clients come back instead of failing.
async fn take_budget_slot(state: &AppState) -> Result<(), ApiError> {
    let mut redis = state.sessions.redis.clone();
    match state
        .budget
        .reserve(&mut redis, &ReserveRequest::new(Lane::Account))
        .await?
    {
        Decision::Granted(slot) => {
            tokio::time::sleep(slot.wait_duration()).await;
            Ok(())
        }
        Decision::Refused { retry_after_secs, .. } => Err(ApiError::TooManyRequests {
            message: "Ajax is busy; retry after the indicated time",
            retry_after_secs,
        }),
        // The login's reservation carries no plan check.
        Decision::NotEntitled { .. } => Err(ApiError::Unavailable {
            message: "Login is unavailable; retry shortly",
            retry_after_secs: 1,
        }),
    }
}

/// `POST /api/refresh`: rotates our refresh token and mints a new access token.
pub async fn refresh(state: &AppState, presented: &str, ajax_user_id: &str) -> Result<Issued, ApiError> {
    let (token, new_hash) = refresh_tokens::new_token();
    let mut tx = state.db.begin().await?;
    let rotation = refresh_tokens::rotate(&mut tx, &refresh_tokens::hash(presented), &new_hash).await?;
    let (family_id, user_id) = match rotation {
        Rotation::Rotated { family_id, user_id } => (family_id, user_id),
        Rotation::ReuseDetected { family_id, user_id } => {
            tx.commit().await?;
            tracing::warn!(%family_id, %user_id, "refresh token reuse: family revoked");
            return Err(ApiError::Unauthorized("Refresh token is no longer valid"));
        }
        Rotation::Refused => {
            return Err(ApiError::Unauthorized("Refresh token is no longer valid"));
        }
    };
    let user = accounts::by_id(&mut tx, user_id)
        .await?
        .ok_or(ApiError::Unauthorized("Refresh token is no longer valid"))?;
    if user.ajax_user_id != ajax_user_id {
        return Err(ApiError::Unauthorized("Refresh token is no longer valid"));
    }
    if user.is_suspended() {
        return Err(ApiError::Unauthorized("Account suspended"));
    }
    // Without an Ajax session behind it our token would be useless: the client must log in again.
    if state.sessions.ajax_session(&user.id.to_string()).await?.is_none() {
        return Err(ApiError::Unauthorized("Session ended; log in again"));
    }
    let access = mint_access(state, &user, &family_id.to_string()).await?;
    tx.commit().await?;
    Ok(Issued {
        pair: TokenPair {
            session_token: access,
            refresh_token: token,
            user_id: user.ajax_user_id,
        },
        user_id: user.id,
        tenant_id: user.tenant_id,
    })
}

/// `POST /api/logout`: revokes the access token, its refresh family and the stored Ajax session.
/// The token may have expired; its signature must still be ours.
pub async fn logout(state: &AppState, claims: &AccessClaims) -> Result<(), ApiError> {
    let now = Utc::now().timestamp();
    state.sessions.revoke_token(&claims.jti, claims.exp, now).await?;
    if let Some(family) = claims.sid.as_deref().and_then(|s| s.parse::<uuid::Uuid>().ok()) {
        let mut conn = state.db.acquire().await?;
        refresh_tokens::revoke_family(&mut conn, family, "logout").await?;
    }
    state.sessions.delete_ajax_session(&claims.sub).await?;
    Ok(())
}

async fn mint_access(state: &AppState, user: &User, family: &str) -> Result<String, ApiError> {
    let (kid, key) = state.signer.current().await.map_err(ApiError::Internal)?;
    let now = Utc::now().timestamp();
    let ttl = i64::try_from(state.settings.access_ttl.as_secs()).unwrap_or(900);
    let claims = AccessClaims {
        sub: user.id.to_string(),
        uid: user.ajax_user_id.clone(),
        tid: user.tenant_id.to_string(),
        role: if user.role == "admin" { Role::Admin } else { Role::User },
        jti: uuid::Uuid::new_v4().to_string(),
        iat: now,
        nbf: now,
        exp: now + ttl,
        iss: state.settings.issuer.clone(),
        aud: state.settings.audience.clone(),
        sid: Some(family.to_owned()),
    };
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid);
    jsonwebtoken::encode(&header, &claims, &key).map_err(|e| ApiError::Internal(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(login: &str, hash: &str) -> LoginRequest {
        LoginRequest {
            login: login.into(),
            password_hash: hash.into(),
            user_role: None,
            totp: None,
        }
    }

    #[test]
    fn login_values_are_checked_before_ajax_is_called() {
        let good = "a".repeat(64);
        assert!(validate_login(&request("demo@example.com", &good)).is_ok());
        assert!(matches!(
            validate_login(&request("", &good)),
            Err(ApiError::Unprocessable(_))
        ));
        assert!(matches!(
            validate_login(&request("x@y", "plain-password")),
            Err(ApiError::Unprocessable(_))
        ));
        let mut role = request("x@y", &good);
        role.user_role = Some("ADMIN".into());
        assert!(matches!(validate_login(&role), Err(ApiError::Unprocessable(_))));
    }

    #[test]
    fn ajax_failures_never_become_500() {
        use axum::response::IntoResponse;
        let cases = [
            (
                AjaxCallError::Rejected {
                    status: 401,
                    message: String::new(),
                },
                401,
            ),
            (
                AjaxCallError::Rejected {
                    status: 400,
                    message: String::new(),
                },
                502,
            ),
            (AjaxCallError::Unavailable("down".into()), 502),
            (AjaxCallError::Timeout, 504),
            (AjaxCallError::Throttled { retry_after_secs: 3 }, 503),
        ];
        for (failure, status) in cases {
            assert_eq!(ajax_failure(failure).into_response().status().as_u16(), status);
        }
    }
}
