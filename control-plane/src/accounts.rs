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
