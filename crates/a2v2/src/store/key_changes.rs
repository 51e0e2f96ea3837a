//! The key change feed between processes: a counter (`key_version`), a log of changed key ids
//! per version (`key_changes`), and on PostgreSQL `NOTIFY` on the channel [`CHANNEL`].

use sqlx::{Connection, Row, postgres::PgListener};

use super::{Backend, Db, Store, StoreError};
use crate::model::now_ms;

pub const CHANNEL: &str = "a2v2_keys";

/// How long logged changes are kept; a server that fell further behind reloads every key.
pub const KEEP_CHANGES_MS: i64 = 60 * 60 * 1000;

/// Records a change of `key_ids` in the transaction: bumps the change counter, logs the ids
/// under the new version, prunes log rows older than [`KEEP_CHANGES_MS`], and on PostgreSQL
/// notifies the other nodes when the transaction commits.
///
/// The counter row stays locked until the transaction ends, so versions are handed out in
/// commit order: once a version is visible, every smaller one is too.
pub async fn announce(db: &mut impl Db, key_ids: &[&str]) -> Result<(), StoreError> {
    if key_ids.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let version: i64 = sqlx::query_scalar(
        "UPDATE key_version SET version = version + 1 WHERE id = 1 RETURNING version",
    )
    .fetch_one(db.raw())
    .await?;
    let notify = db.backend() == Backend::Postgres;
    for key_id in key_ids {
        sqlx::query(
            "INSERT INTO key_changes (version, key_id, changed_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(version)
        .bind(*key_id)
        .bind(now)
        .execute(db.raw())
        .await?;
        if notify {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(*key_id)
                .execute(db.raw())
                .await?;
        }
    }
    sqlx::query("DELETE FROM key_changes WHERE changed_at < $1")
        .bind(now - KEEP_CHANGES_MS)
        .execute(db.raw())
        .await?;
    Ok(())
}

/// The current value of the change counter.
pub async fn current_version(db: &mut impl Db) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT version FROM key_version WHERE id = 1")
            .fetch_one(db.raw())
            .await?,
    )
}

/// The logged `(version, key_id)` rows with `seen < version <= current`, oldest first.
pub async fn between(
    db: &mut impl Db,
    seen: i64,
    current: i64,
) -> Result<Vec<(i64, String)>, StoreError> {
    let rows = sqlx::query(
        "SELECT version, key_id FROM key_changes WHERE version > $1 AND version <= $2 \
         ORDER BY version",
    )
    .bind(seen)
    .bind(current)
    .fetch_all(db.raw())
    .await?;
    Ok(rows
        .iter()
        .map(|row| Ok::<_, sqlx::Error>((row.try_get("version")?, row.try_get("key_id")?)))
        .collect::<Result<_, _>>()?)
}

/// A connection outside the pool, for background work that must neither wait for nor be
/// counted among the connections requests use.
pub struct SideConnection {
    inner: sqlx::AnyConnection,
    backend: Backend,
}

impl super::sealed::Raw for SideConnection {
    fn raw(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.inner
    }

    fn backend(&self) -> Backend {
        self.backend
    }
}

impl Db for SideConnection {}

impl SideConnection {
    pub async fn close(self) {
        let _ = self.inner.close().await;
    }
}

/// Notified key ids on PostgreSQL.
pub struct Listener(PgListener);

impl Listener {
    /// A round trip on the listening connection.
    pub async fn ping(&mut self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&mut self.0).await?;
        Ok(())
    }

    /// The next changed key id; `None` when the connection dropped and was re-established,
    /// so that notifications sent meanwhile are lost.
    pub async fn recv(&mut self) -> Result<Option<String>, StoreError> {
        Ok(self
            .0
            .try_recv()
            .await?
            .map(|notification| notification.payload().to_owned()))
    }
}

impl Store {
    pub async fn side_connection(&self) -> Result<SideConnection, StoreError> {
        use sqlx::Executor;
        let mut inner = sqlx::AnyConnection::connect(&self.primary.url()).await?;
        if self.backend == Backend::Sqlite {
            inner.execute("PRAGMA busy_timeout = 10000;").await?;
        }
        Ok(SideConnection {
            inner,
            backend: self.backend,
        })
    }

    /// Listens for key changes of other nodes; `None` on SQLite, which has no notifications
    /// (the polled counter covers it).
    pub async fn listen_key_changes(&self) -> Result<Option<Listener>, StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut listener = PgListener::connect(&self.primary.url()).await?;
        listener.listen(CHANNEL).await?;
        Ok(Some(Listener(listener)))
    }
}
