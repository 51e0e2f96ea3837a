//! The `member_invites` table: keyed hashes of one-time invite tokens.

use sqlx::Row;

use super::{Db, StoreError};

pub async fn insert(
    db: &mut impl Db,
    token_hash: &str,
    member_id: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO member_invites (token_hash, member_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(member_id)
    .bind(now)
    .bind(expires_at)
    .execute(db.raw())
    .await?;
    Ok(())
}

/// Uses up the invite: the member it was for, if the token is known and not expired.
pub async fn take(
    db: &mut impl Db,
    token_hash: &str,
    now: i64,
) -> Result<Option<String>, StoreError> {
    let row = sqlx::query(
        "SELECT member_id FROM member_invites WHERE token_hash = $1 AND expires_at > $2",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(db.raw())
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let done = sqlx::query("DELETE FROM member_invites WHERE token_hash = $1")
        .bind(token_hash)
        .execute(db.raw())
        .await?;
    // Zero rows: a concurrent accept used it first.
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    Ok(Some(row.try_get("member_id")?))
}

/// Voids the member's pending invites; returns how many.
pub async fn delete_for_member(db: &mut impl Db, member_id: &str) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM member_invites WHERE member_id = $1")
        .bind(member_id)
        .execute(db.raw())
        .await?;
    Ok(done.rows_affected())
}

/// Deletes expired invites; returns how many.
pub async fn delete_expired(db: &mut impl Db, now: i64) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM member_invites WHERE expires_at <= $1")
        .bind(now)
        .execute(db.raw())
        .await?;
    Ok(done.rows_affected())
}
