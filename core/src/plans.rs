//! Plans: the tiers a tenant can be on, which route classes each tier allows by default, and the pure
//! rule that turns a Stripe subscription and voucher grants into the plan in force at a given time.
//!
//! Plans also live in the database, where an admin may edit them; [`Tier::default_classes`] is the
//! default mapping the migration seed mirrors. Time is always a parameter (Unix seconds).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A plan tier. Tiers are ordered: `Free < Basic < Pro < Premium`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Free,
    Basic,
    Pro,
    Premium,
}

/// Route classes (as in `core/catalogue/routes.tsv`) that no plan gates: the account operations and
/// the operations that need no session.
pub const UNGATED_CLASSES: &[&str] = &["account", "public"];

/// The gated classes in the order tiers unlock them; each tier allows a prefix of this list, which keeps
/// the default mapping monotonic by construction.
pub const GATED_CLASSES: [&str; 5] = ["hub_read", "read", "command", "panic", "settings"];

impl Tier {
    /// Every tier, cheapest first.
    pub const ALL: [Tier; 4] = [Tier::Free, Tier::Basic, Tier::Pro, Tier::Premium];

    /// The tier's name as stored in the database and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Basic => "basic",
            Self::Pro => "pro",
            Self::Premium => "premium",
        }
    }

    /// The gated route classes this tier allows by default (the migration seed mirrors this list).
    /// [`UNGATED_CLASSES`] are not listed: every tier allows them.
    pub fn default_classes(self) -> &'static [&'static str] {
        let unlocked = match self {
            Self::Free => 1,
            Self::Basic => 2,
            Self::Pro => 4,
            Self::Premium => 5,
        };
        &GATED_CLASSES[..unlocked]
    }

    /// Whether this tier allows operations of `class` under the default mapping. An unknown class is
    /// refused.
    pub fn allows(self, class: &str) -> bool {
        UNGATED_CLASSES.contains(&class) || self.default_classes().contains(&class)
    }

    /// The cheapest tier that allows `class`, to tell a user which plan would allow an operation;
    /// `None` for an unknown class.
    pub fn cheapest_allowing(class: &str) -> Option<Tier> {
        Self::ALL.into_iter().find(|tier| tier.allows(class))
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no tier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown plan tier {0:?}")]
pub struct UnknownTier(pub String);

impl FromStr for Tier {
    type Err = UnknownTier;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|tier| tier.as_str() == s)
            .ok_or_else(|| UnknownTier(s.to_owned()))
    }
}

/// A Stripe subscription's `status`, with Stripe's snake_case names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Active,
    Trialing,
    PastDue,
    Unpaid,
    Canceled,
    Incomplete,
    IncompleteExpired,
    Paused,
}

impl SubscriptionStatus {
    /// Every status Stripe documents.
    pub const ALL: [SubscriptionStatus; 8] = [
        Self::Active,
        Self::Trialing,
        Self::PastDue,
        Self::Unpaid,
        Self::Canceled,
        Self::Incomplete,
        Self::IncompleteExpired,
        Self::Paused,
    ];

    /// Stripe's name for the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Trialing => "trialing",
            Self::PastDue => "past_due",
            Self::Unpaid => "unpaid",
            Self::Canceled => "canceled",
            Self::Incomplete => "incomplete",
            Self::IncompleteExpired => "incomplete_expired",
            Self::Paused => "paused",
        }
    }
}

/// A string that names no Stripe subscription status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown Stripe subscription status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for SubscriptionStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// What we know of a tenant's Stripe subscription. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaidSubscription {
    /// The tier the subscribed price buys.
    pub tier: Tier,
    pub status: SubscriptionStatus,
    pub current_period_end: i64,
    /// When the subscription went `past_due`; the grace period runs from here. The webhook handler should
    /// always record it: when a renewal payment fails Stripe has already moved `current_period_end` to
    /// the end of the unpaid period, so the fallback below (grace from `current_period_end`) is generous.
    pub past_due_since: Option<i64>,
    /// When Stripe ended the subscription, if it has or is scheduled to.
    pub ended_at: Option<i64>,
}

