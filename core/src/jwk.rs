//! The JSON Web Key Set the control plane publishes at `/.well-known/jwks.json` and the proxy reads:
//! Ed25519 public keys (`kty: OKP`, `crv: Ed25519`, RFC 8037), each named by its `kid`.

use serde::{Deserialize, Serialize};

/// One public key of the set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// The public key, base64url without padding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    pub kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

impl Jwk {
    /// An Ed25519 signing key's public half, as published.
    pub fn ed25519(kid: impl Into<String>, x_base64url: impl Into<String>) -> Self {
        Self {
            kty: "OKP".into(),
            crv: Some("Ed25519".into()),
            x: Some(x_base64url.into()),
            kid: kid.into(),
            alg: Some("EdDSA".into()),
            use_: Some("sig".into()),
        }
    }

    /// The key's `x` when it is an Ed25519 signature key; `None` for anything else.
    pub fn ed25519_x(&self) -> Option<&str> {
        let is_ed25519 = self.kty == "OKP" && self.crv.as_deref() == Some("Ed25519");
        let for_signing = self.use_.as_deref().is_none_or(|u| u == "sig");
        let alg_ok = self.alg.as_deref().is_none_or(|a| a == "EdDSA");
        (is_ed25519 && for_signing && alg_ok)
            .then_some(self.x.as_deref())
            .flatten()
    }
}

/// The whole set: `{"keys": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ed25519_signature_keys_are_usable() {
        assert_eq!(Jwk::ed25519("k1", "abc").ed25519_x(), Some("abc"));
        let mut rsa = Jwk::ed25519("k2", "abc");
        rsa.kty = "RSA".into();
        assert_eq!(rsa.ed25519_x(), None);
        let mut enc = Jwk::ed25519("k3", "abc");
        enc.use_ = Some("enc".into());
        assert_eq!(enc.ed25519_x(), None);
    }

    #[test]
    fn set_round_trips_with_the_use_field_name() {
        let set = JwkSet {
            keys: vec![Jwk::ed25519("k1", "abc")],
        };
        let json = serde_json::to_string(&set).expect("json");
        assert!(json.contains("\"use\":\"sig\""), "{json}");
        assert_eq!(serde_json::from_str::<JwkSet>(&json).expect("parse"), set);
    }
}
