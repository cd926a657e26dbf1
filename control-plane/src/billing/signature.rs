//! Stripe's webhook signature: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]`, each `v1` an
//! HMAC-SHA256 under the endpoint secret of `"{t}." + body`. A match (constant-time) within the
//! timestamp tolerance is required before anything is stored.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Stripe's default tolerance between the signed timestamp and now.
pub const TOLERANCE_SECS: i64 = 300;

/// Why a webhook was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing or malformed")]
    Malformed,
    #[error("no signature matches")]
    Mismatch,
    #[error("the signature's timestamp is outside the tolerance")]
    Stale,
}

/// Checks `header` for `body` under `secret` at Unix time `now`.
pub fn verify(header: Option<&str>, body: &[u8], secret: &str, now: i64) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Malformed)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => candidates.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let mac = || {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    };
    if !candidates.iter().any(|candidate| mac().verify_slice(candidate).is_ok()) {
        return Err(SignatureError::Mismatch);
    }
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    Ok(())
}

/// A signature header for `body`, as Stripe makes it.
#[cfg(test)]
pub fn sign(body: &[u8], secret: &str, timestamp: i64) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test";

    #[test]
    fn a_fresh_matching_signature_passes() {
        let header = sign(b"{}", SECRET, 1000);
        assert_eq!(verify(Some(&header), b"{}", SECRET, 1100), Ok(()));
        // During a secret rotation Stripe sends several v1 values: any may match.
        let rotated = format!(
            "t=1000,v1={},{}",
            "00".repeat(32),
            header.split(',').nth(1).unwrap_or("")
        );
        assert_eq!(verify(Some(&rotated), b"{}", SECRET, 1000), Ok(()));
    }

    #[test]
    fn tampering_staleness_and_garbage_are_refused() {
        let header = sign(b"{}", SECRET, 1000);
        assert_eq!(
            verify(Some(&header), b"{ }", SECRET, 1000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(&header), b"{}", "whsec_other", 1000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(verify(Some(&header), b"{}", SECRET, 1301), Err(SignatureError::Stale));
        assert_eq!(verify(None, b"{}", SECRET, 1000), Err(SignatureError::Malformed));
        assert_eq!(
            verify(Some("t=1000"), b"{}", SECRET, 1000),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(Some("v1=ab"), b"{}", SECRET, 1000),
            Err(SignatureError::Malformed)
        );
    }
}
