//! Fuzzes the command-body checker: any JSON against every operation's schema, no panic, and a
//! refusal always names where the body went wrong.
#![no_main]

use asf_core::body_schema;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    for spec in body_schema::builtin().values() {
        if let Err(violation) = spec.schema.check(&value) {
            assert!(violation.at.starts_with("body"), "{violation}");
            assert!(!violation.problem.is_empty());
        }
    }
});
