//! Recognising Ajax's pushback: a 429, a `Retry-After` on an error, or (as operators report) a 200
//! whose small body says the limit was exceeded. Each pauses the whole budget, every instance.

use std::time::Duration;

use pingora::http::ResponseHeader;

use crate::throttle::DEFAULT_PUSHBACK;

/// Longest pause taken from a `Retry-After` (a bogus huge value must not stop the gateway for days).
const MAX_PUSHBACK: Duration = Duration::from_secs(15 * 60);
/// Bodies up to this size are looked at for the "limit exceeded" message.
pub const LIMIT_BODY_MAX_BYTES: usize = 2048;
const LIMIT_MESSAGE: &[u8] = b"exceeded the limit";

/// Seconds of a `Retry-After` in its delta-seconds form (HTTP dates are treated as absent).
fn retry_after(resp: &ResponseHeader) -> Option<Duration> {
    let value = resp.headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// How long Ajax asked the budget to pause, if this response header is a pushback.
pub fn pause_asked(resp: &ResponseHeader) -> Option<Duration> {
    let status = resp.status.as_u16();
    let asked = match (status, retry_after(resp)) {
        (429, after) => Some(after.unwrap_or(DEFAULT_PUSHBACK)),
        (500..=599, Some(after)) => Some(after),
        _ => None,
    }?;
    Some(asked.clamp(Duration::from_secs(1), MAX_PUSHBACK))
}

/// Whether a successful answer is small enough to be the "limit exceeded" message in disguise.
pub fn may_be_limit_body(resp: &ResponseHeader) -> bool {
    resp.status.is_success()
        && resp
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<usize>().ok())
            .is_some_and(|len| len <= LIMIT_BODY_MAX_BYTES)
}

/// Whether a body says the limit was exceeded.
pub fn body_says_limit(body: &[u8]) -> bool {
    body.len() <= LIMIT_BODY_MAX_BYTES
        && body
            .windows(LIMIT_MESSAGE.len())
            .any(|w| w.eq_ignore_ascii_case(LIMIT_MESSAGE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)]) -> ResponseHeader {
        let mut resp = ResponseHeader::build(status, None).expect("resp");
        for (name, value) in headers {
            resp.insert_header(name.to_string(), *value).expect("header");
        }
        resp
    }

    #[test]
    fn throttling_answers_ask_for_a_pause() {
        assert_eq!(
            pause_asked(&response(429, &[("retry-after", "7")])),
            Some(Duration::from_secs(7))
        );
        assert_eq!(pause_asked(&response(429, &[])), Some(DEFAULT_PUSHBACK));
        assert_eq!(
            pause_asked(&response(503, &[("retry-after", "3")])),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            pause_asked(&response(429, &[("retry-after", "99999999")])),
            Some(MAX_PUSHBACK)
        );
        assert_eq!(pause_asked(&response(503, &[])), None);
        assert_eq!(pause_asked(&response(200, &[("retry-after", "3")])), None);
    }

    #[test]
    fn the_limit_message_is_found_in_small_bodies_only() {
        assert!(body_says_limit(
            br#"{"message":"You have exceeded the limit of requests"}"#
        ));
        assert!(!body_says_limit(br#"[{"hubId":"0001A001"}]"#));
        assert!(may_be_limit_body(&response(200, &[("content-length", "60")])));
        assert!(!may_be_limit_body(&response(200, &[("content-length", "60000")])));
        assert!(!may_be_limit_body(&response(404, &[("content-length", "60")])));
    }
}
