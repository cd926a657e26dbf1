//! Ajax's sample answers, one per operation, from `spec/responses.json` (generated from Ajax's spec
//! by `tools/gen_catalogue.py`): what every operation without simulated state answers, and the
//! templates the stateful views fill in, so field names always follow the spec.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::reply::{self, AjaxError};

const RESPONSES: &str = include_str!("../spec/responses.json");

/// What an operation answers when it succeeds.
#[derive(Debug, Clone)]
pub struct Sample {
    pub status: StatusCode,
    /// `None` when the operation answers without a body.
    pub body: Option<Value>,
}

#[derive(Deserialize)]
struct RawSample {
    status: u16,
    body: Option<Value>,
}

/// The samples file does not parse.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("spec/responses.json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("spec/responses.json: operation {operation} has status {status}")]
    Status { operation: String, status: u16 },
}

/// All samples, by operation id.
#[derive(Debug, Clone)]
pub struct Samples {
    by_operation: HashMap<String, Sample>,
}

impl Samples {
    /// The samples compiled into the binary.
    pub fn builtin() -> Result<Self, SampleError> {
        let raw: HashMap<String, RawSample> = serde_json::from_str(RESPONSES)?;
        let mut by_operation = HashMap::with_capacity(raw.len());
        for (operation, sample) in raw {
            let Ok(status) = StatusCode::from_u16(sample.status) else {
                return Err(SampleError::Status {
                    operation,
                    status: sample.status,
                });
            };
            // `Option<Value>` reads JSON null as None: a null sample is an answer without a body.
            by_operation.insert(
                operation,
                Sample {
                    status,
                    body: sample.body,
                },
            );
        }
        Ok(Self { by_operation })
    }

    pub fn get(&self, operation: &str) -> Option<&Sample> {
        self.by_operation.get(operation)
    }

    /// The operation's sample answer; 501 when the spec gave it none.
    pub fn reply(&self, operation: &str) -> Response {
        match self.get(operation) {
            Some(Sample {
                status,
                body: Some(body),
            }) => reply::json(*status, body),
            Some(Sample { status, body: None }) => reply::empty(*status),
            None => AjaxError::not_implemented().into_response(),
        }
    }

    /// The object an operation answers (the first item when it answers a list), to fill in.
    pub fn template(&self, operation: &str) -> Map<String, Value> {
        let body = self.get(operation).and_then(|s| s.body.as_ref());
        let item = match body {
            Some(Value::Array(items)) => items.first(),
            other => other,
        };
        match item {
            Some(Value::Object(map)) => map.clone(),
            _ => Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use asf_core::catalogue::{Catalogue, RouteClass};

    #[test]
    fn every_user_and_public_operation_of_the_catalogue_has_a_sample() {
        let samples = Samples::builtin().expect("samples parse");
        let missing: Vec<&str> = Catalogue::builtin()
            .routes()
            .iter()
            .filter(|r| r.class != RouteClass::Account)
            .map(|r| r.operation_id.as_str())
            .filter(|op| samples.get(op).is_none())
            .collect();
        assert!(missing.is_empty(), "no sample for {missing:?}");
    }

    #[test]
    fn list_templates_are_their_first_item() {
        let samples = Samples::builtin().expect("samples parse");
        let binding = samples.template("getHubBindings");
        assert!(binding.contains_key("hubId") && binding.contains_key("hubBindingRole"));
        let hub = samples.template("getHub");
        assert!(hub.contains_key("state") && hub.contains_key("id"));
    }

    #[test]
    fn operations_without_a_body_answer_their_status_alone() {
        let samples = Samples::builtin().expect("samples parse");
        let response = samples.reply("sendPanic");
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert!(response.headers().get("content-type").is_none());
        let response = samples.reply("getCameras");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/json");
    }
}
