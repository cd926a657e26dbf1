//! The shield: the first, cheapest look at a request, before authentication and before any Redis
//! call. It normalises the path (one decoding pass; encoded slashes, dot segments, double encoding,
//! NUL and control characters refused), matches it against the route catalogue, and refuses what
//! the gateway does not serve. Its answers are never 401 or 403.

use asf_core::catalogue::{Catalogue, Miss, Route, RouteClass};
use pingora::http::RequestHeader;

use crate::respond::LocalAnswer;

/// Longest request path accepted.
const MAX_PATH_LEN: usize = 2048;

/// A request that passed the shield.
#[derive(Debug)]
pub struct Admitted {
    pub route: &'static Route,
    /// The path below `/api` as matched, e.g. `/user/A1/hubs`.
    pub api_path: String,
    /// The path to forward (as received, less the base path; checked unambiguous above), with query.
    pub forward_path: String,
    /// The Ajax user id the path belongs to, when it has one.
    pub owner: Option<String>,
}

pub const BAD_PATH: LocalAnswer = LocalAnswer::new(400, "bad_path", "Malformed request path");
pub const UNKNOWN_ROUTE: LocalAnswer = LocalAnswer::new(404, "unknown_route", "Unknown API route");
/// Anything outside `{base}/api/`: scanner probes (`/.env`, `/wp-admin`, `/.git/config`, ...) end
/// here, told apart from mistyped API routes by their own refusal reason. Matching is by the
/// catalogue, never by substrings, so a real route whose ids look like a probe still passes.
pub const OUTSIDE_API: LocalAnswer = LocalAnswer::new(404, "outside_api", "Not found");
pub const COMPANY_ROUTE: LocalAnswer = LocalAnswer::new(
    404,
    "company_mode_not_served",
    "Company-mode routes are not served by this gateway",
);
pub const PUBLIC_ROUTE: LocalAnswer = LocalAnswer::new(
    404,
    "not_served",
    "This operation is not served by this gateway; use the Ajax app",
);
pub const METHOD_NOT_ALLOWED: LocalAnswer =
    LocalAnswer::new(405, "method_not_allowed", "Method not allowed for this route");
pub const BODY_TOO_LARGE: LocalAnswer = LocalAnswer::new(413, "body_too_large", "Request body too large");
pub const HEADERS_TOO_LARGE: LocalAnswer = LocalAnswer::new(400, "headers_too_large", "Too many or too large headers");

/// Refuses requests with more than `max_count` headers or more than `max_bytes` of them.
pub fn check_headers(req: &RequestHeader, max_count: usize, max_bytes: usize) -> Result<(), LocalAnswer> {
    if req.headers.len() > max_count {
        return Err(HEADERS_TOO_LARGE);
    }
    let bytes: usize = req
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if bytes > max_bytes {
        Err(HEADERS_TOO_LARGE)
    } else {
        Ok(())
    }
}

/// Checks the request line and size against the catalogue.
pub fn inspect(
    req: &RequestHeader,
    base_path: &str,
    catalogue: &'static Catalogue,
    max_body_bytes: usize,
) -> Result<Admitted, LocalAnswer> {
    let raw = req.uri.path();
    if raw.len() > MAX_PATH_LEN {
        return Err(BAD_PATH);
    }
    let decoded = normalise(raw)?;
    let below_base = decoded.strip_prefix(base_path).ok_or(OUTSIDE_API)?;
    let api_path = below_base
        .strip_prefix("/api")
        .filter(|p| p.starts_with('/'))
        .ok_or(OUTSIDE_API)?;
    let raw_below_base = raw.strip_prefix(base_path).ok_or(OUTSIDE_API)?;
    let forward_path = match req.uri.query() {
        Some(query) => format!("{raw_below_base}?{query}"),
        None => raw_below_base.to_owned(),
    };
    if content_length(req).is_some_and(|len| len > max_body_bytes) {
        return Err(BODY_TOO_LARGE);
    }
    let found = catalogue
        .lookup(req.method.as_str(), api_path)
        .map_err(|miss| match miss {
            Miss::MethodNotAllowed => METHOD_NOT_ALLOWED,
            Miss::UnknownPath if api_path.starts_with("/company/") => COMPANY_ROUTE,
            Miss::UnknownPath => UNKNOWN_ROUTE,
        })?;
    if found.route.class == RouteClass::Public {
        return Err(PUBLIC_ROUTE);
    }
    Ok(Admitted {
        route: found.route,
        owner: found.owner().map(str::to_owned),
        api_path: api_path.to_owned(),
        forward_path,
    })
}

