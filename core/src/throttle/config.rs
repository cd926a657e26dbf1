//! The budget's settings ([`BudgetConfig`]) and the per-lane GCRA parameters derived from them
//! ([`BudgetPlan`]), including the split that keeps every window at or under the limit.

use std::time::Duration;

use super::lanes::{LANES, Lane};
use super::spec::RateSpec;

/// The total burst of the budget when none is configured.
pub const DEFAULT_BURST: u32 = 3;
/// How long a request may be queued for its slot when nothing else is configured.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(20);

/// Why a budget could not be set up from its settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetConfigError {
    /// The command and account shares leave nothing for reads.
    #[error("command ({command}%) and account ({account}%) shares must leave reads at least 1%")]
    SharesTooLarge {
        /// The command lane's share in percent.
        command: u8,
        /// The account lane's share in percent.
        account: u8,
    },
    /// A lane without a share could be starved; every lane needs at least 1%.
    #[error("the {0} lane needs a share of at least 1%")]
    ShareZero(Lane),
    /// Each lane's track can always fire once when idle, so the total burst covers one per lane.
    #[error("the burst ({burst}) must be at least the number of lanes ({LANES})")]
    BurstBelowLanes {
        /// The configured burst.
        burst: u32,
    },
    /// The burst leaves no sustained rate.
    #[error("the burst ({burst}) must be below the limit ({limit})")]
    BurstNotBelowLimit {
        /// The configured burst.
        burst: u32,
        /// The configured limit.
        limit: u32,
    },
    /// A local limiter's share cannot be divided by zero instances.
    #[error("the local share divisor must be at least 1")]
    ZeroDivisor,
    /// The budget divided by this many instances leaves an instance no sustained rate.
    #[error("{limit} calls per window cannot be split between {divisor} instances (each needs more than {burst})")]
    TooManyInstances {
        /// The number of instances sharing the budget.
        divisor: u32,
        /// The budget's limit.
        limit: u32,
        /// Each instance's burst.
        burst: u32,
    },
}

/// The reserved shares of the command and account lanes, in percent; reads get the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneShares {
    /// The command lane's share (default 20%).
    pub command_pct: u8,
    /// The account lane's share (default 10%).
    pub account_pct: u8,
}

impl Default for LaneShares {
    fn default() -> Self {
        Self {
            command_pct: 20,
            account_pct: 10,
        }
    }
}

impl LaneShares {
    /// Each lane's share in percent, in track order.
    fn percents(&self) -> Result<[u8; LANES], BudgetConfigError> {
        let reserved = u16::from(self.command_pct) + u16::from(self.account_pct);
        if reserved >= 100 {
            return Err(BudgetConfigError::SharesTooLarge {
                command: self.command_pct,
                account: self.account_pct,
            });
        }
        let read = u8::try_from(100 - reserved).unwrap_or(0);
        let percents = [self.command_pct, self.account_pct, read];
        for lane in Lane::ALL {
            if percents[lane.index()] == 0 {
                return Err(BudgetConfigError::ShareZero(lane));
            }
        }
        Ok(percents)
    }
}

/// The global budget's settings, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetConfig {
    /// `ASF_GLOBAL_RATE`: at most this many calls in any window.
    pub rate: RateSpec,
    /// The total burst `B` (default 3, at least one per lane); part of the limit, not on top of it.
    pub burst: u32,
    /// The lanes' reserved shares.
    pub shares: LaneShares,
    /// `ASF_QUEUE_MAX_WAIT`: a request whose slot is further away is refused at once.
    pub max_wait: Duration,
}

impl BudgetConfig {
    /// The default burst, shares and max wait for `rate`.
    pub fn new(rate: RateSpec) -> Self {
        Self {
            rate,
            burst: DEFAULT_BURST,
            shares: LaneShares::default(),
            max_wait: DEFAULT_MAX_WAIT,
        }
    }
}

/// One lane's derived GCRA parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackParams {
    /// The lane's reserved share, in percent.
    pub share_pct: u8,
    /// Interval between the track's slots at its sustained rate (rounded up to whole ms).
    pub emission_ms: i64,
    /// The track's burst (at least 1).
    pub burst: f64,
    /// `(burst - 1) * emission_ms`, rounded down to whole ms.
    pub tolerance_ms: i64,
}

