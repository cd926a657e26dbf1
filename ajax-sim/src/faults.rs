//! Fault knobs, set through `/_sim/faults`: added latency, random 5xx answers, offline hubs, forced
//! 429s and the over-limit-as-200 quirk; and the plan drawn from them for one request.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::http::StatusCode;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The knobs as they stand (and as `GET /_sim/faults` shows them).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Faults {
    /// Added before every `/api` answer.
    pub latency_ms: u64,
    /// Share of accepted calls answered 500, 502 or 503 (0 to 1).
    pub error_rate: f64,
    /// Calls for these hubs answer 503 "Hub is offline".
    pub hub_offline: BTreeSet<String>,
    /// The next this many calls with a valid key answer 429 with `Retry-After: 1`.
    pub force_429: u32,
    /// Over-limit answers are HTTP 200 with the limit message, as operators report Ajax does.
    pub limit_as_200: bool,
}

/// A `POST /_sim/faults` body: the knobs it names are set, the others keep their value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsPatch {
    pub latency_ms: Option<u64>,
    pub error_rate: Option<f64>,
    pub hub_offline: Option<BTreeSet<String>>,
    pub force_429: Option<u32>,
    pub limit_as_200: Option<bool>,
}

/// What the knobs decide for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub latency: Duration,
    /// Answer 429 (this request used up one `force_429`).
    pub forced_429: bool,
    /// Answer this 5xx if the call is accepted.
    pub error: Option<StatusCode>,
    /// The call's hub is offline.
    pub hub_offline: bool,
    pub limit_as_200: bool,
}

const INJECTED: [StatusCode; 3] = [
    StatusCode::INTERNAL_SERVER_ERROR,
    StatusCode::BAD_GATEWAY,
    StatusCode::SERVICE_UNAVAILABLE,
];

impl Faults {
    /// Applies a patch; `Err` (nothing changed) when `error_rate` is outside 0..=1.
    pub fn apply(&mut self, patch: FaultsPatch) -> Result<(), &'static str> {
        if let Some(rate) = patch.error_rate
            && !(0.0..=1.0).contains(&rate)
        {
            return Err("error_rate must be between 0 and 1");
        }
        let current = std::mem::take(self);
        *self = Self {
            latency_ms: patch.latency_ms.unwrap_or(current.latency_ms),
            error_rate: patch.error_rate.unwrap_or(current.error_rate),
            hub_offline: patch.hub_offline.unwrap_or(current.hub_offline),
            force_429: patch.force_429.unwrap_or(current.force_429),
            limit_as_200: patch.limit_as_200.unwrap_or(current.limit_as_200),
        };
        Ok(())
    }

    /// Draws the plan for one call with a valid key, for `hub_id` when its path names one.
    pub fn plan(&mut self, hub_id: Option<&str>) -> Plan {
        let forced_429 = self.force_429 > 0;
        self.force_429 = self.force_429.saturating_sub(1);
        let mut rng = rand::thread_rng();
        let error = (self.error_rate > 0.0 && rng.r#gen::<f64>() < self.error_rate)
            .then(|| INJECTED[rng.gen_range(0..INJECTED.len())]);
        Plan {
            latency: Duration::from_millis(self.latency_ms),
            forced_429,
            error,
            hub_offline: hub_id.is_some_and(|id| self.hub_offline.contains(id)),
            limit_as_200: self.limit_as_200,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_sets_only_the_knobs_it_names() {
        let mut faults = Faults::default();
        let first = FaultsPatch {
            latency_ms: Some(50),
            force_429: Some(2),
            ..FaultsPatch::default()
        };
        faults.apply(first).expect("valid");
        let second = FaultsPatch {
            limit_as_200: Some(true),
            ..FaultsPatch::default()
        };
        faults.apply(second).expect("valid");
        assert_eq!((faults.latency_ms, faults.force_429), (50, 2));
        assert!(faults.limit_as_200);
    }

    #[test]
    fn an_error_rate_outside_zero_to_one_is_refused_and_changes_nothing() {
        let mut faults = Faults::default();
        let patch = FaultsPatch {
            error_rate: Some(1.5),
            latency_ms: Some(9),
            ..FaultsPatch::default()
        };
        assert!(faults.apply(patch).is_err());
        assert_eq!(faults, Faults::default());
    }

    #[test]
    fn forced_429s_are_used_up_one_call_at_a_time() {
        let mut faults = Faults {
            force_429: 2,
            ..Faults::default()
        };
        assert!(faults.plan(None).forced_429);
        assert!(faults.plan(None).forced_429);
        assert!(!faults.plan(None).forced_429);
    }

    #[test]
    fn error_rate_one_always_fails_and_zero_never_does() {
        let mut faults = Faults {
            error_rate: 1.0,
            ..Faults::default()
        };
        for _ in 0..20 {
            let status = faults.plan(None).error.expect("always");
            assert!(INJECTED.contains(&status));
        }
        faults.error_rate = 0.0;
        assert!((0..20).all(|_| faults.plan(None).error.is_none()));
    }

    #[test]
    fn only_the_named_hubs_are_offline() {
        let mut faults = Faults {
            hub_offline: BTreeSet::from(["H1".to_owned()]),
            ..Faults::default()
        };
        assert!(faults.plan(Some("H1")).hub_offline);
        assert!(!faults.plan(Some("H2")).hub_offline);
        assert!(!faults.plan(None).hub_offline);
    }
}
