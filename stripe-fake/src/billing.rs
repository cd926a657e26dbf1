//! The subscription lifecycle, as plain functions of the store, the prices and `now`: checkout
//! completion, updates, cancellation, renewal and failed payments. Each answers the object as it
//! now stands and the events Stripe would send, in Stripe's order.

use serde_json::{Value, json};

use crate::config::FakeConfig;
use crate::error::ApiError;
use crate::events::Emit;
use crate::objects::{self, new_id};
use crate::store::{Kind, Store};

/// A billing period: 30 days.
pub const PERIOD: i64 = 30 * 86_400;

pub type Outcome = Result<(Value, Vec<Emit>), ApiError>;

fn set(object: &mut Value, key: &str, value: Value) {
    if let Some(map) = object.as_object_mut() {
        map.insert(key.to_owned(), value);
    }
}

fn text<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object.get(key).and_then(Value::as_str)
}

/// The customer pays on the hosted page: an active subscription, a paid first invoice, and the
/// session completed. 400 unless the session is open.
pub fn complete_checkout(store: &mut Store, config: &FakeConfig, session_id: &str, now: i64) -> Outcome {
    let session = store.get(Kind::Session, session_id)?.clone();
    if text(&session, "status") != Some("open") {
        return Err(ApiError::invalid("This Checkout Session is no longer open.", "session"));
    }
    let pending = store
        .pending(session_id)
        .cloned()
        .ok_or_else(|| ApiError::invalid("No line items", "line_items"))?;
    let price = config
        .price(&pending.price)
        .ok_or_else(|| ApiError::missing_param("price", &pending.price, "price"))?;
    let customer = match text(&session, "customer") {
        Some(id) => id.to_owned(),
        None => {
            let id = new_id("cus_");
            let email = text(&session, "customer_email");
            store.insert(Kind::Customer, objects::customer(&id, email, None, json!({}), now));
            id
        }
    };
    let sub_id = new_id("sub_");
    let item = objects::subscription_item(&sub_id, price, pending.quantity, (now, now + PERIOD), now);
    let mut sub = objects::subscription(&sub_id, &customer, vec![item], pending.subscription_metadata, now);
    let invoice = objects::invoice(&sub, "subscription_create", true, now);
    set(&mut sub, "latest_invoice", invoice["id"].clone());
    let mut session = session;
    for (key, value) in [
        ("status", json!("complete")),
        ("payment_status", json!("paid")),
        ("customer", json!(customer)),
        ("subscription", json!(sub_id)),
        ("invoice", invoice["id"].clone()),
        ("url", Value::Null),
    ] {
        set(&mut session, key, value);
    }
    *store.get_mut(Kind::Session, session_id)? = session.clone();
    store.insert(Kind::Subscription, sub.clone());
    store.insert(Kind::Invoice, invoice.clone());
    let events = vec![
        Emit::new("customer.subscription.created", &sub),
        Emit::new("checkout.session.completed", &session),
        Emit::new("invoice.paid", &invoice),
    ];
    Ok((session, events))
}

/// `POST /v1/subscriptions/{id}`: items (`id` to change one, none to add one), `quantity`,
/// `proration_behavior`, `cancel_at_period_end`, `metadata` (an empty value deletes a key).
/// An update that changes nothing sends no event.
pub fn update_subscription(store: &mut Store, config: &FakeConfig, id: &str, form: &Value, now: i64) -> Outcome {
    let old = store.get(Kind::Subscription, id)?.clone();
    if text(&old, "status") == Some("canceled") {
        let message = "A canceled subscription can only update its cancellation_details and metadata.";
        return Err(ApiError::Invalid {
            message: message.into(),
            param: None,
            code: None,
        });
    }
    if let Some(behavior) = text(form, "proration_behavior")
        && !["create_prorations", "none", "always_invoice"].contains(&behavior)
    {
        return Err(ApiError::invalid(
            format!("Invalid proration_behavior: {behavior}"),
            "proration_behavior",
        ));
    }
    let mut sub = old.clone();
    let mut items = sub
        .pointer("/items/data")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let (start, end) = objects::period(&items);
    for (i, change) in form
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        apply_item_change(&mut items, change, i, config, id, (start, end), now)?;
    }
    if let Some(list) = sub.get_mut("items") {
        set(list, "total_count", json!(items.len()));
        set(list, "data", Value::Array(items));
    }
    if let Some(value) = text(form, "cancel_at_period_end") {
        let on = parse_bool(value, "cancel_at_period_end")?;
        set(&mut sub, "cancel_at_period_end", json!(on));
        set(&mut sub, "cancel_at", json!(on.then_some(end)));
        set(&mut sub, "canceled_at", json!(on.then_some(now)));
        let reason = on.then_some("cancellation_requested");
        set(
            &mut sub,
            "cancellation_details",
            json!({"comment": null, "feedback": null, "reason": reason}),
        );
    }
    if let Some(changes) = form.get("metadata") {
        let merged = merge_metadata(&sub["metadata"], changes);
        set(&mut sub, "metadata", merged);
    }
    Ok(commit(store, old, sub))
}

