//! The `sessions` table: dashboard sessions, stored as keyed hashes of their tokens.

use sqlx::Row;

use super::{Db, StoreError, members::from_row as member_from_row};
use crate::model::member::Member;

pub async fn insert(
    db: &mut impl Db,
    token_hash: &str,
    member_id: &str,
    csrf_token: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sessions (token_hash, member_id, csrf_token, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(member_id)
    .bind(csrf_token)
    .bind(now)
    .bind(expires_at)
    .execute(db.raw())
    .await?;
    Ok(())
}

/// The member of a live session, the session's CSRF token, and when its member last entered
/// their password (signing in counts).
pub async fn find_live(
    db: &mut impl Db,
    token_hash: &str,
    now: i64,
) -> Result<Option<(Member, String, i64)>, StoreError> {
    let row = sqlx::query(
        "SELECT m.id, m.email, m.role, m.created_at, s.csrf_token, \
         COALESCE(s.confirmed_at, s.created_at) AS confirmed_at FROM sessions s \
         JOIN members m ON m.id = s.member_id WHERE s.token_hash = $1 AND s.expires_at > $2",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(db.raw())
    .await?;
    Ok(row
        .map(|row| {
            Ok::<_, sqlx::Error>((
                member_from_row(&row)?,
                row.try_get("csrf_token")?,
                row.try_get("confirmed_at")?,
            ))
        })
        .transpose()?)
}

/// Notes that the session's member entered their password again at `now`.
pub async fn confirm(db: &mut impl Db, token_hash: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE sessions SET confirmed_at = $1 WHERE token_hash = $2")
        .bind(now)
        .bind(token_hash)
        .execute(db.raw())
        .await?;
    Ok(())
}

/// The CSRF token of a session, if it still exists.
pub async fn csrf_token(db: &mut impl Db, token_hash: &str) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT csrf_token FROM sessions WHERE token_hash = $1")
        .bind(token_hash)
        .fetch_optional(db.raw())
        .await?;
    Ok(row.map(|row| row.try_get("csrf_token")).transpose()?)
}

pub async fn delete(db: &mut impl Db, token_hash: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(token_hash)
        .execute(db.raw())
        .await?;
    Ok(())
}

/// Ends the member's sessions, except the one whose token hash is `keep`; returns how many.
pub async fn end_for_member(
    db: &mut impl Db,
    member_id: &str,
    keep: Option<&str>,
) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM sessions WHERE member_id = $1 AND token_hash <> $2")
        .bind(member_id)
        .bind(keep.unwrap_or(""))
        .execute(db.raw())
        .await?;
    Ok(done.rows_affected())
}

/// Deletes expired sessions; returns how many.
pub async fn delete_expired(db: &mut impl Db, now: i64) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(db.raw())
        .await?;
    Ok(done.rows_affected())
}
