//! Authentication inside the control plane: verifies the project's access tokens against its own
//! published keys, checks revocation the same way the proxy does (revoked `jti`, user "not
//! before"), loads the user, and offers extractors for user and admin routes.

use asf_core::claims::AccessClaims;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::accounts::{self, User};
use crate::error::ApiError;
use crate::signing;
use crate::state::AppState;

const INVALID: ApiError = ApiError::Unauthorized("Session token is invalid");

/// The access token of a request: `Authorization: Bearer` or `X-Session-Token`.
pub fn token_from(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t)
        });
    let session = headers.get("x-session-token").and_then(|v| v.to_str().ok());
    bearer.or(session).map(str::trim).filter(|t| !t.is_empty())
}

/// Verifies signature, issuer and audience, and expiry unless `allow_expired` (logout accepts an
/// expired token: its signature still proves who asks).
pub async fn verify(state: &AppState, token: &str, allow_expired: bool) -> Result<AccessClaims, ApiError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| INVALID)?;
    if header.alg != Algorithm::EdDSA {
        return Err(INVALID);
    }
    let kid = header.kid.ok_or(INVALID)?;
    let keys = signing::published(&state.db).await?;
    let x = keys
        .iter()
        .find(|k| k.kid == kid)
        .and_then(|k| k.ed25519_x())
        .ok_or(INVALID)?;
    let key = DecodingKey::from_ed_components(x).map_err(|_| INVALID)?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.validate_exp = !allow_expired;
    validation.leeway = 30;
    validation.set_issuer(&[&state.settings.issuer]);
    validation.set_audience(&[&state.settings.audience]);
    jsonwebtoken::decode::<AccessClaims>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => ApiError::Unauthorized("Session token has expired"),
            _ => INVALID,
        })
}

/// The user behind a live, unrevoked token; the user is active.
pub struct CurrentUser {
    pub user: User,
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = token_from(&parts.headers).ok_or(ApiError::Unauthorized("Session token is missing"))?;
        let claims = verify(state, token, false).await?;
        if state.sessions.is_revoked(&claims).await? {
            return Err(ApiError::Unauthorized("Session is no longer valid; log in again"));
        }
        let id = claims.sub.parse::<uuid::Uuid>().map_err(|_| INVALID)?;
        let mut conn = state.db.acquire().await?;
        let user = accounts::by_id(&mut conn, id).await?.ok_or(INVALID)?;
        if user.is_suspended() {
            return Err(ApiError::Unauthorized("Account suspended"));
        }
        Ok(Self { user })
    }
}

/// A [`CurrentUser`] whose role (read from the database, not the token) is admin.
pub struct Admin(pub CurrentUser);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let current = CurrentUser::from_request_parts(parts, state).await?;
        if current.user.role != "admin" {
            return Err(ApiError::Forbidden("Administrators only"));
        }
        Ok(Self(current))
    }
}
