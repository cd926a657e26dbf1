//! Ajax-shaped answers: JSON success replies, and `AjaxError`, the one error every handler returns,
//! whose constructors each name a status code and the message Ajax gives with it.

use asf_core::ajax_wire::{ErrorBody, ErrorItem};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The body operators report Ajax sends when a key goes over its limit.
pub const LIMIT_MESSAGE: &str = "You have exceeded the limit of requests";

/// A JSON answer with `Content-Type: application/json`.
pub fn json(status: StatusCode, value: &Value) -> Response {
    json_bytes(status, serde_json::to_vec(value).unwrap_or_default())
}

/// Any serialisable value as a JSON answer (500 in Ajax's shape if it cannot be serialised).
pub fn json_of<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => json_bytes(status, body),
        Err(_) => AjaxError::server_error(StatusCode::INTERNAL_SERVER_ERROR).into_response(),
    }
}

/// Already serialised JSON with `Content-Type: application/json`.
pub fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// An answer without a body (204, or a 2xx whose sample has none).
pub fn empty(status: StatusCode) -> Response {
    status.into_response()
}

/// An error as Ajax answers it: a status and `{"message", "messageId", "errors"}`.
#[derive(Debug, Clone)]
pub struct AjaxError {
    status: StatusCode,
    body: ErrorBody,
    retry_after: Option<u64>,
}

impl AjaxError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody::new(message),
            retry_after: None,
        }
    }

    /// 401: the `X-Api-Key` is missing or wrong.
    pub fn bad_api_key() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "User is not authorized")
    }

    /// 401: the `X-Session-Token` is missing, unknown, rotated away or expired.
    pub fn bad_session() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Session token is invalid or expired")
    }

    /// 401: login with an unknown login or a wrong password hash.
    pub fn wrong_credentials() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Wrong login or password")
    }

    /// 401: refresh with an unknown, used or expired refresh token.
    pub fn bad_refresh() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Refresh token is invalid or expired")
    }

    /// 403: the path names another user, or a hub or space the caller does not have.
    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden")
    }

    /// 404: no such path, or no such object on the caller's hub.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not found")
    }

    /// 405: the path exists, not with this method.
    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
    }

    /// 400: the body is not JSON, or not of the expected shape.
    pub fn bad_json() -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Failed to read JSON body")
    }

    /// 400: a query parameter is missing or malformed.
    pub fn bad_parameter(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("Required parameter '{name}' is missing or invalid"),
        )
    }

    /// 422: a field of the body is missing or has a value the operation does not take.
    pub fn validation(resource: &str, field: &str, code: &str, message: &str) -> Self {
        let mut error = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "Validation error");
        error.body.errors.push(ErrorItem {
            resource: Some(resource.to_owned()),
            field: Some(field.to_owned()),
            code: Some(code.to_owned()),
            message: Some(message.to_owned()),
        });
        error
    }

    /// 412: the hub is in the wrong state for the operation.
    pub fn precondition(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PRECONDITION_FAILED, message)
    }

    /// 503: the hub the call is for is offline.
    pub fn hub_offline() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "Hub is offline")
    }

    /// 429 with `Retry-After` in whole seconds (at least 1).
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        let mut error = Self::new(StatusCode::TOO_MANY_REQUESTS, LIMIT_MESSAGE);
        error.retry_after = Some(retry_after_secs.max(1));
        error
    }

    /// 200 carrying the over-limit message, as operators report Ajax sometimes signals its limit.
    pub fn limit_as_ok() -> Self {
        Self::new(StatusCode::OK, LIMIT_MESSAGE)
    }

    /// An injected upstream failure: 500, 502 or 503 (anything else answers 500).
    pub fn server_error(status: StatusCode) -> Self {
        match status {
            StatusCode::BAD_GATEWAY => Self::new(status, "Bad gateway"),
            StatusCode::SERVICE_UNAVAILABLE => Self::new(status, "Service is temporarily unavailable"),
            _ => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Unexpected error occurred. Please contact Ajax dev team with provided 'messageId'",
            ),
        }
    }

    /// 501: an operation the simulator has no sample for.
    pub fn not_implemented() -> Self {
        Self::new(StatusCode::NOT_IMPLEMENTED, "Not implemented")
    }
}

impl IntoResponse for AjaxError {
    fn into_response(self) -> Response {
        let mut response = json_bytes(self.status, self.body.to_json());
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Parses a JSON body into `T`; anything else is Ajax's 400.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, AjaxError> {
    serde_json::from_slice(body).map_err(|_| AjaxError::bad_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_429_carries_retry_after_in_whole_seconds_and_json() {
        let response = AjaxError::too_many_requests(0).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[test]
    fn validation_errors_name_the_field() {
        let error = AjaxError::validation("ArmCommand", "command", "invalid", "unknown command");
        assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error.body.errors[0].field.as_deref(), Some("command"));
    }

    #[test]
    fn malformed_json_is_a_400() {
        let parsed: Result<Value, _> = parse_json(b"{nope");
        assert_eq!(parsed.err().map(|e| e.status), Some(StatusCode::BAD_REQUEST));
    }
}
