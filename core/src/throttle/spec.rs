//! The budget as operators write it: `ASF_GLOBAL_RATE` (`100/60s`, `100/60000ms`, `100/1m`) and
//! durations such as `ASF_QUEUE_MAX_WAIT` (`20s`). Parsed and validated once, here.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The longest window accepted; longer ones are almost certainly a typo (and keep the millisecond
/// arithmetic far from any overflow).
const MAX_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Why a rate or a duration was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateSpecError {
    /// The text is not of the form `N/W`.
    #[error("a rate is written N/W, e.g. 100/60s (got {0:?})")]
    Shape(String),
    /// `N` is not a whole number above 0.
    #[error("the number of requests must be a whole number above 0 (got {0:?})")]
    Limit(String),
    /// The duration is not a whole number followed by `ms`, `s` or `m`.
    #[error("a duration is a whole number followed by ms, s or m, e.g. 60s (got {0:?})")]
    Duration(String),
    /// The window is empty or longer than a day.
    #[error("the window must be between 1 ms and 24 h (got {0:?})")]
    Window(String),
}

/// At most `limit` upstream calls in any window of length `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSpec {
    limit: u32,
    window: Duration,
}

impl RateSpec {
    /// A rate of `limit` calls per `window`; fails if `limit` is 0 or `window` is not between 1 ms
    /// and 24 h (whole milliseconds).
    pub fn new(limit: u32, window: Duration) -> Result<Self, RateSpecError> {
        if limit == 0 {
            return Err(RateSpecError::Limit(limit.to_string()));
        }
        if window < Duration::from_millis(1) || window > MAX_WINDOW || !window.subsec_nanos().is_multiple_of(1_000_000)
        {
            return Err(RateSpecError::Window(format!("{window:?}")));
        }
        Ok(Self { limit, window })
    }

    /// Parses `N/Ws`, `N/Wms` or `N/Wm` (surrounding spaces allowed), e.g. `100/60s`.
    pub fn parse(text: &str) -> Result<Self, RateSpecError> {
        let (limit, window) = text
            .trim()
            .split_once('/')
            .ok_or_else(|| RateSpecError::Shape(text.into()))?;
        let limit: u32 = limit
            .trim()
            .parse()
            .map_err(|_| RateSpecError::Limit(limit.trim().into()))?;
        let window = parse_duration(window)?;
        Self::new(limit, window).map_err(|e| match e {
            RateSpecError::Window(_) => RateSpecError::Window(text.trim().into()),
            other => other,
        })
    }

    /// The number of calls allowed in any window.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The window's length.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The window's length in milliseconds.
    pub fn window_ms(&self) -> i64 {
        // At most a day in milliseconds: always fits.
        i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX)
    }
}

impl FromStr for RateSpec {
    type Err = RateSpecError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for RateSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.window.as_millis();
        if ms.is_multiple_of(60_000) {
            write!(f, "{}/{}m", self.limit, ms / 60_000)
        } else if ms.is_multiple_of(1000) {
            write!(f, "{}/{}s", self.limit, ms / 1000)
        } else {
            write!(f, "{}/{}ms", self.limit, ms)
        }
    }
}

/// Parses a whole number followed by `ms`, `s` or `m` (e.g. `20s` for `ASF_QUEUE_MAX_WAIT`).
pub fn parse_duration(text: &str) -> Result<Duration, RateSpecError> {
    let text = text.trim();
    let bad = || RateSpecError::Duration(text.into());
    let (number, unit_ms) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60_000)
    } else {
        return Err(bad());
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let number: u64 = number.parse().map_err(|_| bad())?;
    let ms = number.checked_mul(unit_ms).ok_or_else(bad)?;
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_window_units_are_understood() {
        let per_minute = RateSpec::new(100, Duration::from_secs(60)).expect("valid");
        assert_eq!(RateSpec::parse("100/60s"), Ok(per_minute));
        assert_eq!(RateSpec::parse("100/60000ms"), Ok(per_minute));
        assert_eq!(RateSpec::parse(" 100/1m "), Ok(per_minute));
        assert_eq!("5/250ms".parse::<RateSpec>().map(|r| r.window_ms()), Ok(250));
    }

    #[test]
    fn a_rate_prints_back_in_its_shortest_form() {
        assert_eq!(RateSpec::parse("100/60000ms").expect("valid").to_string(), "100/1m");
        assert_eq!(RateSpec::parse("10/90s").expect("valid").to_string(), "10/90s");
        assert_eq!(RateSpec::parse("10/1500ms").expect("valid").to_string(), "10/1500ms");
    }

    #[test]
    fn malformed_rates_are_refused_with_the_reason() {
        assert!(matches!(RateSpec::parse("100"), Err(RateSpecError::Shape(_))));
        assert!(matches!(RateSpec::parse("0/60s"), Err(RateSpecError::Limit(_))));
        assert!(matches!(RateSpec::parse("-1/60s"), Err(RateSpecError::Limit(_))));
        assert!(matches!(RateSpec::parse("100/60"), Err(RateSpecError::Duration(_))));
        assert!(matches!(RateSpec::parse("100/s"), Err(RateSpecError::Duration(_))));
        assert!(matches!(RateSpec::parse("100/1.5s"), Err(RateSpecError::Duration(_))));
        assert!(matches!(RateSpec::parse("100/0s"), Err(RateSpecError::Window(_))));
        assert!(matches!(RateSpec::parse("100/2000m"), Err(RateSpecError::Window(_))));
    }

    #[test]
    fn durations_take_the_same_units() {
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("750ms"), Ok(Duration::from_millis(750)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_duration("20").is_err());
        assert!(parse_duration("+20s").is_err());
    }
}
