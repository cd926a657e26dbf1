//! What the simulator saw, for `/_sim/stats`: counters, per-operation and per-status counts, and the
//! last requests with the headers tests check the proxy's rewriting against (the session token and
//! `Authorization` as received; of the API key only whether it matched).

use std::collections::{BTreeMap, VecDeque};

use asf_core::ajax_wire::headers;
use axum::http::{HeaderMap, Method, Uri, header};
use serde::Serialize;

use crate::limiter::LimiterView;

/// How many requests `last_requests` keeps.
pub const RECORDED: usize = 200;

/// Headers shown by value; every other header is listed by name in `other_headers`.
const SHOWN: [&str; 7] = [
    headers::API_KEY,
    headers::SESSION_TOKEN,
    "authorization",
    "x-forwarded-for",
    headers::REQUEST_ID,
    "host",
    "user-agent",
];

/// One request as the simulator received it.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedRequest {
    pub at_ms: u64,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub operation_id: Option<&'static str>,
    pub status: u16,
    pub api_key_ok: bool,
    pub session_token: Option<String>,
    pub authorization: Option<String>,
    pub x_forwarded_for: Option<String>,
    pub x_request_id: Option<String>,
    pub host: Option<String>,
    pub user_agent: Option<String>,
    /// Names (lowercase) of the other headers, sorted.
    pub other_headers: Vec<String>,
}

impl RecordedRequest {
    /// The request's line and headers; `operation_id`, `status` and `api_key_ok` are filled in
    /// as it is served.
    pub fn new(method: &Method, uri: &Uri, request: &HeaderMap, at_ms: u64) -> Self {
        let value = |name: &str| {
            request
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let mut other_headers: Vec<String> = request
            .keys()
            .map(|name| name.as_str())
            .filter(|name| !SHOWN.contains(name))
            .map(str::to_owned)
            .collect();
        // `keys()` yields each name once.
        other_headers.sort();
        Self {
            at_ms,
            method: method.to_string(),
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
            operation_id: None,
            status: 0,
            api_key_ok: false,
            session_token: value(headers::SESSION_TOKEN),
            authorization: value(header::AUTHORIZATION.as_str()),
            x_forwarded_for: value("x-forwarded-for"),
            x_request_id: value(headers::REQUEST_ID),
            host: value(header::HOST.as_str()),
            user_agent: value(header::USER_AGENT.as_str()),
            other_headers,
        }
    }
}

/// A counter a served request adds to, besides the per-operation and per-status counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tally {
    Nothing,
    /// Refused by the rate limit.
    OverLimit,
    /// Answered 429 by the `force_429` knob.
    Forced429,
    /// Answered 5xx by the `error_rate` knob.
    InjectedError,
    /// A successful login.
    Login,
    /// A successful refresh.
    Refresh,
}

/// The counters.
#[derive(Debug, Default)]
pub struct Stats {
    requests_total: u64,
    over_limit_total: u64,
    forced_429_total: u64,
    injected_errors_total: u64,
    login_total: u64,
    refresh_total: u64,
    by_operation: BTreeMap<&'static str, u64>,
    by_status: BTreeMap<u16, u64>,
    last_requests: VecDeque<RecordedRequest>,
}

/// `/_sim/stats`'s body.
#[derive(Debug, Serialize)]
pub struct StatsView<'s> {
    /// Calls with a valid API key (accepted or not).
    pub requests_total: u64,
    #[serde(flatten)]
    pub limiter: LimiterView,
    pub over_limit_total: u64,
    pub forced_429_total: u64,
    pub injected_errors_total: u64,
    pub login_total: u64,
    pub refresh_total: u64,
    /// Accepted calls by operation id.
    pub by_operation: &'s BTreeMap<&'static str, u64>,
    /// Answers by status code, for every recorded request.
    pub by_status: &'s BTreeMap<u16, u64>,
    /// Oldest first.
    pub last_requests: &'s VecDeque<RecordedRequest>,
}

impl Stats {
    /// Counts a served request. `accepted`: it passed the key check and the rate limit.
    pub fn record(&mut self, request: RecordedRequest, accepted: bool, tally: Tally) {
        if request.api_key_ok {
            self.requests_total += 1;
        }
        if let (true, Some(operation)) = (accepted, request.operation_id) {
            *self.by_operation.entry(operation).or_default() += 1;
        }
        *self.by_status.entry(request.status).or_default() += 1;
        let counter = match tally {
            Tally::Nothing => None,
            Tally::OverLimit => Some(&mut self.over_limit_total),
            Tally::Forced429 => Some(&mut self.forced_429_total),
            Tally::InjectedError => Some(&mut self.injected_errors_total),
            Tally::Login => Some(&mut self.login_total),
            Tally::Refresh => Some(&mut self.refresh_total),
        };
        if let Some(counter) = counter {
            *counter += 1;
        }
        if self.last_requests.len() == RECORDED {
            self.last_requests.pop_front();
        }
        self.last_requests.push_back(request);
    }

    pub fn view(&self, limiter: LimiterView) -> StatsView<'_> {
        StatsView {
            requests_total: self.requests_total,
            limiter,
            over_limit_total: self.over_limit_total,
            forced_429_total: self.forced_429_total,
            injected_errors_total: self.injected_errors_total,
            login_total: self.login_total,
            refresh_total: self.refresh_total,
            by_operation: &self.by_operation,
            by_status: &self.by_status,
            last_requests: &self.last_requests,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn request(key_ok: bool, status: u16) -> RecordedRequest {
        let mut headers = HeaderMap::new();
        headers.insert("x-session-token", HeaderValue::from_static("tok"));
        headers.insert("x-api-key", HeaderValue::from_static("the-key"));
        headers.insert("x-client-version", HeaderValue::from_static("1"));
        headers.insert("accept", HeaderValue::from_static("*/*"));
        let uri: Uri = "/api/user/U1/hubs?x=1".parse().expect("uri");
        let mut recorded = RecordedRequest::new(&Method::GET, &uri, &headers, 1);
        recorded.api_key_ok = key_ok;
        recorded.status = status;
        recorded.operation_id = Some("getHubBindings");
        recorded
    }

    #[test]
    fn a_recorded_request_shows_tokens_and_names_other_headers_but_never_the_key() {
        let recorded = request(true, 200);
        assert_eq!(recorded.session_token.as_deref(), Some("tok"));
        assert_eq!(recorded.path, "/api/user/U1/hubs");
        assert_eq!(recorded.query.as_deref(), Some("x=1"));
        assert_eq!(recorded.other_headers, ["accept", "x-client-version"]);
        let shown = serde_json::to_string(&recorded).expect("json");
        assert!(!shown.contains("the-key"), "{shown}");
    }

    #[test]
    fn only_accepted_calls_count_per_operation_and_only_the_last_ones_are_kept() {
        let mut stats = Stats::default();
        stats.record(request(false, 401), false, Tally::Nothing);
        stats.record(request(true, 429), false, Tally::OverLimit);
        for _ in 0..RECORDED {
            stats.record(request(true, 200), true, Tally::Nothing);
        }
        let view = stats.view(crate::limiter::Limiter::new(None, Default::default()).view());
        assert_eq!(view.requests_total, 1 + RECORDED as u64);
        assert_eq!(view.over_limit_total, 1);
        assert_eq!(view.by_operation.get("getHubBindings"), Some(&(RECORDED as u64)));
        assert_eq!(view.by_status.get(&401), Some(&1));
        assert_eq!(view.last_requests.len(), RECORDED);
        assert!(view.last_requests.iter().all(|r| r.status == 200));
    }
}
