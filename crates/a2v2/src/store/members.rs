//! The `members` and `workspace` tables.

use sqlx::{Row, any::AnyRow};

use super::{Db, StoreError};
use crate::model::member::{Member, Role};

const COLUMNS: &str = "id, email, role, created_at";

pub(super) fn from_row(row: &AnyRow) -> Result<Member, sqlx::Error> {
    let role: String = row.try_get("role")?;
    Ok(Member {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        role: Role::from_name(&role).unwrap_or(Role::Member),
        created_at: row.try_get("created_at")?,
    })
}

/// The member with this email (case-insensitively) and their password hash.
pub async fn find_by_email(
    db: &mut impl Db,
    email: &str,
) -> Result<Option<(Member, String)>, StoreError> {
    let row = sqlx::query(
        "SELECT id, email, role, created_at, password_hash FROM members WHERE email_lower = $1",
    )
    .bind(email.trim().to_lowercase())
    .fetch_optional(db.raw())
    .await?;
    Ok(row
        .map(|row| Ok::<_, sqlx::Error>((from_row(&row)?, row.try_get("password_hash")?)))
        .transpose()?)
}

/// Inserts a member; `Conflict(Unique)` when the email is taken, case-insensitively.
pub async fn insert(
    db: &mut impl Db,
    member: &Member,
    password_hash: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO members (id, email, email_lower, password_hash, role, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(&member.id)
    .bind(&member.email)
    .bind(member.email.to_lowercase())
    .bind(password_hash)
    .bind(member.role.name())
    .bind(member.created_at)
    .execute(db.raw())
    .await?;
    Ok(())
}

pub async fn count(db: &mut impl Db) -> Result<i64, StoreError> {
    Ok(sqlx::query("SELECT COUNT(*) AS n FROM members")
        .fetch_one(db.raw())
        .await?
        .try_get("n")?)
}

pub async fn count_owners(db: &mut impl Db) -> Result<i64, StoreError> {
    Ok(
        sqlx::query("SELECT COUNT(*) AS n FROM members WHERE role = 'owner'")
            .fetch_one(db.raw())
            .await?
            .try_get("n")?,
    )
}

/// The member `id`, or `NotFound`.
pub async fn get(db: &mut impl Db, id: &str) -> Result<Member, StoreError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM members WHERE id = $1"))
        .bind(id)
        .fetch_optional(db.raw())
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok(from_row(&row)?)
}

/// Up to `limit` members created after the member `after`, oldest first.
pub async fn list(
    db: &mut impl Db,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Member>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM members WHERE id > $1 ORDER BY id LIMIT $2"
    ))
    .bind(after.unwrap_or(""))
    .bind(limit)
    .fetch_all(db.raw())
    .await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

pub async fn set_role(db: &mut impl Db, id: &str, role: Role, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE members SET role = $1, updated_at = $2 WHERE id = $3")
        .bind(role.name())
        .bind(now)
        .bind(id)
        .execute(db.raw())
        .await?;
    Ok(())
}

pub async fn set_password_hash(
    db: &mut impl Db,
    id: &str,
    password_hash: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE members SET password_hash = $1, updated_at = $2 WHERE id = $3")
        .bind(password_hash)
        .bind(now)
        .bind(id)
        .execute(db.raw())
        .await?;
    Ok(())
}

/// Deletes the member; their sessions go with them.
pub async fn delete(db: &mut impl Db, id: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM members WHERE id = $1")
        .bind(id)
        .execute(db.raw())
        .await?;
    Ok(())
}

/// Serialises changes to members for the rest of the transaction, on both back ends: writing
/// the workspace row takes SQLite's write lock, and a row lock on PostgreSQL. Without it two
/// owners removing each other at once could both see another owner left.
pub async fn lock_workspace(db: &mut impl Db) -> Result<(), StoreError> {
    sqlx::query("UPDATE workspace SET name = name WHERE id = 'default'")
        .execute(db.raw())
        .await?;
    Ok(())
}

/// Creates the workspace row; `Conflict(Unique)` when it exists, so that of two concurrent
/// setups only one succeeds.
pub async fn create_workspace(db: &mut impl Db, name: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO workspace (id, name, created_at) VALUES ('default', $1, $2)")
        .bind(name)
        .bind(now)
        .execute(db.raw())
        .await?;
    Ok(())
}

/// Creates the workspace row unless it exists; true when it was created.
pub async fn ensure_workspace(db: &mut impl Db, name: &str, now: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO workspace (id, name, created_at) SELECT 'default', $1, $2 \
         WHERE NOT EXISTS (SELECT 1 FROM workspace WHERE id = 'default')",
    )
    .bind(name)
    .bind(now)
    .execute(db.raw())
    .await?;
    Ok(done.rows_affected() > 0)
}
