//! Who may call: the `X-Api-Key` check (in constant time), and the Ajax sessions: session and
//! refresh tokens, their lifetimes, rotation on refresh, and the test knobs that expire them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use asf_core::ajax_wire::{SessionTriple, headers};
use axum::http::HeaderMap;
use subtle::ConstantTimeEq;

/// Whether the request carries the configured API key.
pub fn api_key_ok(expected: &str, request: &HeaderMap) -> bool {
    request
        .get(headers::API_KEY)
        .is_some_and(|given| bool::from(given.as_bytes().ct_eq(expected.as_bytes())))
}

/// A fresh random token: 16 bytes as 32 hex digits, like Ajax's.
pub fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

#[derive(Debug)]
struct Session {
    user_id: String,
    expires_at: Instant,
}

#[derive(Debug)]
struct Refresh {
    user_id: String,
    /// The session issued together with this refresh token: refreshing ends it.
    session_token: String,
    expires_at: Instant,
}

/// Every live session and refresh token.
#[derive(Debug)]
pub struct Sessions {
    session_ttl: Duration,
    refresh_ttl: Duration,
    sessions: HashMap<String, Session>,
    refreshes: HashMap<String, Refresh>,
    /// Expired entries are swept when the maps outgrow this, so sweeping costs O(1) amortised.
    sweep_at: usize,
}

const MIN_SWEEP: usize = 1024;

impl Sessions {
    pub fn new(session_ttl: Duration, refresh_ttl: Duration) -> Self {
        Self {
            session_ttl,
            refresh_ttl,
            sessions: HashMap::new(),
            refreshes: HashMap::new(),
            sweep_at: MIN_SWEEP,
        }
    }

    /// Opens a session for a user who just logged in.
    pub fn issue(&mut self, user_id: &str, now: Instant) -> SessionTriple {
        self.sweep(now);
        let triple = SessionTriple {
            session_token: random_hex(),
            user_id: user_id.to_owned(),
            refresh_token: random_hex(),
        };
        self.sessions.insert(
            triple.session_token.clone(),
            Session {
                user_id: user_id.to_owned(),
                expires_at: now + self.session_ttl,
            },
        );
        self.refreshes.insert(
            triple.refresh_token.clone(),
            Refresh {
                user_id: user_id.to_owned(),
                session_token: triple.session_token.clone(),
                expires_at: now + self.refresh_ttl,
            },
        );
        triple
    }

    /// The user a session token belongs to, while it is live.
    pub fn user_of(&self, session_token: &str, now: Instant) -> Option<&str> {
        self.sessions
            .get(session_token)
            .filter(|s| s.expires_at > now)
            .map(|s| s.user_id.as_str())
    }

    /// Rotates: the refresh token and the session issued with it end, a new triple is issued.
    /// `None` when the token is unknown, used, expired or another user's.
    pub fn refresh(&mut self, user_id: &str, refresh_token: &str, now: Instant) -> Option<SessionTriple> {
        let entry = self.refreshes.get(refresh_token)?;
        if entry.user_id != user_id {
            return None;
        }
        let entry = self.refreshes.remove(refresh_token)?;
        self.sessions.remove(&entry.session_token);
        (entry.expires_at > now).then(|| self.issue(user_id, now))
    }

    /// Ends every session of a user now (their refresh tokens still work). Returns how many.
    pub fn expire_sessions(&mut self, user_id: &str, now: Instant) -> usize {
        let mut count = 0;
        for session in self.sessions.values_mut() {
            if session.user_id == user_id && session.expires_at > now {
                session.expires_at = now;
                count += 1;
            }
        }
        count
    }

    /// Ends every session and refresh token of a user now: only a new login helps. Returns how
    /// many refresh tokens ended.
    pub fn expire_refreshes(&mut self, user_id: &str, now: Instant) -> usize {
        self.expire_sessions(user_id, now);
        let before = self.refreshes.len();
        self.refreshes.retain(|_, r| r.user_id != user_id);
        before - self.refreshes.len()
    }