/// Validated, derived settings: what the script and the local limiter compute with.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetPlan {
    limit: u32,
    window_ms: i64,
    max_wait_ms: i64,
    lanes: [TrackParams; LANES],
}

impl BudgetPlan {
    /// The plan of the whole shared budget.
    pub fn shared(config: &BudgetConfig) -> Result<Self, BudgetConfigError> {
        Self::derive(config, 1)
    }

    /// The plan of one of `divisor` instances each holding an equal part of the budget: together
    /// they still stay within the limit.
    pub fn per_instance(config: &BudgetConfig, divisor: u32) -> Result<Self, BudgetConfigError> {
        Self::derive(config, divisor)
    }

    fn derive(config: &BudgetConfig, divisor: u32) -> Result<Self, BudgetConfigError> {
        if divisor == 0 {
            return Err(BudgetConfigError::ZeroDivisor);
        }
        let percents = config.shares.percents()?;
        let lanes = LANES as u32;
        if config.burst < lanes {
            return Err(BudgetConfigError::BurstBelowLanes { burst: config.burst });
        }
        let limit = config.rate.limit();
        if config.burst >= limit {
            return Err(BudgetConfigError::BurstNotBelowLimit {
                burst: config.burst,
                limit,
            });
        }
        // Each instance keeps a burst of at least one per lane; its rate is what remains of its part.
        let burst = (config.burst / divisor).max(lanes);
        let spent_on_bursts = u64::from(divisor) * u64::from(burst);
        if u64::from(limit) <= spent_on_bursts {
            return Err(BudgetConfigError::TooManyInstances { divisor, limit, burst });
        }
        // Combined rate of one instance: (limit / divisor - burst) per window, in whole ms rounded up:
        // T_i = W * 100 * divisor / (pct_i * (limit - divisor * burst)).
        let sustained = u64::from(limit) - spent_on_bursts;
        let window_ms = config.rate.window_ms();
        let bursts = split_burst(f64::from(burst), percents);
        let mut params = [TrackParams {
            share_pct: 0,
            emission_ms: 1,
            burst: 1.0,
            tolerance_ms: 0,
        }; LANES];
        for lane in Lane::ALL {
            let i = lane.index();
            let numerator = u128::from(window_ms.unsigned_abs()) * 100 * u128::from(divisor);
            let denominator = u128::from(percents[i]) * u128::from(sustained);
            let emission_ms = i64::try_from(numerator.div_ceil(denominator)).unwrap_or(i64::MAX);
            // Rounded down: the track never tolerates more than its burst.
            let tolerance_ms = ((bursts[i] - 1.0) * emission_ms as f64).floor() as i64;
            params[i] = TrackParams {
                share_pct: percents[i],
                emission_ms,
                burst: bursts[i],
                tolerance_ms: tolerance_ms.max(0),
            };
        }
        Ok(Self {
            limit: limit / divisor,
            window_ms,
            max_wait_ms: i64::try_from(config.max_wait.as_millis()).unwrap_or(i64::MAX),
            lanes: params,
        })
    }

    /// The calls allowed per window (this instance's part of them for a per-instance plan).
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The window's length.
    pub fn window(&self) -> Duration {
        Duration::from_millis(self.window_ms.unsigned_abs())
    }

    /// The window's length in ms.
    pub fn window_ms(&self) -> i64 {
        self.window_ms
    }

    /// The longest queueing wait granted.
    pub fn max_wait(&self) -> Duration {
        Duration::from_millis(self.max_wait_ms.unsigned_abs())
    }

    /// The longest queueing wait granted, in ms.
    pub fn max_wait_ms(&self) -> i64 {
        self.max_wait_ms
    }

    /// A lane's GCRA parameters.
    pub fn lane(&self, lane: Lane) -> &TrackParams {
        &self.lanes[lane.index()]
    }

    /// How long a budget that takes over from another must stay silent so that no window holds
    /// slots of both: one window plus the longest wait already granted (see [`super::local`]).
    pub fn handover_gap(&self) -> Duration {
        self.window() + self.max_wait()
    }

    /// The bound the plan promises for any window: `sum(W / T_i + burst_i)`, at most [`Self::limit`].
    pub fn window_bound(&self) -> f64 {
        self.lanes
            .iter()
            .map(|p| self.window_ms as f64 / p.emission_ms as f64 + 1.0 + p.tolerance_ms as f64 / p.emission_ms as f64)
            .sum()
    }
}

