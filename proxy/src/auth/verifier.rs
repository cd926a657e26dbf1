//! Verifies access tokens: algorithm pinned to the configured mode (no `none`, no mix-ups),
//! `exp`/`nbf`/`iss`/`aud` checked with a leeway. A token whose signature was verified once is
//! cached until it expires (an Ed25519 check costs tens of microseconds); revocation is not this
//! module's job and is checked on every request by the admission step.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use asf_core::claims::AccessClaims;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};

use super::keys::{KeyLookup, KeySource};
use crate::config::AuthConfig;

/// Most tokens kept in the verified cache; when full, expired entries go first, then all.
const CACHE_CAPACITY: usize = 100_000;

/// Why a token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// Bad signature, wrong algorithm, wrong issuer/audience, malformed, unknown key.
    Invalid(&'static str),
    Expired,
    /// No verification keys are available yet (the control plane has not been reached).
    KeysUnavailable,
}

/// Token verification with its keys and cache.
pub struct Verifier {
    keys: KeySource,
    algorithm: Algorithm,
    validation: Validation,
    leeway: i64,
    cache: Mutex<HashMap<String, Arc<AccessClaims>>>,
}

impl Verifier {
    pub fn new(keys: KeySource, config: &AuthConfig) -> Self {
        let algorithm = match keys {
            KeySource::Hs256(_) => Algorithm::HS256,
            KeySource::Jwks(_) => Algorithm::EdDSA,
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = config.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        let leeway = i64::try_from(config.leeway.as_secs()).unwrap_or(0);
        Self {
            keys,
            algorithm,
            validation,
            leeway,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The key source (for the JWKS refresh loop).
    pub fn keys(&self) -> &KeySource {
        &self.keys
    }

    /// Verifies `token` at Unix time `now`.
    pub async fn verify(&self, token: &str, now: i64) -> Result<Arc<AccessClaims>, AuthFailure> {
        if let Some(claims) = self.cached(token) {
            return self.check_times(&claims, now).map(|_| claims);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthFailure::Invalid("malformed token"))?;
        if header.alg != self.algorithm {
            return Err(AuthFailure::Invalid("algorithm not allowed"));
        }
        let key = match self.keys.lookup(header.kid.as_deref()).await {
            KeyLookup::Found(alg, key) if alg == self.algorithm => key,
            KeyLookup::Found(..) | KeyLookup::UnknownKid => {
                return Err(AuthFailure::Invalid("unknown signing key"));
            }
            KeyLookup::Unavailable => return Err(AuthFailure::KeysUnavailable),
        };
        let data = jsonwebtoken::decode::<AccessClaims>(token, &key, &self.validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => AuthFailure::Expired,
            ErrorKind::ImmatureSignature => AuthFailure::Invalid("token not yet valid"),
            ErrorKind::InvalidIssuer => AuthFailure::Invalid("wrong issuer"),
            ErrorKind::InvalidAudience => AuthFailure::Invalid("wrong audience"),
            ErrorKind::InvalidSignature => AuthFailure::Invalid("bad signature"),
            _ => AuthFailure::Invalid("invalid token"),
        })?;
        let claims = Arc::new(data.claims);
        self.check_times(&claims, now)?;
        self.remember(token, claims.clone(), now);
        Ok(claims)
    }

    fn check_times(&self, claims: &AccessClaims, now: i64) -> Result<(), AuthFailure> {
        if claims.exp + self.leeway < now {
            return Err(AuthFailure::Expired);
        }
        if claims.nbf - self.leeway > now {
            return Err(AuthFailure::Invalid("token not yet valid"));
        }
        Ok(())
    }

    fn cached(&self, token: &str) -> Option<Arc<AccessClaims>> {
        self.cache.lock().ok()?.get(token).cloned()
    }

    fn remember(&self, token: &str, claims: Arc<AccessClaims>, now: i64) {
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        if cache.len() >= CACHE_CAPACITY {
            let leeway = self.leeway;
            cache.retain(|_, c| c.exp + leeway >= now);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(token.to_owned(), claims);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use asf_core::claims::Role;
    use base64::Engine;
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use jsonwebtoken::{DecodingKey, EncodingKey, Header};

    use super::*;
    use crate::config::AuthMode;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn config() -> AuthConfig {
        AuthConfig {
            mode: AuthMode::Hs256 {
                secret: SECRET.to_vec(),
            },
            issuer: "ajaxsecurflow".into(),
            audience: "ajax-api".into(),
            leeway: Duration::from_secs(5),
            jwks_refresh: Duration::from_secs(300),
            jwks_min_refetch: Duration::from_secs(5),
        }
    }

    fn claims(now: i64) -> AccessClaims {
        AccessClaims {
            sub: "u1".into(),
            uid: "A1".into(),
            tid: "t1".into(),
            role: Role::User,
            jti: "j1".into(),
            iat: now,
            nbf: now,
            exp: now + 900,
            iss: "ajaxsecurflow".into(),
            aud: "ajax-api".into(),
            sid: None,
        }
    }

    fn hs256_verifier() -> Verifier {
        let key = DecodingKey::from_secret(SECRET).expect("key");
        Verifier::new(KeySource::Hs256(key), &config())
    }

    fn sign_hs256(claims: &AccessClaims, secret: &[u8]) -> String {
        let key = EncodingKey::from_secret(secret).expect("key");
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).expect("sign")
    }

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64
    }

    #[tokio::test]
    async fn valid_token_is_accepted_and_then_served_from_cache() {
        let verifier = hs256_verifier();
        let token = sign_hs256(&claims(now()), SECRET);
        assert_eq!(verifier.verify(&token, now()).await.expect("valid").uid, "A1");
        assert!(verifier.cached(&token).is_some());
        // A cached token still expires on time.
        assert_eq!(
            verifier.verify(&token, now() + 2000).await.err(),
            Some(AuthFailure::Expired)
        );
    }

    #[tokio::test]
    async fn forged_expired_and_foreign_tokens_are_refused() {
        let verifier = hs256_verifier();
        let forged = sign_hs256(&claims(now()), b"another-secret-another-secret-xx");
        assert_eq!(
            verifier.verify(&forged, now()).await.err(),
            Some(AuthFailure::Invalid("bad signature"))
        );
        let mut old = claims(now() - 5000);
        old.exp = now() - 100;
        assert_eq!(
            verifier.verify(&sign_hs256(&old, SECRET), now()).await.err(),
            Some(AuthFailure::Expired)
        );
        let mut foreign = claims(now());
        foreign.aud = "elsewhere".into();
        assert_eq!(
            verifier.verify(&sign_hs256(&foreign, SECRET), now()).await.err(),
            Some(AuthFailure::Invalid("wrong audience"))
        );
        let mut future = claims(now());
        future.nbf = now() + 600;
        assert!(verifier.verify(&sign_hs256(&future, SECRET), now()).await.is_err());
    }

    #[tokio::test]
    async fn alg_none_and_algorithm_mismatch_are_refused() {
        let verifier = hs256_verifier();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = b64.encode(serde_json::to_vec(&claims(now())).expect("json"));
        let none = format!("{}.{payload}.", b64.encode(br#"{"alg":"none","typ":"JWT"}"#));
        assert!(matches!(
            verifier.verify(&none, now()).await,
            Err(AuthFailure::Invalid(_))
        ));

        let signing = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let der = signing.to_pkcs8_der().expect("der");
        let ed = jsonwebtoken::encode(
            &Header::new(Algorithm::EdDSA),
            &claims(now()),
            &EncodingKey::from_ed_der(der.as_bytes()),
        )
        .expect("sign");
        assert_eq!(
            verifier.verify(&ed, now()).await.err(),
            Some(AuthFailure::Invalid("algorithm not allowed"))
        );
    }
}
