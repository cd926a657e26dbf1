//! The schemas of command bodies, taken from Ajax's spec by `tools/gen_catalogue.py`
//! (`core/catalogue/command_bodies.json`), and a checker for the part of JSON Schema they use:
//! `type`, `enum`, `required`, `properties` and `items`. Properties the schema does not declare are
//! allowed (clients newer than the spec must keep working); everything declared is checked.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

const BUILTIN: &str = include_str!("../catalogue/command_bodies.json");

/// A schema, reduced to the keywords checked.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[serde(rename = "enum")]
    pub allowed: Option<Vec<Value>>,
    #[serde(default)]
    pub required: Vec<String>,
    #[serde(default)]
    pub properties: HashMap<String, Schema>,
    pub items: Option<Box<Schema>>,
}

/// The body of one operation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodySpec {
    /// The spec marks the body required.
    pub required: bool,
    pub schema: Schema,
}

/// Where a body departs from its schema, in words a client developer can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {problem}")]
pub struct Violation {
    /// JSON path of the offending value, e.g. `body.command`.
    pub at: String,
    pub problem: String,
}

/// Longest list of allowed values spelled out in a violation.
const MAX_LISTED: usize = 8;

impl Schema {
    /// Checks `value` against the schema; the first violation found.
    pub fn check(&self, value: &Value) -> Result<(), Violation> {
        self.check_at(value, "body")
    }

    fn check_at(&self, value: &Value, at: &str) -> Result<(), Violation> {
        let violation = |problem: String| Violation {
            at: at.to_owned(),
            problem,
        };
        if let Some(kind) = &self.kind
            && !has_type(value, kind)
        {
            return Err(violation(format!("must be {}", article(kind))));
        }
        if let Some(allowed) = &self.allowed
            && !allowed.contains(value)
        {
            let mut listed: Vec<String> = allowed.iter().take(MAX_LISTED).map(plain).collect();
            if allowed.len() > MAX_LISTED {
                listed.push(format!("... ({} values)", allowed.len()));
            }
            return Err(violation(format!("must be one of {}", listed.join(", "))));
        }
        if let Value::Object(fields) = value {
            for name in &self.required {
                if !fields.contains_key(name) {
                    return Err(violation(format!("{name} is required")));
                }
            }
            let mut names: Vec<&String> = fields.keys().filter(|k| self.properties.contains_key(*k)).collect();
            names.sort();
            for name in names {
                if let (Some(schema), Some(field)) = (self.properties.get(name), fields.get(name)) {
                    schema.check_at(field, &format!("{at}.{name}"))?;
                }
            }
        }
        if let (Some(items), Value::Array(values)) = (&self.items, value) {
            for (index, item) in values.iter().enumerate() {
                items.check_at(item, &format!("{at}[{index}]"))?;
            }
        }
        Ok(())
    }
}

fn has_type(value: &Value, kind: &str) -> bool {
    match kind {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        _ => true,
    }
}

fn article(kind: &str) -> String {
    match kind {
        "object" | "array" | "integer" => format!("an {kind}"),
        _ => format!("a {kind}"),
    }
}

fn plain(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_owned)
}

/// Every command body the spec describes, by operation id.
pub fn builtin() -> &'static HashMap<String, BodySpec> {
    static BODIES: OnceLock<HashMap<String, BodySpec>> = OnceLock::new();
    BODIES.get_or_init(|| serde_json::from_str(BUILTIN).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(operation: &str, body: Value) -> Result<(), String> {
        builtin()[operation].schema.check(&body).map_err(|v| v.to_string())
    }

    #[test]
    fn the_generated_file_parses_and_covers_the_commands() {
        let parsed: HashMap<String, BodySpec> = serde_json::from_str(BUILTIN).expect("command_bodies.json");
        for operation in [
            "sendArm",
            "sendArmForGroup",
            "sendDeviceCommand",
            "sendPanic",
            "muteFireDetectors",
        ] {
            assert!(parsed.contains_key(operation), "{operation}");
        }
    }

    #[test]
    fn arming_bodies_follow_the_spec() {
        assert_eq!(
            check("sendArm", json!({"command": "ARM", "ignoreProblems": true})),
            Ok(())
        );
        assert_eq!(
            check("sendArm", json!({"command": "EXPLODE", "ignoreProblems": true})),
            Err("body.command: must be one of ARM, DISARM, NIGHT_MODE_ON, NIGHT_MODE_OFF".into())
        );
        assert_eq!(
            check("sendArm", json!({"command": "ARM", "ignoreProblems": "yes"})),
            Err("body.ignoreProblems: must be a boolean".into())
        );
        assert_eq!(
            check("sendArm", json!({"ignoreProblems": true})),
            Err("body: command is required".into())
        );
        assert_eq!(check("sendArm", json!([1])), Err("body: must be an object".into()));
        assert_eq!(
            check(
                "sendArmForGroup",
                json!({"command": "NIGHT_MODE_ON", "ignoreProblems": true})
            ),
            Err("body.command: must be one of ARM, DISARM".into())
        );
    }

    #[test]
    fn unknown_fields_pass_and_long_enums_are_summarised() {
        assert_eq!(
            check(
                "sendArm",
                json!({"command": "ARM", "ignoreProblems": true, "newField": 1})
            ),
            Ok(())
        );
        let message = check("sendDeviceCommand", json!({"command": "NOPE", "deviceType": "Relay"})).expect_err("enum");
        assert!(
            message.starts_with("body.command: must be one of CONNECTION_TEST_START"),
            "{message}"
        );
        assert!(message.contains("values)"), "{message}");
    }

    #[test]
    fn a_panic_is_not_refused_for_the_specs_misplaced_required_fields() {
        assert_eq!(check("sendPanic", json!({})), Ok(()));
        assert_eq!(
            check(
                "sendPanic",
                json!({"location": {"latitude": 50.45, "longitude": 30.52, "timestamp": 1}})
            ),
            Ok(())
        );
        assert_eq!(
            check("sendPanic", json!({"location": {"latitude": "north"}})),
            Err("body.location.latitude: must be a number".into())
        );
    }
}
