//! The JSON shapes of Stripe's objects at API version `2026-09-30.endive`, with every field
//! async-stripe 1.0.0-rc.10 requires (periods per subscription item, `billing_mode`, `parent` on
//! invoices instead of the removed top-level `subscription`). Builders only: no state.

use rand::Rng;
use rand::distributions::Alphanumeric;
use serde_json::{Map, Value, json};

use crate::config::{CURRENCY, PriceSpec};

/// When the configured prices and products were "created".
const CATALOGUE_CREATED: i64 = 1_700_000_000;

/// A fresh id such as `sub_1QxYz...` (24 random characters after the prefix, as Stripe's).
pub fn new_id(prefix: &str) -> String {
    let tail: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("{prefix}{tail}")
}

/// A list envelope; `data` newest first, as Stripe lists.
pub fn list(url: &str, data: Vec<Value>) -> Value {
    json!({"object": "list", "data": data, "has_more": false, "url": url})
}

/// `metadata[..]` of a form as a string map (missing: empty).
pub fn metadata(form: &Value) -> Value {
    form.get("metadata")
        .filter(|m| m.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}))
}

pub fn customer(id: &str, email: Option<&str>, name: Option<&str>, metadata: Value, now: i64) -> Value {
    json!({"id": id, "object": "customer", "address": null, "balance": 0, "created": now, "currency": null,
        "default_source": null, "delinquent": false, "description": null, "discount": null, "email": email,
        "invoice_prefix": id.chars().skip(4).take(8).collect::<String>().to_uppercase(),
        "invoice_settings": {"custom_fields": null, "default_payment_method": null, "footer": null,
            "rendering_options": null},
        "livemode": false, "metadata": metadata, "name": name, "next_invoice_sequence": 1, "phone": null,
        "preferred_locales": [], "shipping": null, "tax_exempt": "none", "test_clock": null})
}

pub fn price(spec: &PriceSpec) -> Value {
    json!({"id": spec.id, "object": "price", "active": true, "billing_scheme": "per_unit",
        "created": CATALOGUE_CREATED, "currency": CURRENCY, "custom_unit_amount": null, "livemode": false,
        "lookup_key": null, "metadata": {}, "nickname": spec.nickname, "product": spec.product(),
        "recurring": {"interval": "month", "interval_count": 1, "meter": null, "trial_period_days": null,
            "usage_type": "licensed"},
        "tax_behavior": "unspecified", "tiers_mode": null, "transform_quantity": null, "type": "recurring",
        "unit_amount": spec.unit_amount, "unit_amount_decimal": spec.unit_amount.to_string()})
}

/// The legacy Plan view of a price, which Stripe still sends on subscription items.
pub fn plan(spec: &PriceSpec) -> Value {
    json!({"id": spec.id, "object": "plan", "active": true, "amount": spec.unit_amount,
        "amount_decimal": spec.unit_amount.to_string(), "billing_scheme": "per_unit", "created": CATALOGUE_CREATED,
        "currency": CURRENCY, "interval": "month", "interval_count": 1, "livemode": false, "metadata": {},
        "meter": null, "nickname": spec.nickname, "product": spec.product(), "tiers_mode": null,
        "transform_usage": null, "trial_period_days": null, "usage_type": "licensed"})
}

/// One subscription item; its billing period is `[start, end)`.
pub fn subscription_item(sub: &str, spec: &PriceSpec, quantity: u64, period: (i64, i64), now: i64) -> Value {
    json!({"id": new_id("si_"), "object": "subscription_item", "billing_thresholds": null, "created": now,
        "current_period_end": period.1, "current_period_start": period.0, "discounts": [], "metadata": {},
        "plan": plan(spec), "price": price(spec), "quantity": quantity, "subscription": sub, "tax_rates": []})
}

