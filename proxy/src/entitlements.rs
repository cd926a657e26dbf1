//! What this instance last saw of each tenant's entitlement (the budget script reports it with
//! every granted slot): the plan's rate for the tenant's next reservation, and the allowed classes
//! while Redis is away. Never the authority: with Redis up, every request is checked in the
//! admission round trip itself.

use std::collections::HashMap;
use std::sync::Mutex;

use asf_core::catalogue::RouteClass;
use asf_core::entitlement::SeenEntitlement;
use asf_core::plans::Tier;

/// Most tenants remembered; past it the memory starts over (entries come back with one request).
const CAPACITY: usize = 100_000;

#[derive(Default)]
pub struct EntitlementCache {
    tenants: Mutex<HashMap<String, SeenEntitlement>>,
}

impl EntitlementCache {
    pub fn remember(&self, tenant: &str, seen: SeenEntitlement) {
        let Ok(mut tenants) = self.tenants.lock() else { return };
        if tenants.len() >= CAPACITY && !tenants.contains_key(tenant) {
            tenants.clear();
        }
        if tenants.get(tenant) != Some(&seen) {
            tenants.insert(tenant.to_owned(), seen);
        }
    }

    /// The tenant's plan rate, if known.
    pub fn per_minute(&self, tenant: &str) -> Option<u32> {
        self.tenants.lock().ok()?.get(tenant)?.per_minute
    }

    /// While Redis is away: whether the tenant may make a call of `class`, by what was last seen
    /// (the free plan's classes for a tenant never seen), and the plan to name if not.
    pub fn allows_offline(&self, tenant: &str, class: RouteClass) -> Result<(), (String, Option<String>)> {
        let seen = self.tenants.lock().ok().and_then(|t| t.get(tenant).cloned());
        let (plan, allowed) = match &seen {
            Some(seen) => (seen.plan.clone(), seen.allows(class.as_str())),
            None => (Tier::Free.as_str().to_owned(), Tier::Free.allows(class.as_str())),
        };
        if allowed {
            Ok(())
        } else {
            Err((plan, upgrade_for(class)))
        }
    }
}

/// The default catalogue's cheapest plan for `class` (plans are editable, so Redis's answer wins
/// whenever it is available).
pub fn upgrade_for(class: RouteClass) -> Option<String> {
    Tier::cheapest_allowing(class.as_str()).map(|t| t.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_tenants_get_the_free_plan_offline_and_known_ones_what_was_seen() {
        let cache = EntitlementCache::default();
        assert!(cache.allows_offline("t1", RouteClass::HubRead).is_ok());
        assert_eq!(
            cache.allows_offline("t1", RouteClass::Command),
            Err(("free".into(), Some("pro".into())))
        );
        cache.remember(
            "t1",
            SeenEntitlement::from_parts("pro".into(), "120", "hub_read,read,command,panic"),
        );
        assert!(cache.allows_offline("t1", RouteClass::Command).is_ok());
        assert_eq!(cache.per_minute("t1"), Some(120));
        assert!(cache.allows_offline("t1", RouteClass::Settings).is_err());
    }
}
