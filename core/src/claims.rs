//! The claims of the project's own access token (a JWT signed by the control plane).

use serde::{Deserialize, Serialize};

/// Issuer written into and expected in every access token.
pub const DEFAULT_ISSUER: &str = "ajaxsecurflow";
/// Audience written into and expected in every access token.
pub const DEFAULT_AUDIENCE: &str = "ajax-api";

/// A user's role in the project (not in Ajax).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

/// Claims of an access token. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Our user id.
    pub sub: String,
    /// The user's Ajax user id: the only `{userId}` the token may reach.
    pub uid: String,
    /// Tenant id.
    pub tid: String,
    pub role: Role,
    /// Token id, for revocation.
    pub jti: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    /// The refresh family (login session) the token was issued in; logout revokes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}
