//! Command bodies checked before they can cost anything: a command (arming, panic, device command)
//! must carry well-formed JSON with a JSON `Content-Type`, and the arming commands' `command` must be
//! one of the spec's values; anything else is answered 400/422 and never reaches Ajax or the budget.
//! The body is read into Pingora's retry buffer, from which it is then sent upstream unchanged.

use pingora::proxy::Session;
use serde_json::Value;

use crate::respond::LocalAnswer;

/// The most a command body may hold (Pingora's retry buffer; commands are a few dozen bytes).
pub const MAX_COMMAND_BODY: usize = 64 * 1024;

pub const NOT_JSON: LocalAnswer = LocalAnswer::new(400, "body_not_json", "The body must be JSON (application/json)");
pub const MALFORMED_JSON: LocalAnswer = LocalAnswer::new(400, "malformed_json", "The body is not well-formed JSON");
pub const TOO_LARGE: LocalAnswer = LocalAnswer::new(413, "body_too_large", "Request body too large");
pub const BAD_ARMING: LocalAnswer = LocalAnswer::new(
    422,
    "invalid_command",
    "command must be one of ARM, DISARM, NIGHT_MODE_ON, NIGHT_MODE_OFF, and ignoreProblems a boolean",
);

/// The arming commands of the spec's `ArmCommand` schema.
const ARMING_COMMANDS: [&str; 4] = ["ARM", "DISARM", "NIGHT_MODE_ON", "NIGHT_MODE_OFF"];

/// Checks an arming body (`ArmCommand`: `command` from the enum, `ignoreProblems` a boolean).
pub fn check_arming(body: &Value) -> Result<(), LocalAnswer> {
    let command_ok = body
        .get("command")
        .and_then(Value::as_str)
        .is_some_and(|c| ARMING_COMMANDS.contains(&c));
    let flag_ok = body.get("ignoreProblems").is_none_or(Value::is_boolean);
    if command_ok && flag_ok { Ok(()) } else { Err(BAD_ARMING) }
}

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
    if matches!(operation_id, "sendArm" | "sendArmForGroup") {
        check_arming(parsed.as_ref().unwrap_or(&Value::Null))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn arming_bodies_follow_the_spec_enum() {
        assert!(check_arming(&json!({"command": "ARM", "ignoreProblems": true})).is_ok());
        assert!(check_arming(&json!({"command": "NIGHT_MODE_OFF"})).is_ok());
        assert_eq!(
            check_arming(&json!({"command": "EXPLODE"})).err().map(|a| a.status),
            Some(422)
        );
        assert_eq!(
            check_arming(&json!({"command": "ARM", "ignoreProblems": "yes"}))
                .err()
                .map(|a| a.status),
            Some(422)
        );
        assert_eq!(check_arming(&Value::Null).err().map(|a| a.status), Some(422));
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
