//! Command bodies checked before they can cost anything: a command (arming, panic, device command)
//! must carry well-formed JSON with a JSON `Content-Type`, valid against the spec's schema for that
//! operation (`asf_core::body_schema`: types, enums such as the arming `command`, required fields);
//! anything else is answered 400/422 naming the problem, and never reaches Ajax or the budget.
//! The body is read into Pingora's retry buffer, from which it is then sent upstream unchanged.

use pingora::proxy::Session;
use serde_json::Value;

use crate::respond::LocalAnswer;

/// The most a command body may hold (Pingora's retry buffer; commands are a few dozen bytes).
pub const MAX_COMMAND_BODY: usize = 64 * 1024;

pub const NOT_JSON: LocalAnswer = LocalAnswer::new(400, "body_not_json", "The body must be JSON (application/json)");
pub const MALFORMED_JSON: LocalAnswer = LocalAnswer::new(400, "malformed_json", "The body is not well-formed JSON");
pub const TOO_LARGE: LocalAnswer = LocalAnswer::new(413, "body_too_large", "Request body too large");
pub const INVALID_BODY: LocalAnswer =
    LocalAnswer::new(422, "invalid_command", "The body does not match the operation's schema");

/// Checks a parsed body (`None`: empty) against the spec's schema for `operation_id`.
pub fn check_schema(operation_id: &str, body: Option<&Value>) -> Result<(), LocalAnswer> {
    let Some(spec) = asf_core::body_schema::builtin().get(operation_id) else {
        return Ok(());
    };
    match body {
        // A panic is never refused for lacking what the spec calls required: it may carry no body.
        None if spec.required && operation_id != PANIC_OPERATION => {
            Err(INVALID_BODY.with_message("A JSON body is required for this command".into()))
        }
        None => Ok(()),
        Some(value) => spec
            .schema
            .check(value)
            .map_err(|violation| INVALID_BODY.with_message(violation.to_string())),
    }
}

/// The panic command's operation id.
const PANIC_OPERATION: &str = "sendPanic";

/// Parses a command body: JSON content type and well-formed JSON (an empty body is allowed: some
/// commands, like panic, take none).
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Option<Value>, LocalAnswer> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let is_json = content_type.is_some_and(|ct| {
        let media = ct.split(';').next().unwrap_or("").trim();
        media.eq_ignore_ascii_case("application/json") || media.to_ascii_lowercase().ends_with("+json")
    });
    if !is_json {
        return Err(NOT_JSON);
    }
    serde_json::from_slice(body).map(Some).map_err(|_| MALFORMED_JSON)
}

/// Reads and checks the body of a command of `operation_id`.
pub async fn check_command(session: &mut Session, operation_id: &str) -> Result<(), LocalAnswer> {
    session.enable_retry_buffering();
    let mut body = Vec::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_COMMAND_BODY {
                    return Err(TOO_LARGE);
                }
            }
            Ok(None) => break,
            Err(_) => return Err(MALFORMED_JSON),
        }
    }
    let content_type = session
        .req_header()
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let parsed = parse(content_type, &body)?;
    check_schema(operation_id, parsed.as_ref())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bodies_are_checked_against_their_operations_schema() {
        assert!(check_schema("sendArm", Some(&json!({"command": "ARM", "ignoreProblems": true}))).is_ok());
        let refused =
            check_schema("sendArm", Some(&json!({"command": "EXPLODE", "ignoreProblems": true}))).expect_err("enum");
        assert_eq!((refused.status, refused.code), (422, "invalid_command"));
        assert!(refused.message.contains("ARM, DISARM"), "{}", refused.message);
        assert_eq!(check_schema("sendArm", None).err().map(|a| a.status), Some(422));
        assert!(
            check_schema("sendPanic", None).is_ok(),
            "a panic may come without a body"
        );
        assert!(
            check_schema("cancelSearch", None).is_ok(),
            "no schema, nothing to check"
        );
    }

    #[test]
    fn bodies_must_be_json_with_a_json_content_type() {
        assert!(
            parse(Some("application/json; charset=utf-8"), br#"{"a":1}"#)
                .expect("json")
                .is_some()
        );
        assert!(parse(None, b"").expect("empty").is_none());
        assert_eq!(
            parse(Some("text/plain"), b"{}").err().map(|a| a.code),
            Some("body_not_json")
        );
        assert_eq!(
            parse(Some("application/json"), b"{nope").err().map(|a| a.code),
            Some("malformed_json")
        );
    }
}
