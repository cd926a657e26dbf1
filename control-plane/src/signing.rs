//! Ed25519 signing keys: created, rotated and retired in PostgreSQL (private halves sealed with
//! `ASF_SECRETS_KEY`), published as a JWKS, and used to sign access tokens.
//!
//! Rotation: a new key is published at once but signs only from `activates_at` (now + publish
//! ahead), so every proxy has seen it before the first token it signs arrives; older keys stay
//! published until every token they signed has expired (`retires_at`).

use std::sync::RwLock;
use std::time::{Duration, Instant};

use anyhow::Context;
use asf_core::jwk::Jwk;
use asf_core::secrets::SecretsKey;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::EncodingKey;
use sqlx::PgPool;

/// How long the signer trusts its cached choice of key before reading the table again.
const SIGNER_CACHE: Duration = Duration::from_secs(5);

fn sealing_context(kid: &str) -> String {
    format!("signing-key:{kid}")
}

/// Creates a key that signs from `activates_at`; returns its `kid`.
pub async fn create(db: &PgPool, secrets: &SecretsKey, activates_at: DateTime<Utc>) -> anyhow::Result<String> {
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut seed);
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    let der = signing.to_pkcs8_der().context("encoding the new key")?;
    let kid = format!("k{}", uuid::Uuid::now_v7().simple());
    let sealed = secrets.seal(&sealing_context(&kid), der.as_bytes());
    sqlx::query("insert into signing_keys (kid, public_key, private_key_sealed, activates_at) values ($1, $2, $3, $4)")
        .bind(&kid)
        .bind(signing.verifying_key().as_bytes().as_slice())
        .bind(sealed)
        .bind(activates_at)
        .execute(db)
        .await?;
    Ok(kid)
}

/// Makes sure a key can sign now (first start: one is created, active at once).
pub async fn ensure_active(db: &PgPool, secrets: &SecretsKey) -> anyhow::Result<()> {
    let active: Option<String> = sqlx::query_scalar(
        "select kid from signing_keys where activates_at <= now() and (retires_at is null or retires_at > now()) limit 1",
    )
    .fetch_optional(db)
    .await?;
    if active.is_none() {
        let kid = create(db, secrets, Utc::now()).await?;
        tracing::info!(%kid, "created the first signing key");
    }
    Ok(())
}

/// Adds a new key (published now, signing after `publish_ahead`) and schedules every older key's
/// retirement for when the last token it can have signed has expired.
pub async fn rotate(
    db: &PgPool,
    secrets: &SecretsKey,
    publish_ahead: Duration,
    access_ttl: Duration,
) -> anyhow::Result<String> {
    let activates_at = Utc::now() + publish_ahead;
    let retires_at = activates_at + access_ttl + Duration::from_secs(120);
    let kid = create(db, secrets, activates_at).await?;
    sqlx::query("update signing_keys set retires_at = $1, updated_at = now() where kid <> $2 and retires_at is null")
        .bind(retires_at)
        .bind(&kid)
        .execute(db)
        .await?;
    Ok(kid)
}

/// Every key that is still published.
pub async fn published(db: &PgPool) -> Result<Vec<Jwk>, sqlx::Error> {
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "select kid, public_key from signing_keys where retires_at is null or retires_at > now() order by activates_at",
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(kid, public)| Jwk::ed25519(kid, URL_SAFE_NO_PAD.encode(public)))
        .collect())
}

/// Signs with the newest active key, cached for a few seconds.
pub struct Signer {
    db: PgPool,
    secrets: SecretsKey,
    cached: RwLock<Option<(Instant, String, EncodingKey)>>,
}

impl Signer {
    pub fn new(db: PgPool, secrets: SecretsKey) -> Self {
        Self {
            db,
            secrets,
            cached: RwLock::new(None),
        }
    }

    /// The key to sign with now and its `kid`.
    pub async fn current(&self) -> anyhow::Result<(String, EncodingKey)> {
        if let Ok(guard) = self.cached.read()
            && let Some((at, kid, key)) = guard.as_ref()
            && at.elapsed() < SIGNER_CACHE
        {
            return Ok((kid.clone(), key.clone()));
        }
        let (kid, sealed): (String, String) = sqlx::query_as(
            "select kid, private_key_sealed from signing_keys
             where activates_at <= now() and (retires_at is null or retires_at > now())
             order by activates_at desc limit 1",
        )
        .fetch_optional(&self.db)
        .await?
        .context("no active signing key")?;
        let der = self
            .secrets
            .open(&sealing_context(&kid), &sealed)
            .context("opening the signing key")?;
        let key = EncodingKey::from_ed_der(&der);
        if let Ok(mut guard) = self.cached.write() {
            *guard = Some((Instant::now(), kid.clone(), key.clone()));
        }
        Ok((kid, key))
    }
}
