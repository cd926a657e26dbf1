//! Header rewriting on the way to an upstream and back. Toward Ajax: the client's credentials,
//! cookies, hop-by-hop and forwarding headers are stripped; the company key, the user's real Ajax
//! session, `Host`, `X-Forwarded-For` and the request id are set. Toward the control plane the
//! client's token stays (refresh and logout need it) but the company key never goes.
//! On the way back, headers that expose upstream internals are removed.

use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;

use asf_core::ajax_wire::headers::{API_KEY, COMPANY_TOKEN, REQUEST_ID, SESSION_TOKEN};

/// Hop-by-hop headers (RFC 9110 §7.6.1) and their common non-standard kin.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

/// Client headers that must never reach any upstream as sent.
const CLIENT_ONLY: &[&str] = &[
    API_KEY,
    COMPANY_TOKEN,
    "cookie",
    "x-user-id",
    "x-client-version",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-real-ip",
    REQUEST_ID,
];

/// Upstream response headers that describe the upstream's internals.
const INTERNAL_RESPONSE: &[&str] = &[
    "server",
    "x-powered-by",
    "via",
    "x-runtime",
    "x-envoy-upstream-service-time",
];

/// What the upstream request must carry besides the client's own headers.
pub struct Outbound<'a> {
    pub host: &'a str,
    pub path_and_query: &'a str,
    pub request_id: &'a str,
    pub client_ip: Option<String>,
}

/// Strips what no upstream may see and sets the common headers.
fn common(req: &mut RequestHeader, out: &Outbound<'_>) -> Result<()> {
    let named_by_connection: Vec<String> = req
        .headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect();
    for name in named_by_connection
        .iter()
        .map(String::as_str)
        .chain(HOP_BY_HOP.iter().copied())
        .chain(CLIENT_ONLY.iter().copied())
    {
        // Most requests carry none of these: look before removing (the lookup allocates nothing).
        if req.headers.contains_key(name) {
            req.remove_header(name);
        }
    }
    let uri = out
        .path_and_query
        .parse::<http::Uri>()
        .map_err(|_| Error::explain(ErrorType::InternalError, "rewritten path is not a URI"))?;
    req.set_uri(uri);
    req.insert_header(http::header::HOST, out.host)?;
    req.insert_header(REQUEST_ID, out.request_id)?;
    if let Some(ip) = &out.client_ip {
        req.insert_header("x-forwarded-for", ip.as_str())?;
    }
    Ok(())
}

/// Prepares a request for Ajax: the company key and the user's Ajax session replace the client's
/// credentials.
pub fn toward_ajax(req: &mut RequestHeader, out: &Outbound<'_>, api_key: &str, ajax_session: &str) -> Result<()> {
    common(req, out)?;
    req.remove_header(&http::header::AUTHORIZATION);
    req.insert_header(API_KEY, api_key)?;
    req.insert_header(SESSION_TOKEN, ajax_session)?;
    Ok(())
}

/// Prepares a request for the control plane (login, refresh, logout). The client's token stays:
/// refresh and logout are authenticated there.
pub fn toward_control_plane(req: &mut RequestHeader, out: &Outbound<'_>) -> Result<()> {
    common(req, out)
}

/// Removes upstream internals from a response and adds the request id.
pub fn response(resp: &mut ResponseHeader, request_id: &str) -> Result<()> {
    for name in INTERNAL_RESPONSE {
        resp.remove_header(*name);
    }
    for name in HOP_BY_HOP.iter().filter(|n| **n != "connection" && **n != "keep-alive") {
        resp.remove_header(*name);
    }
    resp.insert_header(REQUEST_ID, request_id)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_request() -> RequestHeader {
        let mut req = RequestHeader::build("GET", b"/ajax/api/user/A1/hubs?x=1", None).expect("req");
        for (name, value) in [
            ("authorization", "Bearer our-jwt"),
            ("x-session-token", "our-jwt"),
            ("x-api-key", "client-guess"),
            ("x-company-token", "ct"),
            ("cookie", "a=b"),
            ("x-user-id", "A1"),
            ("x-client-version", "1.2"),
            ("x-forwarded-for", "6.6.6.6"),
            ("x-request-id", "client-chosen"),
            ("connection", "keep-alive, x-secret-hop"),
            ("x-secret-hop", "1"),
            ("accept-language", "en"),
        ] {
            req.append_header(name, value).expect("header");
        }
        req
    }

    fn outbound() -> Outbound<'static> {
        Outbound {
            host: "api.ajax.systems",
            path_and_query: "/api/user/A1/hubs?x=1",
            request_id: "rid-1",
            client_ip: Some("10.0.0.7".into()),
        }
    }

    #[test]
    fn ajax_request_carries_company_key_and_real_session_only() {
        let mut req = client_request();
        toward_ajax(&mut req, &outbound(), "company-key", "ajax-session").expect("rewrite");
        let get = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(get("x-api-key").as_deref(), Some("company-key"));
        assert_eq!(get("x-session-token").as_deref(), Some("ajax-session"));
        assert_eq!(get("host").as_deref(), Some("api.ajax.systems"));
        assert_eq!(get("x-forwarded-for").as_deref(), Some("10.0.0.7"));
        assert_eq!(get("x-request-id").as_deref(), Some("rid-1"));
        assert_eq!(get("accept-language").as_deref(), Some("en"));
        for gone in [
            "authorization",
            "x-company-token",
            "cookie",
            "x-user-id",
            "x-client-version",
            "x-secret-hop",
            "connection",
        ] {
            assert_eq!(get(gone), None, "{gone} must be stripped");
        }
        assert_eq!(req.uri.to_string(), "/api/user/A1/hubs?x=1");
    }

    #[test]
    fn control_plane_request_keeps_the_client_token_but_never_the_key() {
        let mut req = client_request();
        toward_control_plane(&mut req, &outbound()).expect("rewrite");
        assert!(req.headers.get("x-session-token").is_some());
        assert!(req.headers.get("authorization").is_some());
        assert!(req.headers.get("x-api-key").is_none());
        assert_eq!(
            req.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()),
            Some("10.0.0.7")
        );
    }

    #[test]
    fn response_loses_upstream_internals_and_gains_the_request_id() {
        let mut resp = ResponseHeader::build(200, None).expect("resp");
        resp.append_header("server", "nginx/1.2").expect("h");
        resp.append_header("x-powered-by", "spring").expect("h");
        resp.append_header("content-type", "application/json").expect("h");
        response(&mut resp, "rid-9").expect("rewrite");
        assert!(resp.headers.get("server").is_none() && resp.headers.get("x-powered-by").is_none());
        assert_eq!(
            resp.headers.get("x-request-id").and_then(|v| v.to_str().ok()),
            Some("rid-9")
        );
        assert!(resp.headers.get("content-type").is_some());
    }
}
