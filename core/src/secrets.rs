//! Encryption of upstream secrets at rest: XChaCha20-Poly1305 under `ASF_SECRETS_KEY`, with the
//! Redis key as associated data so a sealed value cannot be moved to another user's key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const NONCE_LEN: usize = 24;

/// Why a secret could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretsError {
    #[error("secrets key must be base64 of exactly 32 bytes")]
    BadKey,
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed value does not open with this key")]
    WrongKeyOrTampered,
}

/// The 32-byte key that seals Ajax tokens and from which purpose-bound subkeys are derived.
/// `Debug` never shows it.
#[derive(Clone)]
pub struct SecretsKey {
    cipher: XChaCha20Poly1305,
    raw: [u8; 32],
}

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsKey(<redacted>)")
    }
}

impl SecretsKey {
    /// Parses the base64 form used in `ASF_SECRETS_KEY`.
    pub fn from_base64(text: &str) -> Result<Self, SecretsError> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| SecretsError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SecretsError::BadKey)?;
        Ok(Self {
            cipher: XChaCha20Poly1305::new(&key.into()),
            raw: key,
        })
    }

    /// A key for one purpose (e.g. the audit chain), derived with HMAC-SHA256 so that it reveals
    /// nothing about this key or about the subkeys of other purposes.
    pub fn subkey(&self, purpose: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.raw).expect("HMAC takes keys of any length");
        mac.update(b"asf-subkey:");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A fresh random key, base64-encoded (for sandbox mode and tests).
    pub fn generate_base64() -> String {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        STANDARD.encode(key)
    }

    /// Encrypts `plaintext` bound to `context` (the Redis key it will be stored under).
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plaintext,
            aad: context.as_bytes(),
        };
        // Encryption with a valid key and nonce only fails for messages beyond 256 GiB.
        let ciphertext = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), payload)
            .unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        STANDARD.encode(out)
    }

    /// Decrypts a value sealed by [`SecretsKey::seal`] under the same `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, SecretsError> {
        let bytes = STANDARD.decode(sealed).map_err(|_| SecretsError::Malformed)?;
        if bytes.len() < NONCE_LEN + 16 {
            return Err(SecretsError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let payload = Payload {
            msg: ciphertext,
            aad: context.as_bytes(),
        };
        self.cipher
            .decrypt(XNonce::from_slice(nonce), payload)
            .map_err(|_| SecretsError::WrongKeyOrTampered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretsKey {
        SecretsKey::from_base64(&SecretsKey::generate_base64()).expect("key")
    }

    #[test]
    fn sealed_value_opens_with_same_key_and_context() {
        let key = key();
        let sealed = key.seal("asf:ajax-session:u1", b"token");
        assert_eq!(key.open("asf:ajax-session:u1", &sealed).expect("open"), b"token");
        assert!(!sealed.contains("token"));
    }

    #[test]
    fn sealed_value_does_not_open_under_another_key_or_context() {
        let key = key();
        let sealed = key.seal("ctx-a", b"token");
        assert_eq!(key.open("ctx-b", &sealed), Err(SecretsError::WrongKeyOrTampered));
        assert_eq!(
            self::key().open("ctx-a", &sealed),
            Err(SecretsError::WrongKeyOrTampered)
        );
        assert_eq!(key.open("ctx-a", "!!"), Err(SecretsError::Malformed));
    }

    #[test]
    fn subkeys_differ_by_purpose_and_by_key() {
        let key = key();
        assert_eq!(key.subkey("audit-chain"), key.subkey("audit-chain"));
        assert_ne!(key.subkey("audit-chain"), key.subkey("other"));
        assert_ne!(key.subkey("audit-chain"), self::key().subkey("audit-chain"));
    }

    #[test]
    fn keys_of_the_wrong_length_are_refused() {
        assert_eq!(SecretsKey::from_base64("c2hvcnQ=").err(), Some(SecretsError::BadKey));
        assert!(!format!("{:?}", key()).contains('='));
    }
}
