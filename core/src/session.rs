//! The user's Ajax session as the control plane stores it in Redis and the proxy reads it.

use serde::{Deserialize, Serialize};

use crate::secrets::{SecretsError, SecretsKey};

/// The Ajax session behind one of our users. Times are Unix seconds. `Debug` hides the tokens.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AjaxSession {
    pub session_token: String,
    pub refresh_token: String,
    pub ajax_user_id: String,
    pub session_expires_at: i64,
    pub refresh_expires_at: i64,
}

impl std::fmt::Debug for AjaxSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AjaxSession")
            .field("ajax_user_id", &self.ajax_user_id)
            .field("session_expires_at", &self.session_expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .finish_non_exhaustive()
    }
}

/// Why a stored session could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error("stored session is not valid JSON")]
    Format,
}

impl AjaxSession {
    /// Seals the session for storage under `redis_key`.
    pub fn seal(&self, key: &SecretsKey, redis_key: &str) -> String {
        // A struct of strings and integers always serialises.
        let json = serde_json::to_vec(self).unwrap_or_default();
        key.seal(redis_key, &json)
    }

    /// Opens a session sealed under `redis_key`.
    pub fn open(key: &SecretsKey, redis_key: &str, sealed: &str) -> Result<Self, SessionError> {
        let json = key.open(redis_key, sealed)?;
        serde_json::from_slice(&json).map_err(|_| SessionError::Format)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_round_trips_and_debug_hides_tokens() {
        let key = SecretsKey::from_base64(&SecretsKey::generate_base64()).expect("key");
        let session = AjaxSession {
            session_token: "sess-secret".into(),
            refresh_token: "refr-secret".into(),
            ajax_user_id: "A1".into(),
            session_expires_at: 10,
            refresh_expires_at: 20,
        };
        let sealed = session.seal(&key, "k");
        assert_eq!(AjaxSession::open(&key, "k", &sealed).expect("open"), session);
        assert!(!format!("{session:?}").contains("secret"));
    }
}