fn apply_item_change(
    items: &mut Vec<Value>,
    change: &Value,
    i: usize,
    config: &FakeConfig,
    sub_id: &str,
    period: (i64, i64),
    now: i64,
) -> Result<(), ApiError> {
    let param = |name: &str| format!("items[{i}][{name}]");
    let price = text(change, "price")
        .map(|p| {
            config
                .price(p)
                .ok_or_else(|| ApiError::missing_param("price", p, &param("price")))
        })
        .transpose()?;
    let quantity = text(change, "quantity")
        .map(|q| {
            q.parse::<u64>()
                .map_err(|_| ApiError::invalid("Invalid integer", &param("quantity")))
        })
        .transpose()?;
    let item = match text(change, "id") {
        Some(item_id) => items
            .iter_mut()
            .find(|item| item["id"] == item_id)
            .ok_or_else(|| ApiError::missing_param("subscription_item", item_id, &param("id")))?,
        None => {
            let missing = || ApiError::invalid(format!("Missing required param: {}.", param("price")), &param("price"));
            let price = price.ok_or_else(missing)?;
            items.push(objects::subscription_item(
                sub_id,
                price,
                quantity.unwrap_or(1),
                period,
                now,
            ));
            return Ok(());
        }
    };
    if let Some(price) = price {
        set(item, "price", objects::price(price));
        set(item, "plan", objects::plan(price));
    }
    if let Some(quantity) = quantity {
        set(item, "quantity", json!(quantity));
    }
    Ok(())
}

fn parse_bool(value: &str, param: &str) -> Result<bool, ApiError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ApiError::invalid(format!("Invalid boolean: {value}"), param)),
    }
}

/// Stripe's metadata update: keys merge, an empty value deletes, an empty `metadata=` clears.
fn merge_metadata(current: &Value, changes: &Value) -> Value {
    let Some(changes) = changes.as_object() else {
        return json!({});
    };
    let mut merged = current.as_object().cloned().unwrap_or_default();
    for (key, value) in changes {
        match value.as_str() {
            Some("") | None => merged.remove(key),
            Some(_) => merged.insert(key.clone(), value.clone()),
        };
    }
    Value::Object(merged)
}

/// Stores `new` and, if it differs from `old`, a `customer.subscription.updated` event.
fn commit(store: &mut Store, old: Value, new: Value) -> (Value, Vec<Emit>) {
    let id = new["id"].as_str().unwrap_or_default().to_owned();
    if let Ok(slot) = store.get_mut(Kind::Subscription, &id) {
        *slot = new.clone();
    }
    if old == new {
        return (new, Vec::new());
    }
    let previous = objects::previous_attributes(&old, &new);
    let updated = Emit {
        kind: "customer.subscription.updated",
        object: new.clone(),
        previous: Some(previous),
    };
    (new, vec![updated])
}

