//! Finds the access token in a request: `X-Session-Token` (what Ajax clients send) or
//! `Authorization: Bearer`. Two different tokens in one request are refused.

use http::HeaderMap;

/// Why no usable token was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialError {
    Missing,
    /// Both headers carry tokens, and they differ.
    Ambiguous,
    /// A header is present but not readable as a token.
    Malformed,
}

/// The request's access token.
pub fn find_token(headers: &HeaderMap) -> Result<&str, CredentialError> {
    let session = match headers.get(asf_core::ajax_wire::headers::SESSION_TOKEN) {
        Some(value) => Some(value.to_str().map_err(|_| CredentialError::Malformed)?.trim()),
        None => None,
    };
    let bearer = match headers.get(http::header::AUTHORIZATION) {
        Some(value) => {
            let text = value.to_str().map_err(|_| CredentialError::Malformed)?.trim();
            let (scheme, token) = text.split_once(' ').ok_or(CredentialError::Malformed)?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(CredentialError::Malformed);
            }
            Some(token.trim())
        }
        None => None,
    };
    match (session, bearer) {
        (Some(a), Some(b)) if a != b => Err(CredentialError::Ambiguous),
        (Some(token), _) | (None, Some(token)) if !token.is_empty() => Ok(token),
        (Some(_), _) | (None, Some(_)) => Err(CredentialError::Malformed),
        (None, None) => Err(CredentialError::Missing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, http::HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn token_is_read_from_either_header() {
        assert_eq!(find_token(&headers(&[("x-session-token", "abc")])), Ok("abc"));
        assert_eq!(find_token(&headers(&[("authorization", "Bearer abc")])), Ok("abc"));
        assert_eq!(find_token(&headers(&[("authorization", "bearer  abc ")])), Ok("abc"));
    }

    #[test]
    fn same_token_in_both_headers_is_accepted_and_different_ones_refused() {
        let same = headers(&[("x-session-token", "abc"), ("authorization", "Bearer abc")]);
        assert_eq!(find_token(&same), Ok("abc"));
        let different = headers(&[("x-session-token", "abc"), ("authorization", "Bearer xyz")]);
        assert_eq!(find_token(&different), Err(CredentialError::Ambiguous));
    }

    #[test]
    fn missing_empty_and_foreign_schemes_are_refused() {
        assert_eq!(find_token(&HeaderMap::new()), Err(CredentialError::Missing));
        assert_eq!(
            find_token(&headers(&[("x-session-token", "")])),
            Err(CredentialError::Malformed)
        );
        assert_eq!(
            find_token(&headers(&[("authorization", "Basic abc")])),
            Err(CredentialError::Malformed)
        );
    }
}
