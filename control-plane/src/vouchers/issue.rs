//! Generating, listing and revoking vouchers. Codes are shown once, at generation; the database
//! keeps only their SHA-256.

use asf_core::voucher_code;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::ApiError;

/// Most codes generated in one batch.
pub const MAX_BATCH: u32 = 10_000;

/// A batch to generate, as `POST /v1/admin/vouchers` and `asf-control vouchers generate` take it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub count: u32,
    pub plan: String,
    pub duration_days: u32,
    /// The day after which the codes can no longer be redeemed (`YYYY-MM-DD`, end of that day UTC,
    /// or an RFC 3339 time).
    pub redeem_by: Option<String>,
    pub max_redemptions: Option<u32>,
}

/// A generated batch: the codes, shown this once.
#[derive(Debug, Serialize)]
pub struct Batch {
    pub batch_id: Uuid,
    pub codes: Vec<String>,
}

fn redeem_by(text: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|day| day.and_hms_opt(23, 59, 59))
        .map(|t| t.and_utc())
        .ok_or_else(|| ApiError::Unprocessable("redeem_by must be a date (YYYY-MM-DD) or an RFC 3339 time".into()))
}

/// Generates and stores a batch.
pub async fn generate(db: &PgPool, request: &BatchRequest, admin: Option<Uuid>) -> Result<Batch, ApiError> {
    if !(1..=MAX_BATCH).contains(&request.count) {
        return Err(ApiError::Unprocessable(format!(
            "count must be between 1 and {MAX_BATCH}"
        )));
    }
    if !(1..=3660).contains(&request.duration_days) {
        return Err(ApiError::Unprocessable(
            "duration_days must be between 1 and 3660".into(),
        ));
    }
    let max_redemptions = request.max_redemptions.unwrap_or(1);
    if !(1..=1_000_000).contains(&max_redemptions) {
        return Err(ApiError::Unprocessable(
            "max_redemptions must be between 1 and 1000000".into(),
        ));
    }
    let redeem_by = request.redeem_by.as_deref().map(redeem_by).transpose()?;
    if redeem_by.is_some_and(|t| t <= Utc::now()) {
        return Err(ApiError::Unprocessable("redeem_by must be in the future".into()));
    }
    let mut tx = db.begin().await?;
    let known: Option<String> = sqlx::query_scalar("select name from plans where name = $1")
        .bind(&request.plan)
        .fetch_optional(&mut *tx)
        .await?;
    if known.is_none() {
        return Err(ApiError::Unprocessable(format!("no plan named {:?}", request.plan)));
    }
    let batch_id = Uuid::now_v7();
    let codes: Vec<_> = (0..request.count).map(|_| voucher_code::generate()).collect();
    let ids: Vec<Uuid> = codes.iter().map(|_| Uuid::now_v7()).collect();
    let hashes: Vec<Vec<u8>> = codes.iter().map(|c| c.lookup_hash().to_vec()).collect();
    // A collision of 60 random bits within the table is astronomically unlikely; the unique index
    // would refuse it (and roll the batch back) rather than hand out a shared code.
    sqlx::query(
        "insert into vouchers (id, code_hash, plan, duration_days, redeem_by, max_redemptions, batch_id, created_by) \
         select id, hash, $3, $4, $5, $6, $7, $8 from unnest($1::uuid[], $2::bytea[]) as t(id, hash)",
    )
    .bind(&ids)
    .bind(&hashes)
    .bind(&request.plan)
    .bind(i32::try_from(request.duration_days).unwrap_or(i32::MAX))
    .bind(redeem_by)
    .bind(i32::try_from(max_redemptions).unwrap_or(i32::MAX))
    .bind(batch_id)
    .bind(admin)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Batch {
        batch_id,
        codes: codes.iter().map(|c| c.display()).collect(),
    })
}

/// A voucher as admins see it (never its code).
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct VoucherView {
    pub id: Uuid,
    pub batch_id: Uuid,
    pub plan: String,
    pub duration_days: i32,
    pub redeem_by: Option<DateTime<Utc>>,
    pub max_redemptions: i32,
    pub redemptions: i32,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Filters for listing vouchers.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub batch: Option<Uuid>,
    pub plan: Option<String>,
    /// `active`, `used_up`, `expired` or `revoked`.
    pub status: Option<String>,
    /// Finds the voucher of one code (e.g. one a customer reads out on the phone).
    pub code: Option<String>,
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

pub async fn list(db: &PgPool, query: &ListQuery) -> Result<Vec<VoucherView>, ApiError> {
    let per_page = query.per_page.unwrap_or(50);
    if !(1..=200).contains(&per_page) {
        return Err(ApiError::BadRequest("per_page must be between 1 and 200".into()));
    }
    let page = query.page.unwrap_or(1).max(1);
    if let Some(status) = &query.status
        && !["active", "used_up", "expired", "revoked"].contains(&status.as_str())
    {
        return Err(ApiError::BadRequest(
            "status must be active, used_up, expired or revoked".into(),
        ));
    }
    let code_hash = query
        .code
        .as_deref()
        .map(|c| {
            voucher_code::parse(c)
                .map(|c| c.lookup_hash().to_vec())
                .map_err(|e| ApiError::BadRequest(e.to_string()))
        })
        .transpose()?;
    Ok(sqlx::query_as(
        "select id, batch_id, plan, duration_days, redeem_by, max_redemptions, redemptions, revoked_at, created_at \
         from vouchers where ($1::uuid is null or batch_id = $1) and ($2::text is null or plan = $2) \
         and ($3::bytea is null or code_hash = $3) \
         and ($4::text is null \
              or ($4 = 'revoked' and revoked_at is not null) \
              or ($4 = 'used_up' and revoked_at is null and redemptions >= max_redemptions) \
              or ($4 = 'expired' and revoked_at is null and redemptions < max_redemptions and redeem_by <= now()) \
              or ($4 = 'active' and revoked_at is null and redemptions < max_redemptions \
                  and (redeem_by is null or redeem_by > now()))) \
         order by created_at desc, id limit $5 offset $6",
    )
    .bind(query.batch)
    .bind(&query.plan)
    .bind(code_hash)
    .bind(&query.status)
    .bind(per_page)
    .bind((page - 1) * per_page)
    .fetch_all(db)
    .await?)
}

/// Revokes a voucher (idempotent); `None` when there is no such voucher. Grants already made stay.
pub async fn revoke(db: &PgPool, id: Uuid) -> Result<Option<VoucherView>, ApiError> {
    Ok(sqlx::query_as(
        "update vouchers set revoked_at = coalesce(revoked_at, now()) where id = $1 returning \
         id, batch_id, plan, duration_days, redeem_by, max_redemptions, redemptions, revoked_at, created_at",
    )
    .bind(id)
    .fetch_optional(db)
    .await?)
}
