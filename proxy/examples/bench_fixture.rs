//! Benchmark fixture: stores one user's (fake) Ajax session in Redis exactly as the control plane
//! does, and prints an HS256 access token for that user, so `bench/run.py` can drive the full
//! pipeline against a static upstream without a control plane or Ajax.
//!
//! Environment: REDIS_URL, ASF_REDIS_PREFIX, ASF_SECRETS_KEY, ASF_JWT_HS256_SECRET, BENCH_AJAX_USER_ID.
//! Prints one JSON line: {"token": "...", "uid": "..."}.

use asf_core::claims::{AccessClaims, DEFAULT_AUDIENCE, DEFAULT_ISSUER, Role};
use asf_core::keyspace::Keyspace;
use asf_core::secrets::SecretsKey;
use asf_core::session::AjaxSession;

fn var(name: &str) -> anyhow::Result<String> {
    std::env::var(name).map_err(|_| anyhow::anyhow!("{name} is required"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let keys = Keyspace::new(var("ASF_REDIS_PREFIX")?);
    let secrets = SecretsKey::from_base64(&var("ASF_SECRETS_KEY")?)?;
    let uid = var("BENCH_AJAX_USER_ID")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let user = "bench-user";
    let session = AjaxSession {
        session_token: "0123456789abcdef".into(),
        refresh_token: "fedcba9876543210".into(),
        ajax_user_id: uid.clone(),
        session_expires_at: now + 24 * 3600,
        refresh_expires_at: now + 7 * 24 * 3600,
    };
    let key = keys.ajax_session(user);
    let mut redis = redis::Client::open(var("REDIS_URL")?)?
        .get_multiplexed_async_connection()
        .await?;
    redis::cmd("SET")
        .arg(&key)
        .arg(session.seal(&secrets, &key))
        .arg("EX")
        .arg(24 * 3600)
        .query_async::<()>(&mut redis)
        .await?;
    let claims = AccessClaims {
        sub: user.into(),
        uid: uid.clone(),
        tid: "bench-tenant".into(),
        role: Role::User,
        jti: uuid::Uuid::new_v4().to_string(),
        iat: now,
        nbf: now,
        exp: now + 24 * 3600,
        iss: DEFAULT_ISSUER.into(),
        aud: DEFAULT_AUDIENCE.into(),
        sid: None,
    };
    let secret = var("ASF_JWT_HS256_SECRET")?;
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes())?,
    )?;
    println!("{}", serde_json::json!({"token": token, "uid": uid}));
    Ok(())
}