/// An active subscription of `customer` to `items`.
pub fn subscription(id: &str, customer: &str, items: Vec<Value>, metadata: Value, now: i64) -> Value {
    json!({"id": id, "object": "subscription", "application": null, "application_fee_percent": null,
        "automatic_tax": {"disabled_reason": null, "enabled": false, "liability": null},
        "billing_cycle_anchor": now, "billing_cycle_anchor_config": null,
        "billing_mode": {"flexible": {"proration_discounts": "included"}, "type": "flexible", "updated_at": now},
        "billing_schedules": [], "billing_thresholds": null, "cancel_at": null, "cancel_at_period_end": false,
        "canceled_at": null, "cancellation_details": {"comment": null, "feedback": null, "reason": null},
        "collection_method": "charge_automatically", "created": now, "currency": CURRENCY, "customer": customer,
        "customer_account": null, "days_until_due": null, "default_payment_method": null, "default_source": null,
        "default_tax_rates": [], "description": null, "discounts": [], "ended_at": null,
        "invoice_settings": {"account_tax_ids": null, "issuer": {"type": "self"}},
        "items": {"object": "list", "data": items, "has_more": false, "total_count": 1,
            "url": format!("/v1/subscription_items?subscription={id}")},
        "latest_invoice": null, "livemode": false, "metadata": metadata, "next_pending_invoice_item_invoice": null,
        "on_behalf_of": null, "pause_collection": null,
        "payment_settings": {"payment_method_options": null, "payment_method_types": null,
            "save_default_payment_method": "off"},
        "pending_invoice_item_interval": null, "pending_setup_intent": null, "pending_update": null,
        "schedule": null, "start_date": now, "status": "active", "test_clock": null, "transfer_data": null,
        "trial_end": null, "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": null})
}

/// What a Checkout Session is created with.
pub struct SessionSpec<'a> {
    pub customer: Option<&'a str>,
    pub customer_email: Option<&'a str>,
    pub price: &'a PriceSpec,
    pub quantity: u64,
    pub form: &'a Value,
}

/// An open subscription-mode Checkout Session whose hosted page is `url`.
pub fn checkout_session(id: &str, spec: &SessionSpec<'_>, url: &str, now: i64) -> Value {
    let text = |key: &str| spec.form.get(key).and_then(Value::as_str).map(str::to_owned);
    let amount = spec.price.unit_amount * i64::try_from(spec.quantity).unwrap_or(1);
    json!({"id": id, "object": "checkout.session", "adaptive_pricing": null, "after_expiration": null,
        "allow_promotion_codes": null, "amount_subtotal": amount, "amount_total": amount,
        "automatic_tax": {"enabled": false, "liability": null, "provider": null, "status": null},
        "billing_address_collection": null, "cancel_url": text("cancel_url"),
        "client_reference_id": text("client_reference_id"), "client_secret": null, "consent": null,
        "consent_collection": null, "created": now, "currency": CURRENCY, "custom_fields": [],
        "custom_text": {"after_submit": null, "shipping_address": null, "submit": null,
            "terms_of_service_acceptance": null},
        "customer": spec.customer, "customer_creation": null, "customer_details": null,
        "customer_email": spec.customer_email, "expires_at": now + 86_400, "invoice": null, "livemode": false,
        "locale": null, "metadata": metadata(spec.form), "mode": "subscription", "payment_intent": null,
        "payment_link": null, "payment_method_collection": "always", "payment_method_types": ["card"],
        "payment_status": "unpaid", "phone_number_collection": {"enabled": false}, "recovered_from": null,
        "setup_intent": null, "shipping_address_collection": null, "shipping_cost": null, "shipping_options": [],
        "status": "open", "submit_type": null, "subscription": null, "success_url": text("success_url"),
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0}, "ui_mode": "hosted",
        "url": url})
}

pub fn portal_session(id: &str, customer: &str, return_url: Option<&str>, url: &str, now: i64) -> Value {
    json!({"id": id, "object": "billing_portal.session", "configuration": "bpc_fake_default", "created": now,
        "customer": customer, "customer_account": null, "flow": null, "livemode": false, "locale": null,
        "on_behalf_of": null, "return_url": return_url, "url": url})
}