    fn sweep(&mut self, now: Instant) {
        if self.sessions.len() + self.refreshes.len() < self.sweep_at {
            return;
        }
        self.sessions.retain(|_, s| s.expires_at > now);
        self.refreshes.retain(|_, r| r.expires_at > now);
        self.sweep_at = (2 * (self.sessions.len() + self.refreshes.len())).max(MIN_SWEEP);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn sessions() -> Sessions {
        Sessions::new(Duration::from_secs(900), Duration::from_secs(7 * 86_400))
    }

    #[test]
    fn the_api_key_must_match_exactly() {
        let mut request = HeaderMap::new();
        assert!(!api_key_ok("key", &request));
        request.insert(headers::API_KEY, HeaderValue::from_static("kex"));
        assert!(!api_key_ok("key", &request));
        request.insert(headers::API_KEY, HeaderValue::from_static("key2"));
        assert!(!api_key_ok("key", &request));
        request.insert(headers::API_KEY, HeaderValue::from_static("key"));
        assert!(api_key_ok("key", &request));
    }

    #[test]
    fn a_session_lives_for_its_ttl() {
        let now = Instant::now();
        let mut sessions = sessions();
        let triple = sessions.issue("U1", now);
        assert_eq!(triple.session_token.len(), 32);
        assert!(triple.session_token.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(sessions.user_of(&triple.session_token, now), Some("U1"));
        let later = now + Duration::from_secs(900);
        assert_eq!(sessions.user_of(&triple.session_token, later), None);
    }

    #[test]
    fn refresh_rotates_both_tokens_and_a_used_refresh_token_is_dead() {
        let now = Instant::now();
        let mut sessions = sessions();
        let first = sessions.issue("U1", now);
        let second = sessions.refresh("U1", &first.refresh_token, now).expect("rotated");
        assert_ne!(second.session_token, first.session_token);
        assert_ne!(second.refresh_token, first.refresh_token);
        assert_eq!(sessions.user_of(&first.session_token, now), None);
        assert_eq!(sessions.user_of(&second.session_token, now), Some("U1"));
        assert!(sessions.refresh("U1", &first.refresh_token, now).is_none());
    }

    #[test]
    fn a_refresh_token_is_refused_for_another_user_and_after_its_ttl() {
        let now = Instant::now();
        let mut sessions = sessions();
        let triple = sessions.issue("U1", now);
        assert!(sessions.refresh("U2", &triple.refresh_token, now).is_none());
        let late = now + Duration::from_secs(7 * 86_400);
        assert!(sessions.refresh("U1", &triple.refresh_token, late).is_none());
    }

    #[test]
    fn expiring_sessions_keeps_refresh_working_and_expiring_refresh_does_not() {
        let now = Instant::now();
        let mut sessions = sessions();
        let triple = sessions.issue("U1", now);
        let other = sessions.issue("U2", now);
        assert_eq!(sessions.expire_sessions("U1", now), 1);
        assert_eq!(sessions.user_of(&triple.session_token, now), None);
        assert_eq!(sessions.user_of(&other.session_token, now), Some("U2"));
        let renewed = sessions
            .refresh("U1", &triple.refresh_token, now)
            .expect("refresh still works");
        assert_eq!(sessions.expire_refreshes("U1", now), 1);
        assert_eq!(sessions.user_of(&renewed.session_token, now), None);
        assert!(sessions.refresh("U1", &renewed.refresh_token, now).is_none());
    }

    #[test]
    fn expired_entries_are_swept_as_the_maps_grow() {
        let now = Instant::now();
        let mut sessions = Sessions::new(Duration::from_secs(1), Duration::from_secs(1));
        for _ in 0..MIN_SWEEP {
            sessions.issue("U1", now);
        }
        let later = now + Duration::from_secs(2);
        sessions.issue("U1", later);
        assert_eq!(sessions.sessions.len(), 1);
        assert_eq!(sessions.refreshes.len(), 1);
    }
}
