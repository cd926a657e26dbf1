//! A tenant's entitlement as the proxy sees it: one Redis hash per tenant, written by the control
//! plane whenever the tenant's effective plan changes and read by the budget script in the proxy's
//! one admission round trip (see `throttle::Precondition::entitlement`).
//!
//! Fields: `plan` (its name), `rate` (requests per minute), `classes` (comma-separated), then for
//! each route class either `c:<class>` = `1` (allowed) or `u:<class>` = the cheapest plan that
//! allows it (for the 402's "upgrade to" hint).

/// The hash field that marks `class` as allowed.
pub fn allowed_field(class: &str) -> String {
    format!("c:{class}")
}

/// The hash field naming the plan to upgrade to for `class`.
pub fn upgrade_field(class: &str) -> String {
    format!("u:{class}")
}

/// What a tenant's plan allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entitlement {
    pub plan: String,
    pub per_minute: u32,
    pub classes: Vec<String>,
    /// For each class the plan does not allow: the cheapest plan that does.
    pub upgrades: Vec<(String, String)>,
}

impl Entitlement {
    /// The hash's fields, for `HSET` (after a `DEL`, in one transaction).
    pub fn fields(&self) -> Vec<(String, String)> {
        let mut fields = vec![
            ("plan".to_owned(), self.plan.clone()),
            ("rate".to_owned(), self.per_minute.to_string()),
            ("classes".to_owned(), self.classes.join(",")),
        ];
        fields.extend(self.classes.iter().map(|c| (allowed_field(c), "1".to_owned())));
        fields.extend(self.upgrades.iter().map(|(c, plan)| (upgrade_field(c), plan.clone())));
        fields
    }
}

/// The entitlement as the budget script reports it with a granted slot: what the proxy remembers
/// of a tenant (its rate for the next request, its classes while Redis is away).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenEntitlement {
    pub plan: String,
    pub per_minute: Option<u32>,
    pub classes: Vec<String>,
}

impl SeenEntitlement {
    /// From the script's `plan`, `rate` and `classes` strings.
    pub fn from_parts(plan: String, rate: &str, classes: &str) -> Self {
        Self {
            plan,
            per_minute: rate.parse().ok(),
            classes: classes
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }

    pub fn allows(&self, class: &str) -> bool {
        self.classes.iter().any(|c| c == class)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_mark_allowed_classes_and_name_upgrades() {
        let entitlement = Entitlement {
            plan: "basic".into(),
            per_minute: 30,
            classes: vec!["hub_read".into(), "read".into()],
            upgrades: vec![("command".into(), "pro".into())],
        };
        let fields = entitlement.fields();
        assert!(fields.contains(&("c:read".into(), "1".into())));
        assert!(fields.contains(&("u:command".into(), "pro".into())));
        assert!(fields.contains(&("classes".into(), "hub_read,read".into())));
        let seen = SeenEntitlement::from_parts("basic".into(), "30", "hub_read,read");
        assert!(seen.allows("read") && !seen.allows("command"));
        assert_eq!(seen.per_minute, Some(30));
    }
}