/// Splits the total burst by share, giving every lane at least 1 (a GCRA track can always fire
/// once when idle) and the others the rest in proportion; the parts sum to at most `total`.
fn split_burst(total: f64, percents: [u8; LANES]) -> [f64; LANES] {
    let mut floored = [false; LANES];
    loop {
        let free_total = total - floored.iter().filter(|f| **f).count() as f64;
        let free_share: f64 = (0..LANES)
            .filter(|i| !floored[*i])
            .map(|i| f64::from(percents[i]))
            .sum();
        let mut bursts = [1.0; LANES];
        let mut next = floored;
        for i in (0..LANES).filter(|i| !floored[*i]) {
            let part = free_total * f64::from(percents[i]) / free_share;
            if part < 1.0 {
                next[i] = true;
            } else {
                bursts[i] = part;
            }
        }
        if next == floored || next.iter().all(|f| *f) {
            return bursts;
        }
        floored = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rate: &str, burst: u32) -> BudgetConfig {
        BudgetConfig {
            burst,
            ..BudgetConfig::new(RateSpec::parse(rate).expect("rate"))
        }
    }

    #[test]
    fn the_default_plan_splits_ninety_seven_per_minute_by_share_with_one_burst_each() {
        let plan = BudgetPlan::shared(&config("100/60s", 3)).expect("plan");
        let command = plan.lane(Lane::Command);
        let account = plan.lane(Lane::Account);
        let read = plan.lane(Lane::Read);
        // 60 000 ms / (20% of 97) = 3092.8 ms, rounded up.
        assert_eq!((command.emission_ms, command.tolerance_ms), (3093, 0));
        assert_eq!((account.emission_ms, account.tolerance_ms), (6186, 0));
        assert_eq!((read.emission_ms, read.tolerance_ms), (884, 0));
        assert!(plan.window_bound() <= 100.0);
        assert!(plan.window_bound() > 99.9);
    }

    #[test]
    fn a_larger_burst_goes_to_lanes_by_share_after_each_lane_has_one() {
        let plan = BudgetPlan::shared(&config("100/60s", 10)).expect("plan");
        let bursts: Vec<f64> = Lane::ALL.iter().map(|l| plan.lane(*l).burst).collect();
        assert!((bursts[0] - 2.0).abs() < 1e-9);
        assert!((bursts[1] - 1.0).abs() < 1e-9);
        assert!((bursts[2] - 7.0).abs() < 1e-9);
        let five = BudgetPlan::shared(&config("100/60s", 5)).expect("plan");
        let sum: f64 = Lane::ALL.iter().map(|l| five.lane(*l).burst).sum();
        assert!((sum - 5.0).abs() < 1e-9);
        assert!(Lane::ALL.iter().all(|l| five.lane(*l).burst >= 1.0));
    }

    #[test]
    fn every_plan_keeps_the_window_bound_within_the_limit() {
        for rate in ["100/60s", "7/1s", "1000/60s", "10/90s", "50/500ms"] {
            for burst in [3, 4, 5, 6] {
                let config = config(rate, burst);
                let limit = config.rate.limit();
                if burst >= limit {
                    continue;
                }
                for divisor in 1..=4 {
                    let Ok(plan) = BudgetPlan::per_instance(&config, divisor) else {
                        continue;
                    };
                    let bound = plan.window_bound() * f64::from(divisor);
                    assert!(
                        bound <= f64::from(limit) + 1e-9,
                        "{rate} burst {burst} / {divisor}: {bound}"
                    );
                }
            }
        }
    }

    #[test]
    fn impossible_settings_are_refused_with_the_reason() {
        assert_eq!(
            BudgetPlan::shared(&config("100/60s", 2)),
            Err(BudgetConfigError::BurstBelowLanes { burst: 2 })
        );
        assert_eq!(
            BudgetPlan::shared(&config("3/60s", 3)),
            Err(BudgetConfigError::BurstNotBelowLimit { burst: 3, limit: 3 })
        );
        assert_eq!(
            BudgetPlan::per_instance(&config("100/60s", 3), 0),
            Err(BudgetConfigError::ZeroDivisor)
        );
        assert!(matches!(
            BudgetPlan::per_instance(&config("100/60s", 3), 40),
            Err(BudgetConfigError::TooManyInstances { .. })
        ));
        let mut greedy = config("100/60s", 3);
        greedy.shares = LaneShares {
            command_pct: 60,
            account_pct: 40,
        };
        assert!(matches!(
            BudgetPlan::shared(&greedy),
            Err(BudgetConfigError::SharesTooLarge { .. })
        ));
        greedy.shares = LaneShares {
            command_pct: 0,
            account_pct: 40,
        };
        assert_eq!(
            BudgetPlan::shared(&greedy),
            Err(BudgetConfigError::ShareZero(Lane::Command))
        );
    }

    #[test]
    fn an_instance_share_divides_the_sustained_rate() {
        let config = config("100/60s", 3);
        let plan = BudgetPlan::per_instance(&config, 4).expect("plan");
        assert_eq!(plan.limit(), 25);
        // (100 - 4 * 3) = 88 per window for all four, 22 each, 20% of it for commands.
        assert_eq!(
            plan.lane(Lane::Command).emission_ms,
            (60_000f64 / (0.2 * 22.0)).ceil() as i64
        );
        assert!(plan.window_bound() <= 25.0 + 1e-9);
    }
}