/// A plan granted by a redeemed voucher, in force on the half-open interval `[starts_at, ends_at)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoucherGrant {
    pub tier: Tier,
    pub starts_at: i64,
    pub ends_at: i64,
}

impl VoucherGrant {
    fn in_force(&self, t: i64) -> bool {
        self.starts_at <= t && t < self.ends_at
    }
}

/// Which input gave the plan in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlanSource {
    Subscription,
    Voucher,
    /// Neither a subscription nor a voucher counts.
    Free,
}

/// The plan in force at a given time, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectivePlan {
    pub tier: Tier,
    pub source: PlanSource,
    /// The first time after `now` at which `tier` or `source` changes given the same inputs (end of a
    /// grace period, end of a subscription, start or end of a grant); `None` when they never do. The
    /// worker re-evaluates the plan at exactly this time.
    pub next_change_at: Option<i64>,
}

/// The plan in force at `now`.
///
/// - An `active` or `trialing` subscription counts until its `ended_at`, if any: Stripe renews the
///   period and keeps the status `active` until a cancel-at-period-end takes effect, so the status is
///   trusted and `current_period_end` is not.
/// - A `past_due` subscription counts until `past_due_since + grace_secs` (exclusive; `past_due_since`
///   defaults to `current_period_end`), and never past `ended_at`. A negative grace counts as zero.
/// - Any other status (`canceled`, `unpaid`, `incomplete`, `incomplete_expired`, `paused`) does not count.
/// - A voucher grant counts while `starts_at <= now < ends_at`.
///
/// The tier is the highest that counts, `Free` when none does; when a grant gives the same tier as the
/// subscription, the subscription is named as the source (it is what the tenant pays for).
pub fn effective_plan(
    sub: Option<&PaidSubscription>,
    grants: &[VoucherGrant],
    grace_secs: i64,
    now: i64,
) -> EffectivePlan {
    let paid_end = sub.map(|sub| (sub.tier, paid_end(sub, grace_secs)));
    let standing_at = |t: i64| standing(paid_end, grants, t);
    let (tier, source) = standing_at(now);

    // The standing is constant between consecutive boundaries, so the first boundary after `now` where
    // it differs is exactly when the plan changes. Grants are few, so evaluating each is cheap.
    let boundaries: BTreeSet<i64> = paid_end
        .map(|(_, end)| end)
        .into_iter()
        .chain(grants.iter().flat_map(|g| [g.starts_at, g.ends_at]))
        .filter(|&t| t > now && t != i64::MAX)
        .collect();
    let next_change_at = boundaries.into_iter().find(|&t| standing_at(t) != (tier, source));

    EffectivePlan {
        tier,
        source,
        next_change_at,
    }
}

/// The time from which the subscription's tier no longer counts: `i64::MAX` when nothing ends it,
/// `i64::MIN` when it does not count at all.
fn paid_end(sub: &PaidSubscription, grace_secs: i64) -> i64 {
    let ended = sub.ended_at.unwrap_or(i64::MAX);
    match sub.status {
        SubscriptionStatus::Active | SubscriptionStatus::Trialing => ended,
        SubscriptionStatus::PastDue => {
            let since = sub.past_due_since.unwrap_or(sub.current_period_end);
            since.saturating_add(grace_secs.max(0)).min(ended)
        }
        SubscriptionStatus::Unpaid
        | SubscriptionStatus::Canceled
        | SubscriptionStatus::Incomplete
        | SubscriptionStatus::IncompleteExpired
        | SubscriptionStatus::Paused => i64::MIN,
    }
}

