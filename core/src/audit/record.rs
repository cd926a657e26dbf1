//! One audit record: who did what, from where, what the gateway decided, and how it ended. The
//! same shape for proxy requests and control-plane events, so one table and one query serve both.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Longest path kept in a record; longer ones are cut (the shield refuses them anyway).
const MAX_PATH_CHARS: usize = 2048;
/// Longest detail kept in a record.
const MAX_DETAIL_CHARS: usize = 16 * 1024;

/// What kind of event a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A request the proxy answered.
    Request,
    Login,
    Refresh,
    Logout,
    Lockout,
    /// A change made through the admin API (with before/after in the detail).
    Admin,
    Voucher,
    Billing,
    /// An entry on the stream that could not be read as a record; its raw text is in the detail.
    Malformed,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Request,
        Kind::Login,
        Kind::Refresh,
        Kind::Logout,
        Kind::Lockout,
        Kind::Admin,
        Kind::Voucher,
        Kind::Billing,
        Kind::Malformed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Request => "request",
            Kind::Login => "login",
            Kind::Refresh => "refresh",
            Kind::Logout => "logout",
            Kind::Lockout => "lockout",
            Kind::Admin => "admin",
            Kind::Voucher => "voucher",
            Kind::Billing => "billing",
            Kind::Malformed => "malformed",
        }
    }
}

impl std::str::FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown audit record kind {s:?}"))
    }
}

/// One audit record. Field order is part of the hash (see [`AuditRecord::content_hash`]): add
/// fields at the end only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Unique per record (the proxy's request id; a fresh UUID for control-plane events).
    pub id: String,
    /// When the event happened, Unix milliseconds.
    pub at_ms: i64,
    pub kind: Kind,
    pub user_id: Option<String>,
    pub tenant_id: Option<String>,
    pub client_ip: Option<String>,
    pub method: Option<String>,
    /// Route template, e.g. `/user/{userId}/hubs/{hubId}/commands/arming`.
    pub route: Option<String>,
    /// The concrete path, without its query.
    pub path: Option<String>,
    /// Route class (`read`, `command`, ...).
    pub class: Option<String>,
    /// What the gateway decided: `forwarded`, `refused_auth`, `refused_shield`, `throttled`, `ok`, ...
    pub decision: String,
    /// Status answered to the client.
    pub status: i32,
    /// Status Ajax answered, when the request reached it.
    pub upstream_status: Option<i32>,
    pub queue_wait_ms: Option<i64>,
    pub latency_ms: Option<i64>,
    /// Extra facts as JSON text (an admin change's before and after, a login's e-mail, ...).
    pub detail: Option<String>,
}

impl AuditRecord {
    /// A record of `kind` happening now, with a fresh id; fill in the rest.
    pub fn new(kind: Kind, decision: impl Into<String>, status: i32) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            at_ms: unix_millis(),
            kind,
            user_id: None,
            tenant_id: None,
            client_ip: None,
            method: None,
            route: None,
            path: None,
            class: None,
            decision: decision.into(),
            status,
            upstream_status: None,
            queue_wait_ms: None,
            latency_ms: None,
            detail: None,
        }
    }

    /// Makes the record storable as text in PostgreSQL: no NUL characters, bounded path and detail.
    pub fn scrub(&mut self) {
        for field in [
            &mut self.user_id,
            &mut self.tenant_id,
            &mut self.client_ip,
            &mut self.method,
            &mut self.route,
            &mut self.class,
        ]
        .into_iter()
        .flatten()
        {
            scrub_text(field, MAX_PATH_CHARS);
        }
        scrub_text(&mut self.id, 128);
        scrub_text(&mut self.decision, 64);
        if let Some(path) = &mut self.path {
            scrub_text(path, MAX_PATH_CHARS);
        }
        if let Some(detail) = &mut self.detail {
            scrub_text(detail, MAX_DETAIL_CHARS);
        }
    }

    /// The canonical bytes of the record: its JSON with fields in declaration order.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        // Serializing plain strings, integers and options cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// SHA-256 of the canonical bytes.
    pub fn content_hash(&self) -> [u8; 32] {
        Sha256::digest(self.canonical_bytes()).into()
    }

    /// A record for a stream entry that could not be parsed: kept (never dropped), marked as such.
    pub fn malformed(stream_id: &str, raw: &str) -> Self {
        let mut record = Self::new(Kind::Malformed, "malformed", 0);
        record.id = format!("malformed:{stream_id}");
        record.detail = Some(serde_json::json!({ "raw": raw }).to_string());
        record.scrub();
        record
    }
}

fn scrub_text(text: &mut String, max_chars: usize) {
    if text.contains('\0') {
        *text = text.replace('\0', "\u{fffd}");
    }
    if text.len() > max_chars {
        let cut = text
            .char_indices()
            .nth(max_chars)
            .map_or(text.len(), |(index, _)| index);
        text.truncate(cut);
    }
}

/// Now, in Unix milliseconds.
pub fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> AuditRecord {
        let mut record = AuditRecord::new(Kind::Request, "forwarded", 200);
        record.user_id = Some("u1".into());
        record.path = Some("/api/user/0000A001/hubs".into());
        record
    }

    #[test]
    fn canonical_bytes_survive_a_json_round_trip() {
        let record = sample();
        let back: AuditRecord = serde_json::from_slice(&record.canonical_bytes()).expect("parse");
        assert_eq!(back, record);
        assert_eq!(back.content_hash(), record.content_hash());
    }

    #[test]
    fn any_change_changes_the_hash() {
        let record = sample();
        let mut changed = record.clone();
        changed.status = 201;
        assert_ne!(changed.content_hash(), record.content_hash());
        let mut changed = record.clone();
        changed.user_id = None;
        assert_ne!(changed.content_hash(), record.content_hash());
    }

    #[test]
    fn scrub_removes_nul_and_bounds_lengths() {
        let mut record = sample();
        record.path = Some(format!("/a\0b{}", "é".repeat(5000)));
        record.scrub();
        let path = record.path.expect("path");
        assert!(!path.contains('\0'));
        assert_eq!(path.chars().count(), MAX_PATH_CHARS);
    }

    #[test]
    fn missing_optional_fields_read_as_absent() {
        let record: AuditRecord =
            serde_json::from_str(r#"{"id":"x","at_ms":1,"kind":"login","decision":"ok","status":200}"#).expect("parse");
        assert_eq!(record.user_id, None);
        assert_eq!(record.kind, Kind::Login);
        assert_eq!("billing".parse::<Kind>(), Ok(Kind::Billing));
        assert!("nope".parse::<Kind>().is_err());
    }
}
