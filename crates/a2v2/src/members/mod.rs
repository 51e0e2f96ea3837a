//! Members of the workspace: who may sign in to the dashboard, and with which role.

pub mod command;
pub mod handlers;
pub mod invites;
pub mod manage;
pub mod roles;
pub mod rules;
pub mod session;
pub mod throttle;

use argon2::{
    Argon2,
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng},
};
use serde_json::{Value, json};
use sqlx::{AnyConnection, Row, any::AnyRow};

use crate::time_fmt::to_rfc3339;
pub use roles::Role;

pub const PASSWORD_MIN: usize = 12;
pub const PASSWORD_MAX: usize = 1024;

#[derive(Clone, Debug)]
pub struct Member {
    pub id: String,
    pub email: String,
    pub role: Role,
    pub created_at: i64,
}

impl Member {
    pub fn view(&self) -> Value {
        json!({
            "id": self.id,
            "email": self.email,
            "role": self.role.name(),
            "created_at": to_rfc3339(self.created_at),
        })
    }
}

pub fn from_row(row: &AnyRow) -> Result<Member, sqlx::Error> {
    let role: String = row.try_get("role")?;
    Ok(Member {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        role: Role::from_name(&role).unwrap_or(Role::Member),
        created_at: row.try_get("created_at")?,
    })
}

/// Why a new password is refused, if it is.
pub fn password_error(password: &str) -> Option<String> {
    let count = password.chars().count();
    if count < PASSWORD_MIN {
        return Some(format!("must be at least {PASSWORD_MIN} characters"));
    }
    if count > PASSWORD_MAX {
        return Some(format!("must be at most {PASSWORD_MAX} characters"));
    }
    None
}

/// Argon2id needs about 19 MiB and tens of milliseconds per call: at most this many run at
/// once, so a flood of sign-ins queues instead of exhausting memory.
fn argon2_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        tokio::sync::Semaphore::new(cores * 2)
    })
}

/// Argon2id hash; run it off the async threads, it is deliberately slow.
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    let _slot = argon2_slots().acquire().await?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|err| anyhow::anyhow!("hashing a password failed: {err}"))
    })
    .await?
}

/// Verifies `password` against `hash`; with no hash, spends the same time and fails, so that
/// unknown emails cannot be told apart by timing.
pub async fn verify_password(password: String, hash: Option<String>) -> bool {
    let Ok(_slot) = argon2_slots().acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || {
        let (hash, real) = match hash {
            Some(hash) => (hash, true),
            None => (dummy_hash(), false),
        };
        let matches = PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false);
        matches && real
    })
    .await
    .unwrap_or(false)
}

fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(b"no such member; never matches", &salt)
                .map(|h| h.to_string())
                .unwrap_or_default()
        })
        .clone()
}

pub async fn find_by_email(
    conn: &mut AnyConnection,
    email: &str,
) -> Result<Option<(Member, String)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, email, role, created_at, password_hash FROM members WHERE email_lower = $1",
    )
    .bind(email.trim().to_lowercase())
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|row| Ok((from_row(&row)?, row.try_get("password_hash")?)))
        .transpose()
}

pub async fn insert(
    conn: &mut AnyConnection,
    member: &Member,
    password_hash: &str,
) -> Result<(), sqlx::Error> {
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
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn count(conn: &mut AnyConnection) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) AS n FROM members")
        .fetch_one(conn)
        .await?
        .try_get("n")
}

const COLUMNS: &str = "id, email, role, created_at";

/// The member with `id`, if any.
pub async fn find(conn: &mut AnyConnection, id: &str) -> Result<Option<Member>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM members WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Up to `limit` members created after the member `after`, oldest first.
pub async fn list(
    conn: &mut AnyConnection,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Member>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM members WHERE id > $1 ORDER BY id LIMIT $2"
    ))
    .bind(after.unwrap_or(""))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

pub async fn count_owners(conn: &mut AnyConnection) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) AS n FROM members WHERE role = 'owner'")
        .fetch_one(conn)
        .await?
        .try_get("n")
}

/// Serialises changes to members for the rest of the transaction, on both back ends: writing
/// the workspace row takes SQLite's write lock, and a row lock on PostgreSQL. Without it two
/// owners removing each other at once could both see another owner left.
pub async fn lock_workspace(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE workspace SET name = name WHERE id = 'default'")
        .execute(conn)
        .await
        .map(|_| ())
}

/// Creates the workspace row unless it exists; true when it was created.
pub async fn ensure_workspace(
    conn: &mut AnyConnection,
    name: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO workspace (id, name, created_at) SELECT 'default', $1, $2 \
         WHERE NOT EXISTS (SELECT 1 FROM workspace WHERE id = 'default')",
    )
    .bind(name)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn set_role(
    conn: &mut AnyConnection,
    id: &str,
    role: Role,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE members SET role = $1, updated_at = $2 WHERE id = $3")
        .bind(role.name())
        .bind(now)
        .bind(id)
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn set_password_hash(
    conn: &mut AnyConnection,
    id: &str,
    password_hash: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE members SET password_hash = $1, updated_at = $2 WHERE id = $3")
        .bind(password_hash)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Ends the member's sessions, except the one whose token hash is `keep`; returns how many.
pub async fn end_sessions(
    conn: &mut AnyConnection,
    member_id: &str,
    keep: Option<&str>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM sessions WHERE member_id = $1 AND token_hash <> $2")
        .bind(member_id)
        .bind(keep.unwrap_or(""))
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// Deletes the member; their sessions go with them.
pub async fn delete(conn: &mut AnyConnection, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM members WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
        .map(|_| ())
}
