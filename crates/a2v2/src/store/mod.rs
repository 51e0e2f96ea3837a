//! Storage: one set of portable SQL queries over `sqlx::Any`, two back ends.
//!
//! SQLite (embedded, the default) and PostgreSQL (several nodes) share the query text: `$N`
//! placeholders, TEXT ids, BIGINT unix-millisecond times, JSON kept as TEXT. The two migration
//! folders hold the same versions; only DDL that differs by dialect (triggers) differs.

use std::{
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use sqlx::{
    Any, AnyPool, Transaction,
    any::AnyPoolOptions,
    migrate::Migrator,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous},
};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pub pool: AnyPool,
    pub backend: Backend,
    /// Connections handed out by the pool, for `/metrics` and tests that prove a path
    /// does not touch storage.
    pub acquires: Arc<AtomicU64>,
}

pub type Tx = Transaction<'static, Any>;

impl Store {
    /// Opens the database named by `url`, creating an SQLite file (and its folder) if missing.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let acquires = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&acquires);
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .context("parsing the SQLite database URL")?
                .create_if_missing(true);
            if let Some(parent) = options.get_filename().parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            // Set WAL once on a native connection (it is persistent); the per-connection
            // pragmas are applied to every pooled connection below.
            let native = sqlx::SqlitePool::connect_with(
                options
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal),
            )
            .await
            .context("opening the SQLite database")?;
            native.close().await;
            let pool = AnyPoolOptions::new()
                .max_connections(8)
                .before_acquire(move |_, _| {
                    counter.fetch_add(1, Ordering::Relaxed);
                    Box::pin(std::future::ready(Ok(true)))
                })
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        use sqlx::Executor;
                        conn.execute(
                            "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                             PRAGMA synchronous = NORMAL;",
                        )
                        .await?;
                        Ok(())
                    })
                })
                .connect(url)
                .await
                .context("opening the SQLite database")?;
            Ok(Self {
                pool,
                backend: Backend::Sqlite,
                acquires,
            })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = AnyPoolOptions::new()
                .max_connections(16)
                .before_acquire(move |_, _| {
                    counter.fetch_add(1, Ordering::Relaxed);
                    Box::pin(std::future::ready(Ok(true)))
                })
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .context("connecting to PostgreSQL")?;
            Ok(Self {
                pool,
                backend: Backend::Postgres,
                acquires,
            })
        } else {
            anyhow::bail!("the database URL must start with sqlite:// or postgres://")
        }
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&self.pool)
            .await
            .context("applying database migrations")
    }

    /// A write transaction. On SQLite it takes the write lock up front (`BEGIN IMMEDIATE`):
    /// a deferred transaction that reads first fails at once with "database is locked" when
    /// another connection commits before its first write, whatever the busy timeout.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }
}

/// One connection outside the pool, for background work that must neither wait for nor be
/// counted among the connections requests use.
pub async fn connect_single(url: &str) -> anyhow::Result<sqlx::AnyConnection> {
    use sqlx::{Connection, Executor};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url)
        .await
        .context("opening a database connection")?;
    if url.starts_with("sqlite:") {
        conn.execute("PRAGMA busy_timeout = 10000;").await?;
    }
    Ok(conn)
}

/// True when the error is a violation of a unique index.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// True when the error is a violated foreign key (the referenced row is gone).
pub fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// A new opaque id: a readable prefix and a time-ordered UUIDv7, so ids sort by creation.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    fn versions(dir: &str) -> BTreeSet<String> {
        std::fs::read_dir(format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[tokio::test]
    async fn write_transactions_do_not_fail_when_another_commits_first() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = super::Store::connect(&url).await.unwrap();
        sqlx::query("CREATE TABLE t (n BIGINT)")
            .execute(&store.pool)
            .await
            .unwrap();
        let mut first = store.begin().await.unwrap();
        sqlx::query("SELECT COUNT(*) FROM t")
            .fetch_one(&mut *first)
            .await
            .unwrap();
        let other = {
            let store = store.clone();
            tokio::spawn(async move {
                let mut tx = store.begin().await.unwrap();
                sqlx::query("INSERT INTO t (n) VALUES (2)")
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        sqlx::query("INSERT INTO t (n) VALUES (1)")
            .execute(&mut *first)
            .await
            .unwrap();
        first.commit().await.unwrap();
        other.await.unwrap();
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(count, 2);
    }

    #[test]
    fn both_back_ends_have_the_same_migrations() {
        assert_eq!(versions("sqlite"), versions("postgres"));
    }
}