fn content_length(req: &RequestHeader) -> Option<usize> {
    req.headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Decodes percent-escapes once and refuses every ambiguous form (see
/// [`asf_core::request_path::normalise`]).
pub fn normalise(raw: &str) -> Result<String, LocalAnswer> {
    asf_core::request_path::normalise(raw).map_err(|_| BAD_PATH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, path: &str) -> RequestHeader {
        RequestHeader::build(method, path.as_bytes(), None).expect("request")
    }

    fn inspect_path(method: &str, path: &str) -> Result<Admitted, LocalAnswer> {
        inspect(&request(method, path), "", Catalogue::builtin(), 1024)
    }

    #[test]
    fn catalogued_routes_pass_with_their_owner() {
        let admitted = inspect_path("GET", "/api/user/A1/hubs/H1/devices").expect("admitted");
        assert_eq!(admitted.route.operation_id, "getDevices");
        assert_eq!(admitted.owner.as_deref(), Some("A1"));
        assert_eq!(admitted.api_path, "/user/A1/hubs/H1/devices");
        assert_eq!(admitted.forward_path, "/api/user/A1/hubs/H1/devices");
        let with_query = inspect_path("GET", "/api/user/A1/hubs/H1/logs?page=2").expect("admitted");
        assert_eq!(with_query.forward_path, "/api/user/A1/hubs/H1/logs?page=2");
    }

    #[test]
    fn base_path_prefix_is_honoured() {
        let admitted = inspect(
            &request("GET", "/ajax/api/user/A1/hubs"),
            "/ajax",
            Catalogue::builtin(),
            1024,
        );
        assert_eq!(admitted.expect("admitted").route.operation_id, "getHubBindings");
        let outside = inspect(
            &request("GET", "/api/user/A1/hubs"),
            "/ajax",
            Catalogue::builtin(),
            1024,
        );
        assert_eq!(outside.err().map(|a| a.code), Some("outside_api"));
    }

    #[test]
    fn unknown_company_public_and_wrong_method_routes_are_told_apart() {
        let code = |m: &str, p: &str| inspect_path(m, p).err().map(|a| (a.status, a.code));
        assert_eq!(code("GET", "/api/user/A1/nothing"), Some((404, "unknown_route")));
        assert_eq!(code("GET", "/.env"), Some((404, "outside_api")));
        assert_eq!(code("GET", "/wp-admin/"), Some((404, "outside_api")));
        assert_eq!(code("GET", "/.git/config"), Some((404, "outside_api")));
        assert_eq!(code("GET", "/apiary"), Some((404, "outside_api")));
        assert_eq!(
            code("GET", "/api/company/C1/hubs"),
            Some((404, "company_mode_not_served"))
        );
        assert_eq!(code("POST", "/api/user"), Some((404, "not_served")));
        assert_eq!(code("DELETE", "/api/login"), Some((405, "method_not_allowed")));
    }

    #[test]
    fn ambiguous_encodings_and_dot_segments_are_refused() {
        for bad in [
            "/api/user/A1%2Fhubs",
            "/api/user/A1%252Fhubs",
            "/api/user/A1/hubs/../hubs",
            "/api/user/./A1/hubs",
            "/api/user/A1%00/hubs",
            "/api/user/A1%5Chubs",
            "/api//user/A1/hubs",
            "/api/user/A1/hubs%zz",
        ] {
            assert_eq!(normalise(bad).err().map(|a| a.code), Some("bad_path"), "{bad}");
        }
        assert_eq!(normalise("/api/user/A%31/hubs").expect("decoded"), "/api/user/A1/hubs");
    }

    #[test]
    fn oversized_bodies_and_paths_are_refused() {
        let mut req = request("PUT", "/api/user/A1/hubs/H1");
        req.insert_header("content-length", "4096").expect("header");
        let refused = inspect(&req, "", Catalogue::builtin(), 1024);
        assert_eq!(refused.err().map(|a| a.status), Some(413));
        let long = format!("/api/user/{}/hubs", "A".repeat(3000));
        assert_eq!(inspect_path("GET", &long).err().map(|a| a.status), Some(400));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever arrives, normalisation never panics, and what it accepts is unambiguous.
        #[test]
        fn normalised_paths_are_unambiguous(raw in "/[ -~]{0,80}") {
            if let Ok(path) = normalise(&raw) {
                prop_assert!(!path.contains("//"));
                prop_assert!(!path.split('/').any(|s| s == "." || s == ".."));
                prop_assert!(!path.chars().any(|c| c.is_control() || c == '\\'));
            }
        }

        /// Every catalogue route, filled with arbitrary ids, matches itself (and nothing else).
        #[test]
        fn every_route_matches_its_own_paths(index in 0usize..214, ids in proptest::collection::vec("[0-9A-F]{8}", 8)) {
            let catalogue = Catalogue::builtin();
            let route = &catalogue.routes()[index % catalogue.routes().len()];
            let mut values = ids.iter();
            let path: String = route
                .template
                .split('/')
                .map(|segment| if segment.starts_with('{') { values.next().map_or("X", String::as_str) } else { segment })
                .collect::<Vec<_>>()
                .join("/");
            let found = catalogue.lookup(&route.method, &path).expect("matches");
            prop_assert_eq!(&found.route.template, &route.template);
            prop_assert_eq!(found.owner(), route.owner.map(|i| ids[i].as_str()));
        }
    }
}
