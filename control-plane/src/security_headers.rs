//! Security headers on every control-plane answer: no MIME sniffing, no framing, a strict CSP (no
//! `unsafe-inline`), no referrer, no caching of API answers, and HSTS when the service is reached
//! over TLS (`ASF_HSTS=1`, set by the operator whose TLS terminator fronts it).

use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;

const FIXED: [(HeaderName, &str); 5] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::CACHE_CONTROL, "no-store"),
];

/// Adds the headers to `response` (keeping a `Cache-Control` a handler set itself).
pub fn apply(mut response: Response, hsts: bool) -> Response {
    let headers = response.headers_mut();
    for (name, value) in FIXED {
        if name == header::CACHE_CONTROL && headers.contains_key(&name) {
            continue;
        }
        headers.insert(name, HeaderValue::from_static(value));
    }
    if hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;

    use super::*;

    #[test]
    fn answers_carry_the_security_headers() {
        let response = apply("ok".into_response(), false);
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert_eq!(response.headers()["x-frame-options"], "DENY");
        assert!(
            !response.headers()["content-security-policy"]
                .to_str()
                .expect("csp")
                .contains("unsafe-inline")
        );
        assert!(response.headers().get("strict-transport-security").is_none());
        assert!(
            apply("ok".into_response(), true)
                .headers()
                .contains_key("strict-transport-security")
        );
    }
}
