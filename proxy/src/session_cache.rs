//! The last Ajax session seen for each recently active user, kept in memory so that while Redis is
//! down the proxy can still serve the users it was serving (with its local share of the budget),
//! and so that an unchanged sealed session is not decrypted again on every request.
//! Revocation cannot be checked then, but nothing can be revoked either: the control plane writes
//! revocations to the same Redis.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use asf_core::session::AjaxSession;

/// How long after its last admission through Redis a cached session may be used.
const FRESH_FOR: Duration = Duration::from_secs(15 * 60);
/// Most users remembered; past it, stale entries go first, then all.
const CAPACITY: usize = 100_000;

/// One user's entry: the sealed form as stored in Redis, what it opens to, and when it was admitted.
type Entry = (Arc<str>, Arc<AjaxSession>, Instant);

#[derive(Default)]
pub struct SessionCache {
    entries: Mutex<HashMap<String, Entry>>,
}

impl SessionCache {
    /// Remembers the session admitted for `user` just now, and the sealed form it came from.
    pub fn remember(&self, user: &str, sealed: &str, session: Arc<AjaxSession>) {
        let Ok(mut entries) = self.entries.lock() else { return };
        if entries.len() >= CAPACITY && !entries.contains_key(user) {
            entries.retain(|_, (_, _, at)| at.elapsed() < FRESH_FOR);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(user.to_owned(), (Arc::from(sealed), session, Instant::now()));
    }

    /// The session `sealed` opens to, if it is the one last seen for `user` (sealing is randomised,
    /// so an equal sealed form is the same stored session).
    pub fn opened(&self, user: &str, sealed: &str) -> Option<Arc<AjaxSession>> {
        let entries = self.entries.lock().ok()?;
        let (known, session, _) = entries.get(user)?;
        (known.as_ref() == sealed).then(|| session.clone())
    }

    /// The user's session if it was admitted recently and has not expired at Unix time `now`.
    pub fn recent(&self, user: &str, now: i64) -> Option<Arc<AjaxSession>> {
        let entries = self.entries.lock().ok()?;
        let (_, session, at) = entries.get(user)?;
        (at.elapsed() < FRESH_FOR && session.session_expires_at > now).then(|| session.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(expires: i64) -> Arc<AjaxSession> {
        Arc::new(AjaxSession {
            session_token: "s".into(),
            refresh_token: "r".into(),
            ajax_user_id: "A".into(),
            session_expires_at: expires,
            refresh_expires_at: expires + 100,
        })
    }

    #[test]
    fn recent_live_sessions_are_served_and_expired_ones_are_not() {
        let cache = SessionCache::default();
        cache.remember("u1", "sealed-1", session(2000));
        assert!(cache.recent("u1", 1000).is_some());
        assert!(cache.opened("u1", "sealed-1").is_some());
        assert!(
            cache.opened("u1", "sealed-2").is_none(),
            "another stored session is opened afresh"
        );
        assert!(cache.recent("u1", 3000).is_none(), "expired Ajax session");
        assert!(cache.recent("u2", 1000).is_none());
    }
}
