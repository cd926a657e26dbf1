//! Users and tenants in PostgreSQL: provisioning on first login (user plus personal tenant on the
//! free plan), updates on later logins.

use sqlx::{PgConnection, Row};
use uuid::Uuid;

/// A user as the token minting needs it.
#[derive(Debug, Clone)]
pub struct User {
    pub id: Uuid,
    pub ajax_user_id: String,
    pub role: String,
    pub status: String,
    pub tenant_id: Uuid,
}

impl User {
    pub fn is_suspended(&self) -> bool {
        self.status == "suspended"
    }
}

fn user_from_row(row: &sqlx::postgres::PgRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: row.try_get("id")?,
        ajax_user_id: row.try_get("ajax_user_id")?,
        role: row.try_get("role")?,
        status: row.try_get("status")?,
        tenant_id: row.try_get("tenant_id")?,
    })
}

macro_rules! user_columns {
    () => {
        "id, ajax_user_id, role, status, tenant_id"
    };
}

/// Creates the user and a personal tenant on first login, or records the login of a known user.
/// Runs inside the caller's transaction so a later failure provisions nothing.
pub async fn sync_on_login(
    conn: &mut PgConnection,
    ajax_user_id: &str,
    email: &str,
) -> Result<(User, bool), sqlx::Error> {
    let existing = sqlx::query(concat!(
        "update users set email = $2, last_login_at = now(), updated_at = now() where ajax_user_id = $1 returning ",
        user_columns!()
    ))
    .bind(ajax_user_id)
    .bind(email)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = existing {
        return Ok((user_from_row(&row)?, false));
    }
    let tenant_id = Uuid::now_v7();
    sqlx::query("insert into tenants (id, name, kind, plan) values ($1, $2, 'personal', 'free')")
        .bind(tenant_id)
        .bind(email)
        .execute(&mut *conn)
        .await?;
    // A concurrent first login of the same user loses the race on the unique key and reads the winner.
    let row = sqlx::query(concat!(
        "insert into users (id, ajax_user_id, email, tenant_id, last_login_at) values ($1, $2, $3, $4, now()) ",
        "on conflict (ajax_user_id) do update set email = excluded.email, last_login_at = now(), updated_at = now() ",
        "returning ",
        user_columns!()
    ))
    .bind(Uuid::now_v7())
    .bind(ajax_user_id)
    .bind(email)
    .bind(tenant_id)
    .fetch_one(&mut *conn)
    .await?;
    let user = user_from_row(&row)?;
    if user.tenant_id != tenant_id {
        sqlx::query("delete from tenants where id = $1")
            .bind(tenant_id)
            .execute(&mut *conn)
            .await?;
        return Ok((user, false));
    }
    Ok((user, true))
}

/// A user by our id.
pub async fn by_id(conn: &mut PgConnection, id: Uuid) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query(concat!("select ", user_columns!(), " from users where id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

/// A user as admins and the user themself see them.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub ajax_user_id: String,
    pub role: String,
    pub status: String,
    pub tenant_id: Uuid,
    pub last_login_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// A tenant as admins and its users see it.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct TenantView {
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    pub plan: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

macro_rules! user_view_columns {
    () => {
        "id, email, ajax_user_id, role, status, tenant_id, last_login_at, created_at, updated_at"
    };
}

/// Users whose e-mail contains `query` (case-insensitive), newest first, one page, and the total.
pub async fn search(
    conn: &mut PgConnection,
    query: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<UserView>, i64), sqlx::Error> {
    let pattern = format!(
        "%{}%",
        query.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
    );
    let total: i64 = sqlx::query_scalar("select count(*) from users where email ilike $1")
        .bind(&pattern)
        .fetch_one(&mut *conn)
        .await?;
    let items = sqlx::query_as::<_, UserView>(concat!(
        "select ",
        user_view_columns!(),
        " from users where email ilike $1 order by created_at desc, id limit $2 offset $3"
    ))
    .bind(&pattern)
    .bind(limit)
    .bind(offset)
    .fetch_all(&mut *conn)
    .await?;
    Ok((items, total))
}

pub async fn view(conn: &mut PgConnection, id: Uuid) -> Result<Option<UserView>, sqlx::Error> {
    sqlx::query_as::<_, UserView>(concat!("select ", user_view_columns!(), " from users where id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn tenant(conn: &mut PgConnection, id: Uuid) -> Result<Option<TenantView>, sqlx::Error> {
    sqlx::query_as::<_, TenantView>("select id, name, kind, plan, created_at, updated_at from tenants where id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Sets a user's status; `None` when there is no such user.
pub async fn set_status(conn: &mut PgConnection, id: Uuid, status: &str) -> Result<Option<UserView>, sqlx::Error> {
    sqlx::query_as::<_, UserView>(concat!(
        "update users set status = $2, updated_at = now() where id = $1 returning ",
        user_view_columns!()
    ))
    .bind(id)
    .bind(status)
    .fetch_optional(conn)
    .await
}

/// Moves a user to another tenant; `None` when there is no such user.
pub async fn move_to_tenant(conn: &mut PgConnection, id: Uuid, tenant: Uuid) -> Result<Option<UserView>, sqlx::Error> {
    sqlx::query_as::<_, UserView>(concat!(
        "update users set tenant_id = $2, updated_at = now() where id = $1 returning ",
        user_view_columns!()
    ))
    .bind(id)
    .bind(tenant)
    .fetch_optional(conn)
    .await
}

/// Creates an organisation tenant on the free plan.
pub async fn create_organisation(conn: &mut PgConnection, name: &str) -> Result<TenantView, sqlx::Error> {
    sqlx::query_as::<_, TenantView>(
        "insert into tenants (id, name, kind, plan) values ($1, $2, 'organisation', 'free')
         returning id, name, kind, plan, created_at, updated_at",
    )
    .bind(Uuid::now_v7())
    .bind(name)
    .fetch_one(conn)
    .await
}

/// Makes the already-synced user with this e-mail an admin; returns how many users matched.
pub async fn grant_admin(conn: &mut PgConnection, email: &str) -> Result<u64, sqlx::Error> {
    let matched: i64 = sqlx::query_scalar("select count(*) from users where lower(email) = lower($1)")
        .bind(email.trim())
        .fetch_one(&mut *conn)
        .await?;
    if matched != 1 {
        return Ok(u64::try_from(matched).unwrap_or(0));
    }
    sqlx::query("update users set role = 'admin', updated_at = now() where lower(email) = lower($1)")
        .bind(email.trim())
        .execute(conn)
        .await?;
    Ok(1)
}
