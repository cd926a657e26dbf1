//! Stripe's error answer: `{"error":{"type":"invalid_request_error","message":..,"code"?,"param"?}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::form::FormError;

/// Why a call is refused.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401: no key, or not a test secret key.
    #[error("{0}")]
    Unauthorized(String),
    /// 404 `resource_missing`: the path names an object that does not exist.
    #[error("No such {kind}: '{id}'")]
    NoSuch { kind: &'static str, id: String },
    /// 400: a bad parameter; `code` `resource_missing` when it names an unknown object.
    #[error("{message}")]
    Invalid {
        message: String,
        param: Option<String>,
        code: Option<&'static str>,
    },
    /// 404: no such endpoint.
    #[error("Unrecognized request URL ({method}: {path}).")]
    UnknownUrl { method: String, path: String },
}

impl ApiError {
    pub fn invalid(message: impl Into<String>, param: &str) -> Self {
        Self::Invalid {
            message: message.into(),
            param: Some(param.to_owned()),
            code: None,
        }
    }

    /// A parameter naming an object that does not exist (400, as Stripe answers for parameters).
    pub fn missing_param(kind: &str, id: &str, param: &str) -> Self {
        let message = format!("No such {kind}: '{id}'");
        Self::Invalid {
            message,
            param: Some(param.to_owned()),
            code: Some("resource_missing"),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::NoSuch { .. } | Self::UnknownUrl { .. } => StatusCode::NOT_FOUND,
            Self::Invalid { .. } => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<FormError> for ApiError {
    fn from(error: FormError) -> Self {
        Self::Invalid {
            message: error.to_string(),
            param: None,
            code: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = Map::new();
        error.insert("type".into(), json!("invalid_request_error"));
        error.insert("message".into(), json!(self.to_string()));
        let (code, param) = match &self {
            Self::NoSuch { .. } => (Some("resource_missing"), Some("id".to_owned())),
            Self::Invalid { code, param, .. } => (*code, param.clone()),
            _ => (None, None),
        };
        if let Some(code) = code {
            error.insert("code".into(), json!(code));
            error.insert(
                "doc_url".into(),
                json!(format!(
                    "https://stripe.com/docs/error-codes/{}",
                    code.replace('_', "-")
                )),
            );
        }
        if let Some(param) = param {
            error.insert("param".into(), json!(param));
        }
        (self.status(), Json(json!({ "error": Value::Object(error) }))).into_response()
    }
}