/// An invoice for one period of `sub`: `paid`, or `open` after a failed attempt.
pub fn invoice(sub: &Value, reason: &str, paid: bool, now: i64) -> Value {
    let id = new_id("in_");
    let field = |key: &str| sub.get(key).cloned().unwrap_or(Value::Null);
    let items = sub
        .pointer("/items/data")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let lines: Vec<Value> = items.iter().map(|item| invoice_line(&id, sub, item)).collect();
    let total: i64 = lines
        .iter()
        .filter_map(|l| l.get("amount").and_then(Value::as_i64))
        .sum();
    let (start, end) = period(&items);
    let (paid_amount, status, paid_at) = if paid {
        (total, "paid", json!(now))
    } else {
        (0, "open", Value::Null)
    };
    let mut out = json!({"id": id, "object": "invoice", "account_country": "DE", "account_name": "stripe-fake",
        "account_tax_ids": null, "amount_due": total, "amount_overpaid": 0, "amount_paid": paid_amount,
        "amount_remaining": total - paid_amount, "amount_shipping": 0, "application": null, "attempt_count": 1,
        "attempted": true, "auto_advance": !paid, "automatic_tax": {"disabled_reason": null, "enabled": false,
            "liability": null, "provider": null, "status": null},
        "automatically_finalizes_at": null, "billing_reason": reason, "collection_method": "charge_automatically",
        "created": now, "currency": CURRENCY, "custom_fields": null, "customer": field("customer"),
        "customer_address": null, "customer_email": null, "customer_name": null, "customer_phone": null,
        "customer_shipping": null, "customer_tax_exempt": "none", "customer_tax_ids": [],
        "default_payment_method": null, "default_source": null, "default_tax_rates": [], "description": null,
        "discounts": [], "due_date": null, "effective_at": now, "ending_balance": 0, "footer": null,
        "from_invoice": null, "issuer": {"type": "self"}, "last_finalization_error": null, "latest_revision": null,
        "livemode": false, "metadata": {}, "next_payment_attempt": null, "number": null, "on_behalf_of": null,
        "parent": {"quote_details": null, "type": "subscription_details",
            "subscription_details": {"metadata": field("metadata"), "subscription": field("id")}},
        "payment_settings": {"default_mandate": null, "payment_method_options": null, "payment_method_types": null},
        "period_end": end, "period_start": start, "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0, "receipt_number": null, "rendering": null, "shipping_cost": null,
        "shipping_details": null, "starting_balance": 0, "statement_descriptor": null, "status": status,
        "status_transitions": {"finalized_at": now, "marked_uncollectible_at": null, "paid_at": paid_at,
            "voided_at": null},
        "subtotal": total, "subtotal_excluding_tax": total, "test_clock": null, "total": total,
        "total_discount_amounts": [], "total_excluding_tax": total, "total_pretax_credit_amounts": [],
        "total_taxes": [], "webhooks_delivered_at": now});
    let number = format!("{}-0001", id.chars().skip(3).take(8).collect::<String>().to_uppercase());
    if let Some(map) = out.as_object_mut() {
        map.insert("number".into(), json!(number));
        map.insert("lines".into(), lines_list(&id, lines));
    }
    out
}

fn lines_list(invoice: &str, lines: Vec<Value>) -> Value {
    let count = lines.len();
    let mut list = list(&format!("/v1/invoices/{invoice}/lines"), lines);
    if let Some(map) = list.as_object_mut() {
        map.insert("total_count".into(), json!(count));
    }
    list
}

fn invoice_line(invoice: &str, sub: &Value, item: &Value) -> Value {
    let get = |path: &str| item.pointer(path).cloned().unwrap_or(Value::Null);
    let quantity = item.get("quantity").and_then(Value::as_i64).unwrap_or(1);
    let amount = item.pointer("/price/unit_amount").and_then(Value::as_i64).unwrap_or(0) * quantity;
    json!({"id": new_id("il_"), "object": "line_item", "amount": amount, "currency": CURRENCY,
        "description": format!("{quantity} × {} (at {amount} / month)", get("/price/nickname").as_str().unwrap_or("")),
        "discount_amounts": [], "discountable": true, "discounts": [], "invoice": invoice, "livemode": false,
        "metadata": {},
        "parent": {"invoice_item_details": null, "type": "subscription_item_details",
            "subscription_item_details": {"invoice_item": null, "proration": false,
                "proration_details": {"credited_items": null}, "subscription": sub.get("id"),
                "subscription_item": get("/id")}},
        "period": {"end": get("/current_period_end"), "start": get("/current_period_start")},
        "pretax_credit_amounts": [],
        "pricing": {"price_details": {"price": get("/price/id"), "product": get("/price/product")},
            "type": "price_details", "unit_amount_decimal": get("/price/unit_amount_decimal")},
        "quantity": quantity, "subtotal": amount, "taxes": []})
}

/// The span of the items' current periods.
pub fn period(items: &[Value]) -> (i64, i64) {
    let at = |key: &'static str| items.iter().filter_map(move |i| i.get(key).and_then(Value::as_i64));
    (
        at("current_period_start").min().unwrap_or(0),
        at("current_period_end").max().unwrap_or(0),
    )
}

/// `{key: old[key]}` for each top-level key whose value differs in `new`: Stripe's
/// `data.previous_attributes`.
pub fn previous_attributes(old: &Value, new: &Value) -> Value {
    let (Some(old), Some(new)) = (old.as_object(), new.as_object()) else {
        return json!({});
    };
    let changed: Map<String, Value> = old
        .iter()
        .filter(|(key, value)| new.get(*key) != Some(*value))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(changed)
}
