//! Invitations: an owner or admin adds a member without choosing their password; the member
//! sets it once with the token shown at creation. Only a keyed hash of the token is stored.

use sqlx::{AnyConnection, Row};

use crate::crypto::KeySecrets;

/// How long an invite token can be used.
pub const INVITE_TTL_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// The stored form of an invite token; the prefix keeps it apart from session token hashes.
pub fn token_hash(secrets: &KeySecrets, token: &str) -> String {
    secrets.session_hash(&format!("invite:{token}"))
}

pub async fn insert(
    conn: &mut AnyConnection,
    token_hash: &str,
    member_id: &str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let expires_at = now + INVITE_TTL_MS;
    sqlx::query(
        "INSERT INTO member_invites (token_hash, member_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(member_id)
    .bind(now)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(expires_at)
}

/// Uses up the invite: the member it was for, if the token is known and not expired.
pub async fn take(
    conn: &mut AnyConnection,
    token_hash: &str,
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT member_id FROM member_invites WHERE token_hash = $1 AND expires_at > $2",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let done = sqlx::query("DELETE FROM member_invites WHERE token_hash = $1")
        .bind(token_hash)
        .execute(&mut *conn)
        .await?;
    // Zero rows: a concurrent accept used it first.
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    Ok(Some(row.try_get("member_id")?))
}