/// Cancels now (`DELETE /v1/subscriptions/{id}`); 400 if already canceled.
pub fn cancel_subscription(store: &mut Store, id: &str, now: i64) -> Outcome {
    let mut sub = store.get(Kind::Subscription, id)?.clone();
    if text(&sub, "status") == Some("canceled") {
        return Err(ApiError::invalid(
            "This subscription has already been canceled.",
            "subscription",
        ));
    }
    set(&mut sub, "status", json!("canceled"));
    set(&mut sub, "ended_at", json!(now));
    if sub["canceled_at"].is_null() {
        set(&mut sub, "canceled_at", json!(now));
    }
    set(
        &mut sub,
        "cancellation_details",
        json!({"comment": null, "feedback": null, "reason": "cancellation_requested"}),
    );
    *store.get_mut(Kind::Subscription, id)? = sub.clone();
    Ok((sub.clone(), vec![Emit::new("customer.subscription.deleted", &sub)]))
}

/// The period ends and the charge succeeds. An active subscription moves to the next period with a
/// paid invoice; a `past_due` one (already in its new period) gets its open invoice paid; one set
/// to cancel at period end is canceled instead.
pub fn renew(store: &mut Store, id: &str, now: i64) -> Outcome {
    let old = store.get(Kind::Subscription, id)?.clone();
    if old["cancel_at_period_end"] == true {
        return cancel_subscription(store, id, now);
    }
    let mut sub = old.clone();
    let invoice = if text(&old, "status") == Some("past_due") {
        let invoice_id = text(&old, "latest_invoice").unwrap_or_default().to_owned();
        let invoice = store.get_mut(Kind::Invoice, &invoice_id)?;
        let total = invoice["total"].clone();
        for (key, value) in [
            ("status", json!("paid")),
            ("amount_paid", total),
            ("amount_remaining", json!(0)),
        ] {
            set(invoice, key, value);
        }
        if let Some(transitions) = invoice.get_mut("status_transitions") {
            set(transitions, "paid_at", json!(now));
        }
        invoice.clone()
    } else {
        advance_period(&mut sub);
        let invoice = objects::invoice(&sub, "subscription_cycle", true, now);
        set(&mut sub, "latest_invoice", invoice["id"].clone());
        store.insert(Kind::Invoice, invoice.clone());
        invoice
    };
    set(&mut sub, "status", json!("active"));
    let (sub, mut events) = commit(store, old, sub);
    events.push(Emit::new("invoice.paid", &invoice));
    Ok((sub, events))
}

/// The renewal charge fails: the subscription moves to its next period, its new invoice stays open
/// and it becomes `past_due`. On a subscription already past due, the retry fails again.
pub fn payment_failed(store: &mut Store, id: &str, now: i64) -> Outcome {
    let old = store.get(Kind::Subscription, id)?.clone();
    match text(&old, "status") {
        Some("active") => {}
        Some("past_due") => {
            let invoice_id = text(&old, "latest_invoice").unwrap_or_default().to_owned();
            let invoice = store.get_mut(Kind::Invoice, &invoice_id)?;
            let attempts = invoice["attempt_count"].as_u64().unwrap_or(0) + 1;
            set(invoice, "attempt_count", json!(attempts));
            let invoice = invoice.clone();
            return Ok((old, vec![Emit::new("invoice.payment_failed", &invoice)]));
        }
        _ => {
            return Err(ApiError::invalid(
                "Only an active subscription can fail a payment.",
                "subscription",
            ));
        }
    }
    let mut sub = old.clone();
    advance_period(&mut sub);
    let invoice = objects::invoice(&sub, "subscription_cycle", false, now);
    set(&mut sub, "latest_invoice", invoice["id"].clone());
    set(&mut sub, "status", json!("past_due"));
    store.insert(Kind::Invoice, invoice.clone());
    let (sub, updated) = commit(store, old, sub);
    let mut events = vec![Emit::new("invoice.payment_failed", &invoice)];
    events.extend(updated);
    Ok((sub, events))
}

/// Every item's period moves on by [`PERIOD`].
fn advance_period(sub: &mut Value) {
    let Some(items) = sub.pointer_mut("/items/data").and_then(Value::as_array_mut) else {
        return;
    };
    for item in items {
        let end = item["current_period_end"].as_i64().unwrap_or(0);
        set(item, "current_period_start", json!(end));
        set(item, "current_period_end", json!(end + PERIOD));
    }
}