impl BudgetConfig {
    /// The budget as configured by environment variables (every process sharing the budget must
    /// read the same values): `ASF_GLOBAL_RATE` (default `100/60s`), `ASF_GLOBAL_BURST` (3),
    /// `ASF_QUEUE_MAX_WAIT` (`20s`), `ASF_COMMAND_SHARE_PCT` (20), `ASF_ACCOUNT_SHARE_PCT` (10).
    /// The error names the variable at fault.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let rate_text = lookup("ASF_GLOBAL_RATE").unwrap_or_else(|| "100/60s".into());
        let rate = RateSpec::parse(&rate_text).map_err(|e| format!("ASF_GLOBAL_RATE: {e}"))?;
        let mut config = Self::new(rate);
        if let Some(burst) = lookup("ASF_GLOBAL_BURST") {
            config.burst = burst
                .parse()
                .map_err(|_| format!("ASF_GLOBAL_BURST: {burst:?} is not a number"))?;
        }
        if let Some(wait) = lookup("ASF_QUEUE_MAX_WAIT") {
            config.max_wait = super::spec::parse_duration(&wait).map_err(|e| format!("ASF_QUEUE_MAX_WAIT: {e}"))?;
        }
        let pct = |name: &str, default: u8| -> Result<u8, String> {
            lookup(name).map_or(Ok(default), |v| {
                v.parse().map_err(|_| format!("{name}: {v:?} is not a percentage"))
            })
        };
        config.shares.command_pct = pct("ASF_COMMAND_SHARE_PCT", config.shares.command_pct)?;
        config.shares.account_pct = pct("ASF_ACCOUNT_SHARE_PCT", config.shares.account_pct)?;
        BudgetPlan::shared(&config).map_err(|e| format!("global budget: {e}"))?;
        Ok(config)
    }
}

#[cfg(test)]
mod env_tests {
    use super::*;

    #[test]
    fn budget_settings_come_from_the_environment_with_defaults() {
        let config = BudgetConfig::from_env(|_| None).expect("defaults");
        assert_eq!(config.rate.limit(), 100);
        assert_eq!(config.max_wait, DEFAULT_MAX_WAIT);
        let custom = BudgetConfig::from_env(|name| match name {
            "ASF_GLOBAL_RATE" => Some("20/2s".into()),
            "ASF_QUEUE_MAX_WAIT" => Some("3s".into()),
            "ASF_COMMAND_SHARE_PCT" => Some("30".into()),
            _ => None,
        })
        .expect("custom");
        assert_eq!(
            (custom.rate.limit(), custom.max_wait, custom.shares.command_pct),
            (20, Duration::from_secs(3), 30)
        );
        let bad = BudgetConfig::from_env(|name| (name == "ASF_GLOBAL_RATE").then(|| "lots".into()));
        assert!(bad.expect_err("bad rate").contains("ASF_GLOBAL_RATE"));
        let bad = BudgetConfig::from_env(|name| (name == "ASF_COMMAND_SHARE_PCT").then(|| "95".into()));
        assert!(bad.expect_err("bad shares").contains("share"));
    }
}
