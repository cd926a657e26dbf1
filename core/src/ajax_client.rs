//! The Ajax client for the calls the project makes on its own account: login and refresh, with the
//! company key. Failures are typed so that callers answer clients correctly (a rejected credential
//! is not an outage, and an outage is never a 500).

use std::time::Duration;

use crate::ajax_wire::{ErrorBody, LoginRequest, RefreshRequest, SessionTriple, headers};

/// Why an Ajax call did not give a session.
#[derive(Debug, thiserror::Error)]
pub enum AjaxCallError {
    /// Ajax refused the credentials or token (401/403/404/422 and similar).
    #[error("ajax rejected the call with {status}: {message}")]
    Rejected { status: u16, message: String },
    /// Ajax signalled throttling (429 or its "limit exceeded" body).
    #[error("ajax is throttling the key")]
    Throttled { retry_after_secs: u64 },
    /// Ajax could not be reached or failed (connection error, 5xx, unreadable answer).
    #[error("ajax unavailable: {0}")]
    Unavailable(String),
    #[error("ajax timed out")]
    Timeout,
}

/// Calls Ajax (or ajax-sim) at `base_url` with the company key.
#[derive(Clone)]
pub struct AjaxClient {
    base_url: String,
    api_key: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for AjaxClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AjaxClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl AjaxClient {
    /// `base_url` is the origin (`https://api.ajax.systems`); paths get `/api/...` appended.
    pub fn new(base_url: &str, api_key: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            http,
        })
    }

    /// `POST /api/login`.
    pub async fn login(&self, request: &LoginRequest) -> Result<SessionTriple, AjaxCallError> {
        self.post("/api/login", request).await
    }

    /// `POST /api/refresh`: rotates the Ajax tokens (the old pair dies).
    pub async fn refresh(&self, request: &RefreshRequest) -> Result<SessionTriple, AjaxCallError> {
        self.post("/api/refresh", request).await
    }

    async fn post<B: serde::Serialize>(&self, path: &str, body: &B) -> Result<SessionTriple, AjaxCallError> {
        let response = self
            .http
            .post(format!("{}{path}", self.base_url))
            .header(headers::API_KEY, &self.api_key)
            .json(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    AjaxCallError::Timeout
                } else {
                    AjaxCallError::Unavailable(e.without_url().to_string())
                }
            })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let bytes = response.bytes().await.map_err(|e| {
            if e.is_timeout() {
                AjaxCallError::Timeout
            } else {
                AjaxCallError::Unavailable(e.without_url().to_string())
            }
        })?;
        classify(status, retry_after, &bytes)
    }
}

/// Turns an Ajax answer into a session or a typed failure.
pub fn classify(status: u16, retry_after: Option<u64>, body: &[u8]) -> Result<SessionTriple, AjaxCallError> {
    let message = serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.message)
        .unwrap_or_default();
    if status == 429 || message.to_ascii_lowercase().contains("exceeded the limit") {
        return Err(AjaxCallError::Throttled {
            retry_after_secs: retry_after.unwrap_or(5),
        });
    }
    match status {
        200..=299 => serde_json::from_slice::<SessionTriple>(body)
            .map_err(|_| AjaxCallError::Unavailable("ajax answered an unreadable session".into())),
        500..=599 => Err(AjaxCallError::Unavailable(format!("ajax answered {status}"))),
        _ => Err(AjaxCallError::Rejected { status, message }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_by_status_and_body() {
        let ok = br#"{"sessionToken":"s","userId":"u","refreshToken":"r"}"#;
        assert_eq!(classify(200, None, ok).expect("session").user_id, "u");
        assert!(matches!(
            classify(401, None, br#"{"message":"Wrong login or password","messageId":"x"}"#),
            Err(AjaxCallError::Rejected { status: 401, .. })
        ));
        assert!(matches!(classify(503, None, b""), Err(AjaxCallError::Unavailable(_))));
        assert!(matches!(
            classify(429, Some(7), b""),
            Err(AjaxCallError::Throttled { retry_after_secs: 7 })
        ));
        let limit = br#"{"message":"You have exceeded the limit of requests","messageId":"x"}"#;
        assert!(matches!(
            classify(200, None, limit),
            Err(AjaxCallError::Throttled { .. })
        ));
        assert!(matches!(classify(200, None, b"{}"), Err(AjaxCallError::Unavailable(_))));
    }
}
