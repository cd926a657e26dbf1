//! Fuzzes path normalisation and route matching: whatever arrives, nothing panics; an accepted
//! path is unambiguous and a fixed point of normalisation; a matched route's owner is one segment.
#![no_main]

use asf_core::catalogue::Catalogue;
use asf_core::request_path::normalise;
use libfuzzer_sys::fuzz_target;

const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "PATCH"];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(raw) = std::str::from_utf8(rest) else {
        return;
    };
    let Ok(path) = normalise(raw) else {
        return;
    };
    assert!(!path.contains("//"), "{raw:?} -> {path:?}");
    assert!(!path.split('/').any(|s| s == "." || s == ".."), "{raw:?} -> {path:?}");
    assert!(!path.chars().any(|c| c.is_control() || c == '\\' || c == '%'), "{raw:?} -> {path:?}");
    assert_eq!(normalise(&path).as_deref(), Ok(path.as_str()), "not a fixed point: {raw:?}");
    let method = METHODS[usize::from(selector) % METHODS.len()];
    if let Some(api_path) = path.strip_prefix("/api")
        && let Ok(found) = Catalogue::builtin().lookup(method, api_path)
        && let Some(owner) = found.owner()
    {
        assert!(!owner.is_empty() && !owner.contains('/'), "{raw:?}: owner {owner:?}");
    }
});
