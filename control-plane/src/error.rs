//! `ApiError`: every failure a handler can answer, each with its status code, in Ajax's error shape
//! (`message`, `messageId`, `errors`). Internal errors are logged with context and shown to the
//! client only as a generic message with the id to quote.

use asf_core::ajax_wire::ErrorBody;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not JSON or not an object of the expected shape.
    #[error("{0}")]
    BadRequest(String),
    /// 422: well-formed JSON with invalid values.
    #[error("{0}")]
    Unprocessable(String),
    /// 401: credentials or token refused.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 403: authenticated but not allowed (suspended account, not an admin).
    #[error("{0}")]
    Forbidden(&'static str),
    /// 404: no such resource.
    #[error("{0}")]
    NotFound(&'static str),
    /// 429: too many attempts; try again after the given number of seconds.
    #[error("{message}")]
    TooManyRequests {
        message: &'static str,
        retry_after_secs: u64,
    },
    /// 502: Ajax failed or answered something unusable.
    #[error("Ajax is unavailable")]
    BadGateway,
    /// 503: a dependency (Redis, PostgreSQL, Ajax throttling) is unavailable; retry later.
    #[error("{message}")]
    Unavailable {
        message: &'static str,
        retry_after_secs: u64,
    },
    /// 504: Ajax did not answer in time.
    #[error("Ajax did not answer in time")]
    GatewayTimeout,
    /// A refusal with its own status and machine-readable code (e.g. a voucher that has expired).
    #[error("{message}")]
    Refused {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// 500: a bug or an unexpected failure; details only in the log.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// The machine-readable reason, in `errors[0].code`.
    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Unprocessable(_) => "invalid_value",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::TooManyRequests { .. } => "too_many_requests",
            Self::BadGateway => "upstream_unavailable",
            Self::Unavailable { .. } => "unavailable",
            Self::GatewayTimeout => "upstream_timeout",
            Self::Refused { code, .. } => code,
            Self::Internal(_) => "internal",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::BadGateway => StatusCode::BAD_GATEWAY,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Refused { status, .. } => *status,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => {
                tracing::error!(error = %e, "database unavailable");
                Self::Unavailable {
                    message: "Database unavailable",
                    retry_after_secs: 2,
                }
            }
            other => Self::Internal(other.into()),
        }
    }
}

impl From<redis::RedisError> for ApiError {
    fn from(e: redis::RedisError) -> Self {
        tracing::error!(error = %e, "redis unavailable");
        Self::Unavailable {
            message: "Session store unavailable",
            retry_after_secs: 2,
        }
    }
}

impl From<crate::plans::effective::PlanError> for ApiError {
    fn from(e: crate::plans::effective::PlanError) -> Self {
        use crate::plans::effective::PlanError;
        match e {
            PlanError::Database(e) => e.into(),
            PlanError::Redis(e) => e.into(),
            other => Self::Internal(other.into()),
        }
    }
}

impl ApiError {
    /// A refusal with `status`, `code` and a message for the user.
    pub fn refused(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self::Refused {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            Self::Internal(e) => {
                let body = ErrorBody::new("Internal error");
                tracing::error!(message_id = %body.message_id, error = ?e, "internal error");
                body
            }
            other => ErrorBody::new(other.to_string()).with_code(other.code()),
        };
        let retry_after = match &self {
            Self::Unavailable { retry_after_secs, .. } | Self::TooManyRequests { retry_after_secs, .. } => {
                Some(*retry_after_secs)
            }
            _ => None,
        };
        let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body.to_json()).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
