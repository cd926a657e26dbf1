//! Events: Stripe's envelope, the `Stripe-Signature` scheme, and the log of every event with its
//! delivery attempts (what `GET /_test/events` shows).

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// The version async-stripe 1.0.0-rc.10 pins (`stripe_shared::version::VERSION`); events carry it.
pub const API_VERSION: &str = "2026-09-30.endive";

/// An event to publish: its type, the object as it now stands, and for `*.updated` the changed
/// fields' previous values.
#[derive(Debug)]
pub struct Emit {
    pub kind: &'static str,
    pub object: Value,
    pub previous: Option<Value>,
}

impl Emit {
    pub fn new(kind: &'static str, object: &Value) -> Self {
        Self {
            kind,
            object: object.clone(),
            previous: None,
        }
    }
}

/// The event envelope, exactly as Stripe sends it.
pub fn envelope(id: &str, emit: &Emit, now: i64) -> Value {
    let mut data = json!({"object": emit.object});
    if let (Some(previous), Some(map)) = (&emit.previous, data.as_object_mut()) {
        map.insert("previous_attributes".into(), previous.clone());
    }
    json!({"id": id, "object": "event", "api_version": API_VERSION, "created": now, "data": data,
        "livemode": false, "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
        "type": emit.kind})
}

/// `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>`; the key is the whole secret
/// string, `whsec_` included, as Stripe does.
pub fn signature_header(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// One attempt to deliver an event: the HTTP status the endpoint answered, or why there was none.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub at: i64,
    pub outcome: Result<u16, String>,
}

/// An event as published, with its body as sent (pretty JSON, like Stripe's).
#[derive(Debug)]
struct Recorded {
    id: String,
    kind: &'static str,
    body: String,
    attempts: Vec<Attempt>,
}

/// Every event published so far, oldest first.
#[derive(Debug, Default)]
pub struct EventLog {
    events: Vec<Recorded>,
}

impl EventLog {
    pub fn push(&mut self, id: &str, kind: &'static str, body: String) {
        self.events.push(Recorded {
            id: id.to_owned(),
            kind,
            body,
            attempts: Vec::new(),
        });
    }

    /// The body of event `id`, if it exists.
    pub fn body(&self, id: &str) -> Option<String> {
        self.find(id).map(|e| e.body.clone())
    }

    pub fn record(&mut self, id: &str, attempt: Attempt) {
        if let Some(event) = self.events.iter_mut().find(|e| e.id == id) {
            event.attempts.push(attempt);
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.find(id).is_some()
    }

    fn find(&self, id: &str) -> Option<&Recorded> {
        self.events.iter().find(|e| e.id == id)
    }

    /// `{"object":"list","data":[{id, type, delivered, attempts:[{at, status|error}], event}]}`.
    pub fn view(&self) -> Value {
        let data: Vec<Value> = self
            .events
            .iter()
            .map(|e| {
                let attempts: Vec<Value> = e
                    .attempts
                    .iter()
                    .map(|a| match &a.outcome {
                        Ok(status) => json!({"at": a.at, "status": status}),
                        Err(error) => json!({"at": a.at, "error": error}),
                    })
                    .collect();
                let delivered = e.attempts.iter().any(|a| matches!(a.outcome, Ok(200..=299)));
                let event = serde_json::from_str::<Value>(&e.body).unwrap_or(Value::Null);
                json!({"id": e.id, "type": e.kind, "delivered": delivered, "attempts": attempts, "event": event})
            })
            .collect();
        json!({"object": "list", "data": data})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body_keyed_by_whole_secret() {
        // Reference value computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
        let header = signature_header("whsec_test", 1_700_000_000, r#"{"a":1}"#);
        assert_eq!(
            header,
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }

    #[test]
    fn envelope_has_stripe_fields_and_previous_attributes_only_when_given() {
        let mut emit = Emit::new("customer.subscription.updated", &json!({"id": "sub_1"}));
        let plain = envelope("evt_1", &emit, 5);
        assert_eq!(plain["api_version"], API_VERSION);
        assert_eq!(plain["pending_webhooks"], 1);
        assert!(plain["data"].get("previous_attributes").is_none());
        emit.previous = Some(json!({"status": "active"}));
        assert_eq!(
            envelope("evt_1", &emit, 5)["data"]["previous_attributes"]["status"],
            "active"
        );
    }
}
