//! The key change feed between processes: a counter (`key_version`), a log of changed key ids
//! per version (`key_changes`), on PostgreSQL `NOTIFY` on the channel [`CHANNEL`], and the
//! serving nodes' reports of the version they have applied (`key_nodes`).

use sqlx::{Connection, Row, postgres::PgListener};

use super::{Backend, Db, Store, StoreError};
use crate::model::now_ms;

pub const CHANNEL: &str = "a2v2_keys";

/// The notification that follows a version's key ids: `v:<version>`. A listener that has
/// applied the ids before it has applied the whole version.
const VERSION_MARK: &str = "v:";

/// What a notification on [`CHANNEL`] says.
#[derive(Debug, PartialEq, Eq)]
pub enum Notified {
    /// This key (or the incident switch) changed.
    Key(String),
    /// Every key change up to this version has been notified.
    Version(i64),
}

impl Notified {
    fn parse(payload: &str) -> Self {
        match payload
            .strip_prefix(VERSION_MARK)
            .and_then(|version| version.parse().ok())
        {
            Some(version) => Self::Version(version),
            None => Self::Key(payload.to_owned()),
        }
    }
}

/// How long logged changes are kept; a server that fell further behind reloads every key.
pub const KEEP_CHANGES_MS: i64 = 60 * 60 * 1000;

/// Records a change of `key_ids` in the transaction: bumps the change counter, logs the ids
/// under the new version, prunes log rows older than [`KEEP_CHANGES_MS`], and on PostgreSQL
/// notifies the other nodes when the transaction commits. Returns the new version (`None`
/// when nothing changed).
///
/// The counter row stays locked until the transaction ends, so versions are handed out in
/// commit order: once a version is visible, every smaller one is too.
pub async fn announce(db: &mut impl Db, key_ids: &[&str]) -> Result<Option<i64>, StoreError> {
    if key_ids.is_empty() {
        return Ok(None);
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
    if notify {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(format!("{VERSION_MARK}{version}"))
            .execute(db.raw())
            .await?;
    }
    sqlx::query("DELETE FROM key_changes WHERE changed_at < $1")
        .bind(now - KEEP_CHANGES_MS)
        .execute(db.raw())
        .await?;
    Ok(Some(version))
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

/// What a node reports: that it serves keys with every change up to `applied` in its cache,
/// and trusts that cache for `lease_ms` after each check. The time of the report is the
/// database's, so that nodes' clocks need not agree.
pub struct NodeReport<'a> {
    pub node_id: &'a str,
    pub applied: i64,
    pub lease_ms: i64,
}

/// The database's clock in unix milliseconds.
fn database_now(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        Backend::Sqlite => "CAST(unixepoch('subsec') * 1000 AS INTEGER)",
    }
}

fn report_statement(backend: Backend) -> String {
    format!(
        "INSERT INTO key_nodes (node_id, applied_version, seen_at, lease_ms) \
         VALUES ($1, $2, {now}, $3) ON CONFLICT (node_id) DO UPDATE \
         SET applied_version = excluded.applied_version, seen_at = excluded.seen_at, \
         lease_ms = excluded.lease_ms",
        now = database_now(backend)
    )
}

pub async fn report_node(db: &mut impl Db, report: &NodeReport<'_>) -> Result<(), StoreError> {
    let statement = report_statement(db.backend());
    sqlx::query(&statement)
        .bind(report.node_id)
        .bind(report.applied)
        .bind(report.lease_ms)
        .execute(db.raw())
        .await?;
    Ok(())
}

/// Removes a node that stopped serving keys.
pub async fn forget_node(db: &mut impl Db, node_id: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM key_nodes WHERE node_id = $1")
        .bind(node_id)
        .execute(db.raw())
        .await?;
    Ok(())
}

/// Removes the rows of nodes not heard from for `stale_ms` (crashed ones).
pub async fn prune_nodes(db: &mut impl Db, stale_ms: i64) -> Result<(), StoreError> {
    let statement = format!(
        "DELETE FROM key_nodes WHERE seen_at < {} - $1",
        database_now(db.backend())
    );
    sqlx::query(&statement)
        .bind(stale_ms)
        .execute(db.raw())
        .await?;
    Ok(())
}

