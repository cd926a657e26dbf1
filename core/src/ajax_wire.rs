//! Ajax's own wire shapes that every part of the project speaks: the error body and the login triple.

use serde::{Deserialize, Serialize};

/// Ajax's error body: `{"message", "messageId", "errors"}`. Clients read `message`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub message: String,
    #[serde(rename = "messageId")]
    pub message_id: String,
    #[serde(default)]
    pub errors: Vec<ErrorItem>,
}

/// One entry of [`ErrorBody::errors`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct ErrorItem {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl ErrorBody {
    /// An error with a fresh `messageId` and no detail entries.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            // A v4 UUID from the thread-local generator: `Uuid::new_v4` makes a system call each
            // time, and refusals under a flood are made by the tens of thousands per second.
            message_id: uuid::Builder::from_random_bytes(rand::random()).into_uuid().to_string(),
            errors: Vec::new(),
        }
    }

    /// Adds one detail entry with a machine-readable `code`.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.errors.push(ErrorItem {
            code: Some(code.into()),
            ..ErrorItem::default()
        });
        self
    }

    /// The body as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising a struct of strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Ajax's `/api/login` request body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginRequest {
    pub login: String,
    #[serde(rename = "passwordHash")]
    pub password_hash: String,
    #[serde(rename = "userRole", default, skip_serializing_if = "Option::is_none")]
    pub user_role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp: Option<String>,
}

/// Ajax's `/api/refresh` request body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshRequest {
    #[serde(rename = "userId")]
    pub user_id: String,
    #[serde(rename = "refreshToken")]
    pub refresh_token: String,
}

/// What Ajax answers to a successful login or refresh.
#[derive(Clone, Serialize, Deserialize)]
pub struct SessionTriple {
    #[serde(rename = "sessionToken")]
    pub session_token: String,
    #[serde(rename = "userId")]
    pub user_id: String,
    #[serde(rename = "refreshToken")]
    pub refresh_token: String,
}

impl std::fmt::Debug for SessionTriple {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionTriple")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// Header names of Ajax's API.
pub mod headers {
    pub const API_KEY: &str = "x-api-key";
    pub const SESSION_TOKEN: &str = "x-session-token";
    pub const COMPANY_TOKEN: &str = "x-company-token";
    pub const REQUEST_ID: &str = "x-request-id";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_ajax_field_names() {
        let body = ErrorBody::new("User is not authorized").with_code("unauthorized");
        let value: serde_json::Value = serde_json::from_slice(&body.to_json()).expect("json");
        assert_eq!(value["message"], "User is not authorized");
        let id = uuid::Uuid::parse_str(value["messageId"].as_str().expect("id")).expect("a UUID");
        assert_eq!(id.get_version_num(), 4);
        assert_ne!(ErrorBody::new("x").message_id, ErrorBody::new("x").message_id);
        assert_eq!(value["errors"][0]["code"], "unauthorized");
    }

    #[test]
    fn session_triple_debug_hides_tokens() {
        let triple = SessionTriple {
            session_token: "s3cr3t-session".into(),
            user_id: "u1".into(),
            refresh_token: "s3cr3t-refresh".into(),
        };
        let shown = format!("{triple:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }
}
