//! The fake's memory: every object created so far, as the JSON it is served as, newest last.

use serde_json::Value;

use crate::error::ApiError;

/// The kinds of object kept, named as in Stripe's "No such ..." messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Customer,
    Session,
    PortalSession,
    Subscription,
    Invoice,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Session => "checkout.session",
            Self::PortalSession => "billing_portal.session",
            Self::Subscription => "subscription",
            Self::Invoice => "invoice",
        }
    }
}

/// What a Checkout Session will subscribe to once paid (Stripe keeps line items apart from the
/// session object too).
#[derive(Debug, Clone)]
pub struct Pending {
    pub price: String,
    pub quantity: u64,
    pub subscription_metadata: Value,
}

#[derive(Debug, Default)]
pub struct Store {
    /// Indexed by `Kind as usize`.
    objects: [Vec<Value>; 5],
    pending: Vec<(String, Pending)>,
}

impl Store {
    fn all(&self, kind: Kind) -> &Vec<Value> {
        &self.objects[kind as usize]
    }

    fn all_mut(&mut self, kind: Kind) -> &mut Vec<Value> {
        &mut self.objects[kind as usize]
    }

    pub fn insert(&mut self, kind: Kind, object: Value) {
        self.all_mut(kind).push(object);
    }

    /// The object `id`; 404 `resource_missing` if there is none.
    pub fn get(&self, kind: Kind, id: &str) -> Result<&Value, ApiError> {
        self.all(kind)
            .iter()
            .find(|o| o["id"] == id)
            .ok_or_else(|| ApiError::NoSuch {
                kind: kind.name(),
                id: id.to_owned(),
            })
    }

    pub fn get_mut(&mut self, kind: Kind, id: &str) -> Result<&mut Value, ApiError> {
        self.all_mut(kind)
            .iter_mut()
            .find(|o| o["id"] == id)
            .ok_or_else(|| ApiError::NoSuch {
                kind: kind.name(),
                id: id.to_owned(),
            })
    }

    /// Objects for which `keep` holds, newest first (Stripe's list order).
    pub fn list(&self, kind: Kind, keep: impl Fn(&Value) -> bool) -> Vec<Value> {
        self.all(kind).iter().rev().filter(|o| keep(o)).cloned().collect()
    }

    pub fn set_pending(&mut self, session: &str, pending: Pending) {
        self.pending.push((session.to_owned(), pending));
    }

    pub fn pending(&self, session: &str) -> Option<&Pending> {
        self.pending.iter().find(|(id, _)| id == session).map(|(_, p)| p)
    }
}
