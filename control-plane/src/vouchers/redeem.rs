//! Redeeming a voucher: exactly once per allowed use, even under concurrent attempts (the voucher
//! row and the redeeming user are locked for the transaction), with a clear refusal for each way it
//! can fail, attempts limited per user and per IP, and the tenant's plan recomputed and published
//! at once.
//!
//! Policy against paid plans: a voucher never lowers a plan. While the tenant's current plan is
//! higher than the voucher's, or its subscription already pays for the voucher's plan, the
//! redemption is refused (409 `voucher_plan_not_higher`) and the code stays unused. A voucher for
//! the plan the tenant already holds through vouchers extends it: its time starts when the last
//! grant of that plan ends.

use std::net::IpAddr;

use asf_core::voucher_code::{self, CodeError};
use axum::http::StatusCode;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::accounts::User;
use crate::error::ApiError;
use crate::notifications;
use crate::state::AppState;

/// What a redemption granted.
#[derive(Debug, Serialize)]
pub struct Redeemed {
    pub plan: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct VoucherRow {
    id: Uuid,
    plan: String,
    duration_days: i32,
    redeem_by: Option<DateTime<Utc>>,
    max_redemptions: i32,
    redemptions: i32,
    revoked_at: Option<DateTime<Utc>>,
}

fn refused(status: StatusCode, code: &'static str, message: &str) -> ApiError {
    ApiError::refused(status, code, message)
}

/// Counts an attempt against the user and the IP; refuses once either is over its hourly limit.
async fn count_attempt(state: &AppState, user: Uuid, ip: IpAddr) -> Result<(), ApiError> {
    let keys = &state.sessions.keys;
    let (user_key, ip_key) = (
        keys.voucher_attempts("user", &user.to_string()),
        keys.voucher_attempts("ip", &ip.to_string()),
    );
    let (user_count, ip_count, ttl): (u32, u32, i64) = redis::pipe()
        .cmd("INCR")
        .arg(&user_key)
        .cmd("INCR")
        .arg(&ip_key)
        .cmd("EXPIRE")
        .arg(&user_key)
        .arg(3600)
        .arg("NX")
        .ignore()
        .cmd("EXPIRE")
        .arg(&ip_key)
        .arg(3600)
        .arg("NX")
        .ignore()
        .cmd("TTL")
        .arg(&user_key)
        .query_async(&mut state.sessions.redis.clone())
        .await?;
    let limits = &state.settings.vouchers;
    if user_count > limits.attempts_per_user_hour || ip_count > limits.attempts_per_ip_hour {
        return Err(ApiError::TooManyRequests {
            message: "Too many voucher attempts; try again later",
            retry_after_secs: u64::try_from(ttl).unwrap_or(3600).max(1),
        });
    }
    Ok(())
}

pub async fn redeem(state: &AppState, user: &User, raw_code: &str, ip: IpAddr) -> Result<Redeemed, ApiError> {
    count_attempt(state, user.id, ip).await?;
    let code = voucher_code::parse(raw_code).map_err(|e| match e {
        CodeError::CheckFailed => refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "voucher_mistyped",
            "This code is mistyped: please check each symbol",
        ),
        other => ApiError::refused(StatusCode::UNPROCESSABLE_ENTITY, "voucher_malformed", other.to_string()),
    })?;
    let mut tx = state.db.begin().await?;
    // One redemption per user and per tenant at a time: the lifetime cap holds, and grants of one
    // tenant chain one after another, under concurrency.
    // Tenant first, as every other path that locks both (a plan recompute locks the tenant, then
    // its notifications reference the users); `no key update` leaves foreign-key checks unblocked.
    sqlx::query("select id from tenants where id = $1 for no key update")
        .bind(user.tenant_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("select id from users where id = $1 for no key update")
        .bind(user.id)
        .execute(&mut *tx)
        .await?;
    let voucher: VoucherRow = sqlx::query_as(
        "select id, plan, duration_days, redeem_by, max_redemptions, redemptions, revoked_at \
         from vouchers where code_hash = $1 for update",
    )
    .bind(code.lookup_hash().as_slice())
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| refused(StatusCode::NOT_FOUND, "voucher_unknown", "No voucher has this code"))?;
    // Grants start and end on whole seconds, as plans change on whole seconds.
    let now = Utc::now().trunc_subsecs(0);
    if voucher.revoked_at.is_some() {
        return Err(refused(
            StatusCode::GONE,
            "voucher_revoked",
            "This voucher has been withdrawn",
        ));
    }
    if voucher.redeem_by.is_some_and(|t| t <= now) {
        return Err(refused(
            StatusCode::GONE,
            "voucher_expired",
            "This voucher can no longer be redeemed",
        ));
    }
    if voucher.redemptions >= voucher.max_redemptions {
        return Err(refused(
            StatusCode::CONFLICT,
            "voucher_used_up",
            "This voucher has already been used",
        ));
    }
    let (already, lifetime): (bool, i64) = sqlx::query_as(
        "select coalesce(bool_or(voucher_id = $2), false), count(*) from voucher_grants where user_id = $1",
    )
    .bind(user.id)
    .bind(voucher.id)
    .fetch_one(&mut *tx)
    .await?;
    if already {
        return Err(refused(
            StatusCode::CONFLICT,
            "voucher_already_redeemed",
            "You have already redeemed this voucher",
        ));
    }
    if lifetime >= i64::from(state.settings.vouchers.lifetime_cap) {
        return Err(refused(
            StatusCode::CONFLICT,
            "voucher_cap_reached",
            "You have redeemed as many vouchers as an account may",
        ));
    }
    // Decided on the plan in force (a lapsed subscription past its grace no longer counts).
    let (current_rank, voucher_rank, paid): (i32, i32, bool) = sqlx::query_as(
        "select cur.rank, v.rank, t.plan_source = 'subscription' from tenants t \
         join plans cur on cur.name = t.plan join plans v on v.name = $2 where t.id = $1",
    )
    .bind(user.tenant_id)
    .bind(&voucher.plan)
    .fetch_one(&mut *tx)
    .await?;
    if current_rank > voucher_rank || (paid && current_rank >= voucher_rank) {
        return Err(refused(
            StatusCode::CONFLICT,
            "voucher_plan_not_higher",
            "Your current plan already includes this voucher's plan; keep the code for later",
        ));
    }
    let chained: Option<DateTime<Utc>> = sqlx::query_scalar(
        "select max(ends_at) from voucher_grants where tenant_id = $1 and plan = $2 and ends_at > now()",
    )
    .bind(user.tenant_id)
    .bind(&voucher.plan)
    .fetch_one(&mut *tx)
    .await?;
    let starts_at = chained.map_or(now, |end| end.max(now));
    let ends_at = starts_at + Duration::days(i64::from(voucher.duration_days));
    sqlx::query("update vouchers set redemptions = redemptions + 1 where id = $1")
        .bind(voucher.id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "insert into voucher_grants (id, voucher_id, tenant_id, user_id, plan, starts_at, ends_at) \
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(Uuid::now_v7())
    .bind(voucher.id)
    .bind(user.tenant_id)
    .bind(user.id)
    .bind(&voucher.plan)
    .bind(starts_at)
    .bind(ends_at)
    .execute(&mut *tx)
    .await?;
    let body = format!(
        "Your voucher gives the {} plan until {}.",
        voucher.plan,
        ends_at.format("%Y-%m-%d %H:%M UTC")
    );
    notifications::notify_tenant(
        &mut tx,
        user.tenant_id,
        "voucher_redeemed",
        "Voucher redeemed",
        &body,
        None,
    )
    .await?;
    // Due at once: if the recompute below fails, the worker applies the grant within a second.
    sqlx::query("update tenants set plan_changes_at = now() where id = $1")
        .bind(user.tenant_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    state.plans.recompute_or_defer(user.tenant_id).await;
    Ok(Redeemed {
        plan: voucher.plan,
        starts_at,
        ends_at,
    })
}
