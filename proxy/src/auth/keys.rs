//! Verification keys: one HS256 secret, or the control plane's Ed25519 keys (JWKS) fetched over
//! HTTP, cached by `kid`, refreshed periodically and refetched on an unknown `kid` (at most once per
//! `min_refetch`). A bad key set never replaces a good one and never crashes the proxy.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use asf_core::jwk::JwkSet;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::Mutex;

use crate::metrics::Metrics;

/// What a key lookup found.
pub enum KeyLookup {
    Found(Algorithm, DecodingKey),
    /// The `kid` is not in the current set (after a refetch, if one was allowed).
    UnknownKid,
    /// No key set has ever been loaded: the control plane is not reachable yet.
    Unavailable,
}

/// Where verification keys come from.
pub enum KeySource {
    Hs256(DecodingKey),
    Jwks(Box<JwksCache>),
}

impl KeySource {
    /// The key for a token's `kid` (ignored in HS256 mode).
    pub async fn lookup(&self, kid: Option<&str>) -> KeyLookup {
        match self {
            Self::Hs256(key) => KeyLookup::Found(Algorithm::HS256, key.clone()),
            Self::Jwks(cache) => match kid {
                Some(kid) => cache.lookup(kid).await,
                None => KeyLookup::UnknownKid,
            },
        }
    }
}

/// The control plane's published keys, by `kid`.
pub struct JwksCache {
    url: String,
    client: reqwest::Client,
    keys: RwLock<Option<HashMap<String, DecodingKey>>>,
    last_attempt: Mutex<Option<Instant>>,
    min_refetch: Duration,
    metrics: Metrics,
}

/// Why a key set was not taken.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("fetching the key set failed: {0}")]
    Fetch(String),
    #[error("the key set is malformed: {0}")]
    Malformed(String),
}

impl JwksCache {
    pub fn new(url: String, min_refetch: Duration, metrics: Metrics) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            url,
            client,
            keys: RwLock::new(None),
            last_attempt: Mutex::new(None),
            min_refetch,
            metrics,
        }
    }

    fn cached(&self, kid: &str) -> Option<Option<DecodingKey>> {
        let guard = self.keys.read().ok()?;
        guard.as_ref().map(|keys| keys.get(kid).cloned())
    }

    async fn lookup(&self, kid: &str) -> KeyLookup {
        if let Some(Some(key)) = self.cached(kid) {
            return KeyLookup::Found(Algorithm::EdDSA, key);
        }
        self.refetch_if_allowed().await;
        match self.cached(kid) {
            Some(Some(key)) => KeyLookup::Found(Algorithm::EdDSA, key),
            Some(None) => KeyLookup::UnknownKid,
            None => KeyLookup::Unavailable,
        }
    }

    /// Refetches unless another fetch ran within `min_refetch` (single-flight: concurrent callers
    /// wait for the one fetch under way and then read its result).
    async fn refetch_if_allowed(&self) {
        let mut last = self.last_attempt.lock().await;
        if last.is_some_and(|at| at.elapsed() < self.min_refetch) {
            return;
        }
        *last = Some(Instant::now());
        let _ = self.refresh().await;
    }

    /// Fetches the key set and replaces the cached one when it is well-formed.
    pub async fn refresh(&self) -> Result<usize, JwksError> {
        let result = self.fetch().await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(JwksError::Fetch(_)) => "fetch_error",
            Err(JwksError::Malformed(_)) => "malformed",
        };
        self.metrics.jwks_refreshes.with_label_values(&[outcome]).inc();
        match result {
            Ok(keys) => {
                let count = keys.len();
                if let Ok(mut guard) = self.keys.write() {
                    *guard = Some(keys);
                }
                Ok(count)
            }
            Err(e) => {
                tracing::warn!(url = %self.url, error = %e, "JWKS refresh failed; keeping the keys we have");
                Err(e)
            }
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, JwksError> {
        let response = self
            .client
            .get(&self.url)
            .send()
            .await
            .map_err(|e| JwksError::Fetch(e.to_string()))?;
        if !response.status().is_success() {
            return Err(JwksError::Fetch(format!("status {}", response.status())));
        }
        let body = response.bytes().await.map_err(|e| JwksError::Fetch(e.to_string()))?;
        parse_key_set(&body)
    }

    /// Refreshes every `interval` until the process stops.
    pub async fn run_refresh_loop(&self, interval: Duration) {
        loop {
            if self.refresh().await.is_err() && !self.is_ready() {
                // Not ready yet: retry soon, so the proxy starts serving as soon as keys exist.
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// Whether a key set has been loaded.
    pub fn is_ready(&self) -> bool {
        self.keys.read().map(|g| g.is_some()).unwrap_or(false)
    }
}

/// Parses a JWKS document into decoding keys. Keys that are not Ed25519 signature keys are
/// skipped; an Ed25519 key whose `x` is not 32 bytes makes the whole set malformed.
pub fn parse_key_set(body: &[u8]) -> Result<HashMap<String, DecodingKey>, JwksError> {
    let set: JwkSet = serde_json::from_slice(body).map_err(|e| JwksError::Malformed(e.to_string()))?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(x) = jwk.ed25519_x() else { continue };
        let raw = URL_SAFE_NO_PAD
            .decode(x)
            .map_err(|_| JwksError::Malformed(format!("kid {}: x is not base64url", jwk.kid)))?;
        if raw.len() != 32 {
            return Err(JwksError::Malformed(format!("kid {}: x is not 32 bytes", jwk.kid)));
        }
        let key = DecodingKey::from_ed_components(x).map_err(|e| JwksError::Malformed(e.to_string()))?;
        keys.insert(jwk.kid.clone(), key);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_keys_are_taken_and_others_skipped() {
        let body = br#"{"keys":[
            {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"a"},
            {"kty":"RSA","n":"abc","e":"AQAB","kid":"r"}]}"#;
        let keys = parse_key_set(body).expect("set");
        assert!(keys.contains_key("a"));
        assert!(!keys.contains_key("r"));
    }

    #[test]
    fn short_keys_and_garbage_make_the_set_malformed() {
        let short = br#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA","kid":"a"}]}"#;
        assert!(matches!(parse_key_set(short), Err(JwksError::Malformed(_))));
        assert!(matches!(parse_key_set(b"not json"), Err(JwksError::Malformed(_))));
    }
}