/// The nodes other than `except` that have not yet applied `version` and may still serve
/// keys (heard from within their lease, plus `slack_ms`), with their leases.
pub async fn lagging_nodes(
    db: &mut impl Db,
    except: &str,
    version: i64,
    slack_ms: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    let statement = format!(
        "SELECT node_id, lease_ms FROM key_nodes \
         WHERE node_id <> $1 AND applied_version < $2 AND seen_at + lease_ms + $3 >= {} \
         ORDER BY node_id",
        database_now(db.backend())
    );
    let rows = sqlx::query(&statement)
        .bind(except)
        .bind(version)
        .bind(slack_ms)
        .fetch_all(db.raw())
        .await?;
    Ok(rows
        .iter()
        .map(|row| Ok::<_, sqlx::Error>((row.try_get("node_id")?, row.try_get("lease_ms")?)))
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

/// Notified key changes on PostgreSQL.
pub struct Listener(PgListener);

impl Listener {
    /// A round trip on the listening connection.
    pub async fn ping(&mut self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&mut self.0).await?;
        Ok(())
    }

    /// The next notification; `None` when the connection dropped and was re-established,
    /// so that notifications sent meanwhile are lost.
    pub async fn recv(&mut self) -> Result<Option<Notified>, StoreError> {
        Ok(self
            .0
            .try_recv()
            .await?
            .map(|notification| Notified::parse(notification.payload())))
    }

    /// [`report_node`] on the listening connection, which is at hand when a notified change
    /// has just been applied.
    pub async fn report_node(&mut self, report: &NodeReport<'_>) -> Result<(), StoreError> {
        let statement = report_statement(Backend::Postgres);
        sqlx::query(&statement)
            .bind(report.node_id)
            .bind(report.applied)
            .bind(report.lease_ms)
            .execute(&mut self.0)
            .await?;
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Reports, the lagging query and pruning, timed by the database's clock.
    async fn node_reports(url: &str) {
        use super::super::sealed::Raw as _;
        let store = Store::connect(url).await.unwrap();
        store.migrate().await.unwrap();
        let mut conn = store.conn().await.unwrap();
        let report = |node_id, applied| NodeReport {
            node_id,
            applied,
            lease_ms: 5_000,
        };
        report_node(&mut conn, &report("node_a", 3)).await.unwrap();
        report_node(&mut conn, &report("node_b", 7)).await.unwrap();
        let lagging = |version| {
            let store = store.clone();
            async move {
                let mut conn = store.conn().await.unwrap();
                lagging_nodes(&mut conn, "node_self", version, 1_000)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|(node_id, _)| node_id)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(lagging(5).await, ["node_a"]);
        assert_eq!(lagging(8).await, ["node_a", "node_b"]);
        report_node(&mut conn, &report("node_a", 8)).await.unwrap();
        assert_eq!(lagging(8).await, ["node_b"]);
        // A node not heard from for longer than its lease and the slack refuses keys anyway.
        sqlx::query("UPDATE key_nodes SET seen_at = seen_at - 6001 WHERE node_id = 'node_b'")
            .execute(conn.raw())
            .await
            .unwrap();
        assert!(lagging(8).await.is_empty());
        prune_nodes(&mut conn, 6_000).await.unwrap();
        forget_node(&mut conn, "node_a").await.unwrap();
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM key_nodes")
            .fetch_one(conn.raw())
            .await
            .unwrap();
        assert_eq!(left, 0);
    }

    #[tokio::test]
    async fn node_reports_on_sqlite() {
        super::super::scratch::on_sqlite(|url| async move { node_reports(&url).await }).await;
    }

    /// On PostgreSQL too, with `TEST_POSTGRES_URL` set (an admin connection URL).
    #[tokio::test]
    async fn node_reports_on_postgres() {
        super::super::scratch::on_postgres(|url| async move { node_reports(&url).await }).await;
    }

    #[test]
    fn notifications_name_a_key_or_a_complete_version() {
        assert_eq!(Notified::parse("v:42"), Notified::Version(42));
        assert_eq!(Notified::parse("key_v:1"), Notified::Key("key_v:1".into()));
        assert_eq!(Notified::parse("v:x"), Notified::Key("v:x".into()));
        assert_eq!(
            Notified::parse("keys_suspension"),
            Notified::Key("keys_suspension".into())
        );
    }
}
