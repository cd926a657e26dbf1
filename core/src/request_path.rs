//! Request paths as the gateway understands them: percent-escapes decoded exactly once, and every
//! form whose meaning could differ between us and Ajax (encoded slashes or backslashes, a second
//! layer of encoding, dot segments, empty segments, NUL and control characters, invalid UTF-8)
//! refused. Routes are matched on the result only.

/// The path is ambiguous or malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ambiguous or malformed request path")]
pub struct AmbiguousPath;

/// Decodes percent-escapes once and refuses every ambiguous form.
pub fn normalise(raw: &str) -> Result<String, AmbiguousPath> {
    if !raw.starts_with('/') {
        return Err(AmbiguousPath);
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(AmbiguousPath)?;
            let text = std::str::from_utf8(hex).map_err(|_| AmbiguousPath)?;
            let value = u8::from_str_radix(text, 16).map_err(|_| AmbiguousPath)?;
            // Encoded separators and a second layer of encoding change what the path means.
            if matches!(value, b'/' | b'\\' | b'%') {
                return Err(AmbiguousPath);
            }
            out.push(value);
            i += 3;
        } else {
            out.push(byte);
            i += 1;
        }
    }
    let decoded = String::from_utf8(out).map_err(|_| AmbiguousPath)?;
    if decoded.chars().any(|c| c.is_control() || c == '\\') {
        return Err(AmbiguousPath);
    }
    if decoded.split('/').any(|segment| segment == "." || segment == "..") || decoded.contains("//") {
        return Err(AmbiguousPath);
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_decoding_pass_and_nothing_ambiguous() {
        assert_eq!(normalise("/api/user/A%31/hubs"), Ok("/api/user/A1/hubs".to_owned()));
        for bad in [
            "api", "/a%2Fb", "/a%252F", "/a/../b", "/a/./b", "/a//b", "/a%00", "/a%5C", "/a%zz", "/a%", "/a%ff",
        ] {
            assert_eq!(normalise(bad), Err(AmbiguousPath), "{bad}");
        }
    }

    #[test]
    fn what_is_accepted_is_a_fixed_point() {
        for raw in ["/api/user/A%41/hubs", "/x%20y", "/%C3%A9t%C3%A9"] {
            let once = normalise(raw).expect("accepted");
            assert_eq!(normalise(&once).as_ref(), Ok(&once), "{raw}");
        }
    }
}