fn standing(paid_end: Option<(Tier, i64)>, grants: &[VoucherGrant], t: i64) -> (Tier, PlanSource) {
    let paid = paid_end.filter(|&(_, end)| t < end).map(|(tier, _)| tier);
    let voucher = grants.iter().filter(|g| g.in_force(t)).map(|g| g.tier).max();
    match (paid, voucher) {
        (Some(paid), Some(voucher)) if voucher > paid => (voucher, PlanSource::Voucher),
        (Some(paid), _) => (paid, PlanSource::Subscription),
        (None, Some(voucher)) => (voucher, PlanSource::Voucher),
        (None, None) => (Tier::Free, PlanSource::Free),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Catalogue;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const NOW: i64 = 1_700_000_000;
    const DAY: i64 = 86_400;
    const GRACE: i64 = 3 * DAY;

    fn sub(tier: Tier, status: SubscriptionStatus) -> PaidSubscription {
        PaidSubscription {
            tier,
            status,
            current_period_end: NOW + 10 * DAY,
            past_due_since: None,
            ended_at: None,
        }
    }

    fn past_due(tier: Tier, since: i64) -> PaidSubscription {
        PaidSubscription {
            past_due_since: Some(since),
            ..sub(tier, SubscriptionStatus::PastDue)
        }
    }

    fn grant(tier: Tier, starts_at: i64, ends_at: i64) -> VoucherGrant {
        VoucherGrant {
            tier,
            starts_at,
            ends_at,
        }
    }

    fn plan(tier: Tier, source: PlanSource, next_change_at: Option<i64>) -> EffectivePlan {
        EffectivePlan {
            tier,
            source,
            next_change_at,
        }
    }

    #[test]
    fn tiers_are_ordered_and_round_trip_through_their_names() {
        assert!(Tier::Free < Tier::Basic && Tier::Basic < Tier::Pro && Tier::Pro < Tier::Premium);
        for tier in Tier::ALL {
            assert_eq!(tier.as_str().parse::<Tier>(), Ok(tier));
            let json = serde_json::to_string(&tier).expect("serialise");
            assert_eq!(json, format!("\"{}\"", tier.as_str()));
        }
        assert_eq!("Gold".parse::<Tier>(), Err(UnknownTier("Gold".to_owned())));
    }

    #[test]
    fn stripe_statuses_parse_from_their_snake_case_names() {
        for status in SubscriptionStatus::ALL {
            assert_eq!(status.as_str().parse::<SubscriptionStatus>(), Ok(status));
            let json = serde_json::to_string(&status).expect("serialise");
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        assert!("pastdue".parse::<SubscriptionStatus>().is_err());
    }

    #[test]
    fn each_tier_allows_what_the_default_mapping_says() {
        use Tier::*;
        let table: &[(&str, [bool; 4])] = &[
            // class          free   basic  pro    premium
            ("account", [true, true, true, true]),
            ("public", [true, true, true, true]),
            ("hub_read", [true, true, true, true]),
            ("read", [false, true, true, true]),
            ("command", [false, false, true, true]),
            ("panic", [false, false, true, true]),
            ("settings", [false, false, false, true]),
            ("billing", [false, false, false, false]),
            ("", [false, false, false, false]),
        ];
        for (class, allowed) in table {
            for (tier, want) in Tier::ALL.into_iter().zip(allowed) {
                assert_eq!(tier.allows(class), *want, "{tier} allows {class:?}");
            }
        }
        assert_eq!(Tier::cheapest_allowing("hub_read"), Some(Free));
        assert_eq!(Tier::cheapest_allowing("read"), Some(Basic));
        assert_eq!(Tier::cheapest_allowing("command"), Some(Pro));
        assert_eq!(Tier::cheapest_allowing("panic"), Some(Pro));
        assert_eq!(Tier::cheapest_allowing("settings"), Some(Premium));
        assert_eq!(Tier::cheapest_allowing("account"), Some(Free));
        assert_eq!(Tier::cheapest_allowing("billing"), None);
    }

    #[test]
    fn every_catalogue_class_is_known_to_the_plans() {
        for route in Catalogue::builtin().routes() {
            let class = route.class.as_str();
            assert!(Tier::Premium.allows(class), "{class} is allowed by no tier");
        }
        for tier in Tier::ALL {
            for class in tier.default_classes() {
                assert!(!UNGATED_CLASSES.contains(class), "{class} is listed but ungated");
            }
        }
    }

    /// One row of the table: the inputs, the instant, and the plan expected then.
    struct Case {
        name: &'static str,
        sub: Option<PaidSubscription>,
        grants: Vec<VoucherGrant>,
        now: i64,
        want: EffectivePlan,
    }

    #[test]
    fn effective_plan_follows_the_rules_at_each_instant() {
        use PlanSource as S;
        use SubscriptionStatus::*;
        use Tier::*;
        let since = NOW - DAY;
        let cancel_at = NOW + 5 * DAY;
        let cases = [
            Case {
                name: "no subscription, no voucher",
                sub: None,
                grants: vec![],
                now: NOW,
                want: plan(Free, S::Free, None),
            },
            Case {
                name: "active",
                sub: Some(sub(Pro, Active)),
                grants: vec![],
                now: NOW,
                want: plan(Pro, S::Subscription, None),
            },
            Case {
                name: "active after its period end",
                sub: Some(sub(Pro, Active)),
                grants: vec![],
                now: NOW + 20 * DAY,
                want: plan(Pro, S::Subscription, None),
            },
            Case {
                name: "trialing",
                sub: Some(sub(Basic, Trialing)),
                grants: vec![],
                now: NOW,
                want: plan(Basic, S::Subscription, None),
            },
            Case {
                name: "active, cancelling at period end",
                sub: Some(PaidSubscription {
                    ended_at: Some(cancel_at),
                    ..sub(Premium, Active)
                }),
                grants: vec![],
                now: NOW,
                want: plan(Premium, S::Subscription, Some(cancel_at)),
            },
            Case {
                name: "active with ended_at reached",
                sub: Some(PaidSubscription {
                    ended_at: Some(NOW),
                    ..sub(Premium, Active)
                }),
                grants: vec![],
                now: NOW,
                want: plan(Free, S::Free, None),
            },
            Case {
                name: "past_due inside grace",
                sub: Some(past_due(Pro, since)),
                grants: vec![],
                now: NOW,
                want: plan(Pro, S::Subscription, Some(since + GRACE)),
            },
            Case {
                name: "past_due, last second of grace",
                sub: Some(past_due(Pro, since)),
                grants: vec![],
                now: since + GRACE - 1,
                want: plan(Pro, S::Subscription, Some(since + GRACE)),
            },
            Case {
                name: "past_due at end of grace",
                sub: Some(past_due(Pro, since)),
                grants: vec![],
                now: since + GRACE,
                want: plan(Free, S::Free, None),
            },
            Case {
                name: "past_due after grace",
                sub: Some(past_due(Pro, since)),
                grants: vec![],
                now: since + GRACE + DAY,
                want: plan(Free, S::Free, None),
            },
            Case {
                name: "past_due without a start: grace from period end",
                sub: Some(sub(Pro, PastDue)),
                grants: vec![],
                now: NOW,
                want: plan(Pro, S::Subscription, Some(NOW + 10 * DAY + GRACE)),
            },
            Case {
                name: "past_due, ended before grace is over",
                sub: Some(PaidSubscription {
                    ended_at: Some(NOW + DAY),
                    ..past_due(Pro, since)
                }),
                grants: vec![],
                now: NOW,
                want: plan(Pro, S::Subscription, Some(NOW + DAY)),
            },
            Case {
                name: "canceled",
                sub: Some(sub(Premium, Canceled)),
                grants: vec![],
                now: NOW,
                want: plan(Free, S::Free, None),
            },
            Case {
                name: "unpaid",
                sub: Some(sub(Premium, Unpaid)),
                grants: vec![],
                now: NOW,
                want: plan(Free, S::Free, None),
            },
            Case {
                name: "incomplete",
                sub: Some(sub(Premium, Incomplete)),
                grants: vec![],
                now: NOW,
                want: plan(Free, S::Free, None),
            },
            Case {
                name: "incomplete_expired",
                sub: Some(sub(Premium, IncompleteExpired)),
                grants: vec![],
                now: NOW,
                want: plan(Free, S::Free, None),
            },
            Case {
                name: "paused",
                sub: Some(sub(Premium, Paused)),
                grants: vec![],
                now: NOW,
                want: plan(Free, S::Free, None),
            },
            Case {
                name: "voucher in force",
                sub: None,
                grants: vec![grant(Pro, NOW - DAY, NOW + DAY)],
                now: NOW,
                want: plan(Pro, S::Voucher, Some(NOW + DAY)),
            },
            Case {
                name: "voucher on its first second",
                sub: None,
                grants: vec![grant(Pro, NOW, NOW + DAY)],
                now: NOW,
                want: plan(Pro, S::Voucher, Some(NOW + DAY)),
            },
            Case {
                name: "voucher not yet started",
                sub: None,
                grants: vec![grant(Pro, NOW + 1, NOW + DAY)],
                now: NOW,
                want: plan(Free, S::Free, Some(NOW + 1)),
            },
            Case {
                name: "voucher on its end",
                sub: None,
                grants: vec![grant(Pro, NOW - DAY, NOW)],
                now: NOW,
                want: plan(Free, S::Free, None),
            },
            Case {
                name: "empty voucher",
                sub: None,
                grants: vec![grant(Pro, NOW, NOW)],
                now: NOW,
                want: plan(Free, S::Free, None),
            },
            Case {
                name: "voucher higher than paid",
                sub: Some(sub(Basic, Active)),
                grants: vec![grant(Premium, NOW - DAY, NOW + DAY)],
                now: NOW,
                want: plan(Premium, S::Voucher, Some(NOW + DAY)),
            },
            Case {
                name: "voucher lower than paid changes nothing",
                sub: Some(sub(Premium, Active)),
                grants: vec![grant(Basic, NOW - DAY, NOW + DAY)],
                now: NOW,
                want: plan(Premium, S::Subscription, None),
            },
            Case {
                name: "voucher equal to paid: the subscription is the source",
                sub: Some(PaidSubscription {
                    ended_at: Some(NOW + DAY),
                    ..sub(Pro, Active)
                }),
                grants: vec![grant(Pro, NOW - DAY, NOW + 2 * DAY)],
                now: NOW,
                want: plan(Pro, S::Subscription, Some(NOW + DAY)),
            },
            Case {
                name: "voucher outlasts a cancelled subscription",
                sub: Some(PaidSubscription {
                    ended_at: Some(NOW + DAY),
                    ..sub(Pro, Active)
                }),
                grants: vec![grant(Pro, NOW - DAY, NOW + 2 * DAY)],
                now: NOW + DAY,
                want: plan(Pro, S::Voucher, Some(NOW + 2 * DAY)),
            },
            Case {
                name: "voucher under a canceled subscription",
                sub: Some(sub(Premium, Canceled)),
                grants: vec![grant(Basic, NOW - DAY, NOW + DAY)],
                now: NOW,
                want: plan(Basic, S::Voucher, Some(NOW + DAY)),
            },
            Case {
                name: "lower voucher starting later is not a change",
                sub: Some(PaidSubscription {
                    ended_at: Some(NOW + 3 * DAY),
                    ..sub(Pro, Active)
                }),
                grants: vec![grant(Basic, NOW + DAY, NOW + 5 * DAY)],
                now: NOW,
                want: plan(Pro, S::Subscription, Some(NOW + 3 * DAY)),
            },
            Case {
                name: "back-to-back vouchers of one tier are one plan",
                sub: None,
                grants: vec![grant(Pro, NOW - DAY, NOW + DAY), grant(Pro, NOW + DAY, NOW + 2 * DAY)],
                now: NOW,
                want: plan(Pro, S::Voucher, Some(NOW + 2 * DAY)),
            },
            Case {
                name: "overlapping vouchers: the higher one wins, then the lower resumes",
                sub: None,
                grants: vec![
                    grant(Basic, NOW - DAY, NOW + 4 * DAY),
                    grant(Premium, NOW - DAY, NOW + DAY),
                ],
                now: NOW + DAY,
                want: plan(Basic, S::Voucher, Some(NOW + 4 * DAY)),
            },
        ];
        for Case {
            name,
            sub,
            grants,
            now,
            want,
        } in cases
        {
            let got = effective_plan(sub.as_ref(), &grants, GRACE, now);
            assert_eq!(got, want, "{name}");
            if let Some(next) = got.next_change_at {
                let before = effective_plan(sub.as_ref(), &grants, GRACE, next - 1);
                assert_eq!(before, got, "{name}: one second before the change");
                let after = effective_plan(sub.as_ref(), &grants, GRACE, next);
                assert_ne!(
                    (after.tier, after.source),
                    (got.tier, got.source),
                    "{name}: at the change"
                );
            }
        }
    }

    #[test]
    fn negative_grace_counts_as_none() {
        let got = effective_plan(Some(&past_due(Tier::Pro, NOW)), &[], -DAY, NOW);
        assert_eq!(got, plan(Tier::Free, PlanSource::Free, None));
    }

    /// The specification, written out independently: the highest tier among the sources that count.
    fn entitled(sub: Option<&PaidSubscription>, grants: &[VoucherGrant], grace: i64, t: i64) -> Tier {
        use SubscriptionStatus::*;
        let paid = sub.and_then(|s| {
            let ended = s.ended_at.is_some_and(|e| e <= t);
            let counts = match s.status {
                Active | Trialing => !ended,
                PastDue => !ended && t < s.past_due_since.unwrap_or(s.current_period_end) + grace.max(0),
                _ => false,
            };
            counts.then_some(s.tier)
        });
        let vouchers = grants
            .iter()
            .filter(|g| g.starts_at <= t && t < g.ends_at)
            .map(|g| g.tier);
        paid.into_iter().chain(vouchers).max().unwrap_or(Tier::Free)
    }

    #[test]
    fn plan_is_constant_until_next_change_and_never_exceeds_what_was_paid_or_granted() {
        let mut rng = StdRng::seed_from_u64(0x9a1d_5eed);
        // A narrow window of times so boundaries collide with each other and with `now`.
        let time = |rng: &mut StdRng| NOW + rng.gen_range(-50..50);
        for _ in 0..20_000 {
            let sub = rng.gen_bool(0.8).then(|| PaidSubscription {
                tier: Tier::ALL[rng.gen_range(0..4)],
                status: SubscriptionStatus::ALL[rng.gen_range(0..8)],
                current_period_end: time(&mut rng),
                past_due_since: rng.gen_bool(0.7).then(|| time(&mut rng)),
                ended_at: rng.gen_bool(0.3).then(|| time(&mut rng)),
            });
            let grants: Vec<VoucherGrant> = (0..rng.gen_range(0..4))
                .map(|_| grant(Tier::ALL[rng.gen_range(0..4)], time(&mut rng), time(&mut rng)))
                .collect();
            let grace = rng.gen_range(-5..40);
            let now = time(&mut rng);
            let sub = sub.as_ref();
            let got = effective_plan(sub, &grants, grace, now);
            let ctx = format!("{sub:?} {grants:?} grace={grace} now={now} -> {got:?}");

            assert_eq!(got.tier, entitled(sub, &grants, grace, now), "{ctx}");
            let end = match got.next_change_at {
                Some(next) => {
                    assert!(next > now, "{ctx}");
                    let at = effective_plan(sub, &grants, grace, next);
                    assert_ne!(
                        (at.tier, at.source),
                        (got.tier, got.source),
                        "{ctx}: no change at next_change_at"
                    );
                    next
                }
                None => NOW + 200,
            };
            for t in now..end {
                assert_eq!(effective_plan(sub, &grants, grace, t), got, "{ctx}: differs at {t}");
            }
        }
    }
}
