//! The plans table: the four tiers (their names and order are fixed; their classes, rate and
//! Stripe prices are editable by admins).

use asf_core::plans::GATED_CLASSES;
use serde::Serialize;
use sqlx::PgPool;

/// One plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct PlanRow {
    pub name: String,
    pub rank: i32,
    pub classes: Vec<String>,
    pub rate_per_minute: i32,
    pub stripe_price_ids: Vec<String>,
}

/// Every plan, cheapest first.
pub async fn load_all<'c, E: sqlx::PgExecutor<'c>>(executor: E) -> Result<Vec<PlanRow>, sqlx::Error> {
    sqlx::query_as("select name, rank, classes, rate_per_minute, stripe_price_ids from plans order by rank")
        .fetch_all(executor)
        .await
}

/// Changes a plan's classes, rate and prices; `None` when there is no such plan.
pub async fn update(
    db: &PgPool,
    name: &str,
    classes: &[String],
    rate_per_minute: i32,
    stripe_price_ids: &[String],
) -> Result<Option<PlanRow>, sqlx::Error> {
    sqlx::query_as(
        "update plans set classes = $2, rate_per_minute = $3, stripe_price_ids = $4, updated_at = now() \
         where name = $1 returning name, rank, classes, rate_per_minute, stripe_price_ids",
    )
    .bind(name)
    .bind(classes)
    .bind(rate_per_minute)
    .bind(stripe_price_ids)
    .fetch_optional(db)
    .await
}

/// The entitlement of `plan` among `plans`: its classes and rate, and for every gated class it
/// lacks, the cheapest plan that has it.
pub fn entitlement_of(plan: &PlanRow, plans: &[PlanRow]) -> asf_core::entitlement::Entitlement {
    let upgrades = GATED_CLASSES
        .iter()
        .filter(|class| !plan.classes.iter().any(|c| c == *class))
        .filter_map(|class| {
            plans
                .iter()
                .filter(|p| p.rank > plan.rank && p.classes.iter().any(|c| c == class))
                .min_by_key(|p| p.rank)
                .map(|p| ((*class).to_owned(), p.name.clone()))
        })
        .collect();
    asf_core::entitlement::Entitlement {
        plan: plan.name.clone(),
        per_minute: u32::try_from(plan.rate_per_minute).unwrap_or(1),
        classes: plan.classes.clone(),
        upgrades,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(name: &str, rank: i32, classes: &[&str]) -> PlanRow {
        PlanRow {
            name: name.into(),
            rank,
            classes: classes.iter().map(|c| (*c).to_owned()).collect(),
            rate_per_minute: 60,
            stripe_price_ids: vec![],
        }
    }

    #[test]
    fn a_plan_names_the_cheapest_upgrade_for_each_missing_class() {
        let plans = vec![
            plan("free", 0, &["hub_read"]),
            plan("basic", 1, &["hub_read", "read"]),
            plan("pro", 2, &["hub_read", "read", "command", "panic"]),
            plan("premium", 3, &["hub_read", "read", "command", "panic", "settings"]),
        ];
        let free = entitlement_of(&plans[0], &plans);
        assert!(free.upgrades.contains(&("read".into(), "basic".into())));
        assert!(free.upgrades.contains(&("command".into(), "pro".into())));
        assert!(free.upgrades.contains(&("settings".into(), "premium".into())));
        let premium = entitlement_of(&plans[3], &plans);
        assert!(premium.upgrades.is_empty());
    }
}
