//! Our opaque refresh tokens: random, stored only as SHA-256 hashes, grouped in families (one per
//! login). Each use rotates the family's token; presenting a token the family already rotated away
//! is a theft signal and revokes the whole family.

use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

/// A fresh token (to hand out) and its hash (to store).
pub fn new_token() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let hash = hash(&token);
    (token, hash)
}

pub fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Starts a family for a login; returns its id.
pub async fn start_family(
    conn: &mut PgConnection,
    user_id: Uuid,
    token_hash: &[u8],
    expires_at: DateTime<Utc>,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query("insert into refresh_families (id, user_id, current_hash, expires_at) values ($1, $2, $3, $4)")
        .bind(id)
        .bind(user_id)
        .bind(token_hash)
        .bind(expires_at)
        .execute(conn)
        .await?;
    Ok(id)
}

/// What presenting a refresh token led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The token was current: the family now holds `new_hash`.
    Rotated { family_id: Uuid, user_id: Uuid },
    /// The token was already rotated away: the family is revoked.
    ReuseDetected { family_id: Uuid, user_id: Uuid },
    /// Unknown, expired or revoked.
    Refused,
}

/// A family as `rotate` reads it: id, user, expiry, revocation time.
type FamilyRow = (Uuid, Uuid, DateTime<Utc>, Option<DateTime<Utc>>);

/// Rotates the family whose current token hashes to `presented`, inside the caller's transaction
/// (the row is locked, so two concurrent refreshes with one token cannot both win).
pub async fn rotate(conn: &mut PgConnection, presented: &[u8], new_hash: &[u8]) -> Result<Rotation, sqlx::Error> {
    let current: Option<FamilyRow> = sqlx::query_as(
        "select id, user_id, expires_at, revoked_at from refresh_families where current_hash = $1 for update",
    )
    .bind(presented)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((family_id, user_id, expires_at, revoked_at)) = current {
        if revoked_at.is_some() || expires_at <= Utc::now() {
            return Ok(Rotation::Refused);
        }
        sqlx::query("insert into refresh_tokens_used (token_hash, family_id) values ($1, $2)")
            .bind(presented)
            .bind(family_id)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "update refresh_families set current_hash = $2, generation = generation + 1, updated_at = now() where id = $1",
        )
        .bind(family_id)
        .bind(new_hash)
        .execute(&mut *conn)
        .await?;
        return Ok(Rotation::Rotated { family_id, user_id });
    }
    let reused: Option<(Uuid, Uuid)> = sqlx::query_as(
        "select f.id, f.user_id from refresh_tokens_used u join refresh_families f on f.id = u.family_id
         where u.token_hash = $1 for update of f",
    )
    .bind(presented)
    .fetch_optional(&mut *conn)
    .await?;
    match reused {
        Some((family_id, user_id)) => {
            revoke_family(conn, family_id, "reuse").await?;
            Ok(Rotation::ReuseDetected { family_id, user_id })
        }
        None => Ok(Rotation::Refused),
    }
}

/// Revokes a family (logout, theft detection).
pub async fn revoke_family(conn: &mut PgConnection, family_id: Uuid, reason: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update refresh_families set revoked_at = coalesce(revoked_at, now()), revoked_reason = coalesce(revoked_reason, $2),
         updated_at = now() where id = $1",
    )
    .bind(family_id)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}
