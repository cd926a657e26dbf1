//! The simulator's checked settings, and the parsers for the textual forms the command line accepts:
//! durations (`250ms`, `2s`, `15m`, `1h`, `7d`) and rate limits (`100/60s`, `5/1s`, `100/m`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Ajax's session token lifetime.
pub const SESSION_TTL: Duration = Duration::from_secs(15 * 60);
/// Ajax's refresh token lifetime.
pub const REFRESH_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// The window `max_in_window` is measured over when neither `--rate` nor `--window` names one.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);

/// Everything a simulator instance is run with.
#[derive(Clone)]
pub struct SimConfig {
    /// The one `X-Api-Key` the simulator accepts.
    pub api_key: String,
    /// Refuse calls beyond this many per rolling window; `None`: no limit.
    pub rate: Option<RateLimit>,
    /// The window `max_in_window` is measured over (the budget witness).
    pub window: Duration,
    pub session_ttl: Duration,
    pub refresh_ttl: Duration,
}

impl SimConfig {
    /// Ajax's defaults: no rate limit, a 60 s witness window, 15 min sessions, 7 day refresh tokens.
    pub fn new(api_key: impl Into<String>) -> Self {
        Self {
            api_key: api_key.into(),
            rate: None,
            window: DEFAULT_WINDOW,
            session_ttl: SESSION_TTL,
            refresh_ttl: REFRESH_TTL,
        }
    }

    /// Adds a rate limit; the witness window becomes the limit's window.
    pub fn with_rate(mut self, rate: RateLimit) -> Self {
        self.rate = Some(rate);
        self.window = rate.window;
        self
    }
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("api_key", &"<redacted>")
            .field("rate", &self.rate)
            .field("window", &self.window)
            .field("session_ttl", &self.session_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .finish()
    }
}

/// At most `limit` calls in any rolling `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: u32,
    pub window: Duration,
}

impl FromStr for RateLimit {
    type Err = String;

    /// `N/WINDOW`, with `N` at least 1 and a non-zero window: `100/60s`, `10/500ms`, `100/1m`, or
    /// `100/m` (a unit alone means one of it).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (limit, window) = text
            .split_once('/')
            .ok_or_else(|| format!("rate {text:?}: expected N/WINDOW, e.g. 100/60s"))?;
        let limit: u32 = limit
            .trim()
            .parse()
            .map_err(|_| format!("rate {text:?}: {limit:?} is not a count"))?;
        let window = window.trim();
        if window.is_empty() {
            return Err(format!("rate {text:?}: the window is missing, e.g. 100/60s"));
        }
        let window = if window.starts_with(|c: char| c.is_ascii_digit()) {
            parse_duration(window)?
        } else {
            parse_duration(&format!("1{window}"))?
        };
        if limit == 0 || window.is_zero() {
            return Err(format!("rate {text:?}: count and window must be above zero"));
        }
        Ok(Self { limit, window })
    }
}

/// Parses `250ms`, `2s`, `15m`, `1h`, `7d`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("duration {text:?}: expected a number and a unit, e.g. 15m"))?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!("duration {text:?}: unknown unit {unit:?} (ms, s, m, h, d)"));
        }
    };
    number
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("duration {text:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_every_unit_the_flags_document() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("900s"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("15m"), Ok(SESSION_TTL));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7d"), Ok(REFRESH_TTL));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
    }

    #[test]
    fn malformed_durations_are_refused() {
        for bad in ["", "s", "5x", "1.5s", "-1s", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rates_take_a_count_and_a_window() {
        let rate: RateLimit = "100/60s".parse().expect("rate");
        assert_eq!((rate.limit, rate.window), (100, Duration::from_secs(60)));
        let rate: RateLimit = "10/500ms".parse().expect("rate");
        assert_eq!(rate.window, Duration::from_millis(500));
        let rate: RateLimit = "100/m".parse().expect("rate");
        assert_eq!(rate.window, Duration::from_secs(60));
        let rate: RateLimit = "5/1m".parse().expect("rate");
        assert_eq!((rate.limit, rate.window), (5, Duration::from_secs(60)));
    }

    #[test]
    fn zero_or_malformed_rates_are_refused() {
        for bad in ["0/1s", "5/0s", "5", "5/", "x/1s", "5/1y", "/1s"] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_rate_sets_the_witness_window() {
        let config = SimConfig::new("k").with_rate("5/1s".parse().expect("rate"));
        assert_eq!(config.window, Duration::from_secs(1));
    }

    #[test]
    fn config_debug_hides_the_api_key() {
        let shown = format!("{:?}", SimConfig::new("very-secret-key"));
        assert!(!shown.contains("very-secret-key"), "{shown}");
    }
}
