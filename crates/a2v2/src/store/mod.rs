//! Storage: every SQL statement and every difference between SQLite and PostgreSQL.
//!
//! One set of portable SQL over `sqlx::Any` serves both back ends: `$N` placeholders, TEXT
//! ids, BIGINT unix-millisecond times, JSON kept as TEXT. Where the dialects differ (row
//! locks, notifications, triggers) the branch sits here. Callers get plain records from
//! `crate::model` and [`StoreError`]s; the pool and the back end stay private.
//!
//! Functions take `&mut impl Db`: a transaction ([`Tx`], from [`Store::begin`]) or a pooled
//! connection ([`Conn`], from [`Store::conn`]).

pub mod agents;
pub mod audit;
pub mod audit_chain;
mod backup;
pub mod contact_imports;
pub mod contacts;
pub mod documents;
mod error;
mod failover;
pub mod idempotency;
pub mod invites;
pub mod jobs;
pub mod key_changes;
pub mod keys;
pub mod master_key;
pub mod members;
mod primary;
pub mod rate_limits;
mod readers;
pub mod sessions;
pub mod throttle;

use std::{
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use anyhow::Context;
use sqlx::{
    Any, AnyConnection, Transaction,
    any::AnyPoolOptions,
    migrate::Migrator,
    pool::PoolConnection,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous},
};

pub use backup::sqlite_path;
pub use error::{Constraint, StoreError};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Reader connections per PostgreSQL store: enough for the requests two cores keep in
/// flight while each waits on its round trip, well under the server's connection limit.
const READERS: usize = 16;

use primary::Primary;
use sealed::{Backend, Raw as _};

#[derive(Clone)]
pub struct Store {
    primary: Arc<Primary>,
    backend: Backend,
    /// Connections handed out by the pool, for `/metrics` and tests that prove a path
    /// does not touch storage.
    acquires: Arc<AtomicU64>,
    /// Microseconds spent waiting for pooled connections, in total.
    acquire_wait_micros: Arc<AtomicU64>,
    /// PostgreSQL only: connections for reads outside transactions (see `readers`).
    readers: Option<Arc<readers::Readers>>,
}

/// A database transaction: commit it, or drop it to roll back.
pub struct Tx {
    inner: Transaction<'static, Any>,
    backend: Backend,
}

/// A connection for reads outside a transaction, given back on drop.
pub struct Conn {
    inner: ConnInner,
    backend: Backend,
}

enum ConnInner {
    Pooled(PoolConnection<Any>),
    Reader(readers::Reader),
}

mod sealed {
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Backend {
        Sqlite,
        Postgres,
    }

    /// What store functions need of where they run; only this module can provide it.
    pub trait Raw {
        fn raw(&mut self) -> &mut sqlx::AnyConnection;
        fn backend(&self) -> Backend;
    }
}

/// Where store functions run their statements: a transaction or a pooled connection.
pub trait Db: sealed::Raw + Send {}

impl sealed::Raw for Tx {
    fn raw(&mut self) -> &mut AnyConnection {
        &mut self.inner
    }

    fn backend(&self) -> Backend {
        self.backend
    }
}

impl sealed::Raw for Conn {
    fn raw(&mut self) -> &mut AnyConnection {
        match &mut self.inner {
            ConnInner::Pooled(conn) => conn,
            ConnInner::Reader(reader) => reader.connection(),
        }
    }

    fn backend(&self) -> Backend {
        self.backend
    }
}

impl Db for Tx {}
impl Db for Conn {}

/// Rows per multi-row INSERT of `columns` numbered (`$N`) parameters each. SQLite looks a
/// parameter's name up by walking the statement's list of names, so binding costs grow with
/// the square of the parameters in one statement: a few hundred per statement is fastest
/// there ([`values_list`] avoids the names altogether). PostgreSQL
/// binds by position; there fewer, larger statements save round trips (its limit is 65,535).
pub(crate) fn rows_per_insert(db: &impl Db, columns: usize) -> usize {
    let parameters = match db.backend() {
        Backend::Sqlite => 500,
        Backend::Postgres => 30_000,
    };
    (parameters / columns.max(1)).max(1)
}

/// A multi-row INSERT's `VALUES` list for up to the rows that [`rows_per_values`] allows:
/// `rows` groups of `columns` placeholders. On SQLite they are anonymous `?`s, which bind by
/// position without the walk through names (see [`rows_per_insert`]), so one statement can
/// carry thousands of rows; PostgreSQL's are numbered `$1…` as everywhere.
pub(crate) fn values_list(db: &impl Db, rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 6);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            match db.backend() {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    sql.push('$');
                    sql.push_str(&(row * columns + column + 1).to_string());
                }
            }
        }
        sql.push(')');
    }
    sql
}

/// Rows per multi-row INSERT written with [`values_list`]: as many as the back end's limit on
/// parameters in one statement allows (SQLite's is 32,766; PostgreSQL's 65,535).
pub(crate) fn rows_per_values(db: &impl Db, columns: usize) -> usize {
    let parameters = match db.backend() {
        Backend::Sqlite => 32_766,
        Backend::Postgres => 30_000,
    };
    (parameters / columns.max(1)).max(1)
}

impl Tx {
    pub async fn commit(self) -> Result<(), StoreError> {
        self.inner.commit().await.map_err(StoreError::from)
    }
}

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
                .acquire_timeout(primary::ACQUIRE_TIMEOUT)
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
                primary: Arc::new(Primary::fixed(pool, url, Arc::clone(&acquires))),
                backend: Backend::Sqlite,
                acquires,
                acquire_wait_micros: Arc::default(),
                readers: None,
            })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let primary = Arc::new(Primary::postgres(url, Arc::clone(&acquires)).await?);
            if primary.follows_failovers() {
                tokio::spawn(Arc::clone(&primary).watch());
            }
            Ok(Self {
                primary,
                backend: Backend::Postgres,
                acquires,
                acquire_wait_micros: Arc::default(),
                readers: Some(Arc::new(readers::Readers::new(READERS))),
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
            .run(&self.primary.pool())
            .await
            .context("applying database migrations")
    }

    /// A write transaction. On SQLite it takes the write lock up front (`BEGIN IMMEDIATE`):
    /// a deferred transaction that reads first fails at once with "database is locked" when
    /// another connection commits before its first write, whatever the busy timeout.
    ///
    /// `BEGIN` runs in a task of its own: if the caller is dropped while it runs (a client
    /// hanging up), the task still receives the transaction and drops it, which rolls it
    /// back. Otherwise the connection would go back to the pool inside an open transaction,
    /// holding SQLite's write lock until something happened to use it again.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let started = std::time::Instant::now();
        let (pool, backend) = (self.primary.pool(), self.backend);
        let inner = tokio::spawn(async move {
            match backend {
                Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
                Backend::Postgres => pool.begin().await,
            }
        })
        .await
        .map_err(|_| StoreError::from(sqlx::Error::WorkerCrashed))?
        .inspect_err(|err| self.primary.report(err))?;
        self.waited(started);
        Ok(Tx { inner, backend })
    }

    /// A connection for reads outside a transaction.
    pub async fn conn(&self) -> Result<Conn, StoreError> {
        let started = std::time::Instant::now();
        let inner = match &self.readers {
            Some(readers) => {
                self.acquires.fetch_add(1, Ordering::Relaxed);
                ConnInner::Reader(readers.acquire(&self.primary).await?)
            }
            None => ConnInner::Pooled(
                self.primary
                    .pool()
                    .acquire()
                    .await
                    .inspect_err(|err| self.primary.report(err))?,
            ),
        };
        self.waited(started);
        Ok(Conn {
            inner,
            backend: self.backend,
        })
    }

    fn waited(&self, since: std::time::Instant) {
        let micros = u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.acquire_wait_micros
            .fetch_add(micros, Ordering::Relaxed);
    }

    /// The pool's numbers in Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        let pool = self.primary.pool();
        let size = pool.size();
        let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX);
        let wait = self.acquire_wait_micros.load(Ordering::Relaxed) as f64 / 1e6;
        out.push_str(&format!(
            "# HELP a2v2_db_connections Pooled database connections by state.\n\
             # TYPE a2v2_db_connections gauge\n\
             a2v2_db_connections{{state=\"idle\"}} {idle}\n\
             a2v2_db_connections{{state=\"in_use\"}} {}\n\
             # HELP a2v2_db_acquire_wait_seconds_total Time spent waiting for a pooled connection (or a transaction's start).\n\
             # TYPE a2v2_db_acquire_wait_seconds_total counter\n\
             a2v2_db_acquire_wait_seconds_total {wait}\n",
            size.saturating_sub(idle)
        ));
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.primary.pool())
            .await
            .inspect_err(|err| self.primary.report(err))?;
        Ok(())
    }

    /// Commits a write that changes nothing, to find out whether storage takes writes: a
    /// full disk, a read-only file or a demoted PostgreSQL primary fail here.
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE key_version SET version = version WHERE id = 1")
            .execute(tx.raw())
            .await?;
        tx.commit().await
    }

    /// True when other processes may write the same database at the same time (PostgreSQL,
    /// the several-node back end); false for the embedded SQLite file this server owns.
    pub fn is_shared(&self) -> bool {
        self.backend == Backend::Postgres
    }

    /// Connections handed out so far.
    pub fn acquires(&self) -> u64 {
        self.acquires.load(Ordering::Relaxed)
    }

    /// Waits for pooled connections to be returned, then closes them.
    pub async fn close(&self) {
        if let Some(readers) = &self.readers {
            readers.close().await;
        }
        self.primary.pool().close().await;
    }

    /// Bumped each time the store moved to a new PostgreSQL primary: connections kept apart
    /// from the pool (the key feed's) must be opened again.
    pub fn generation(&self) -> u64 {
        self.primary.generation()
    }
}

/// Test databases: SQLite in a temporary directory, and on the PostgreSQL server
/// `TEST_POSTGRES_URL` names (an admin URL).
#[cfg(test)]
pub(crate) mod scratch {
    use sqlx::{Connection, Executor};

    /// Runs `check` with the URL of a new SQLite database, removed afterwards.
    pub(crate) async fn on_sqlite<F, Fut>(check: F)
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let dir = tempfile::tempdir().unwrap();
        check(format!("sqlite://{}", dir.path().join("test.db").display())).await;
    }

    /// Runs `check` with the URL of a new, empty database there, dropped afterwards; does
    /// nothing when `TEST_POSTGRES_URL` is unset.
    pub(crate) async fn on_postgres<F, Fut>(check: F)
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let Ok(admin_url) = std::env::var("TEST_POSTGRES_URL") else {
            return;
        };
        let name = format!("a2v2_test_{}", uuid::Uuid::now_v7().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        let (base, _) = admin_url.rsplit_once('/').unwrap();
        check(format!("{base}/{name}")).await;
        admin
            .execute(format!("DROP DATABASE {name}").as_str())
            .await
            .unwrap();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::model::audit::ActorRef;

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
        let store = Store::connect(&url).await.unwrap();
        sqlx::query("CREATE TABLE t (n BIGINT)")
            .execute(&store.primary.pool())
            .await
            .unwrap();
        let mut first = store.begin().await.unwrap();
        sqlx::query("SELECT COUNT(*) FROM t")
            .fetch_one(first.raw())
            .await
            .unwrap();
        let other = {
            let store = store.clone();
            tokio::spawn(async move {
                let mut tx = store.begin().await.unwrap();
                sqlx::query("INSERT INTO t (n) VALUES (2)")
                    .execute(tx.raw())
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        sqlx::query("INSERT INTO t (n) VALUES (1)")
            .execute(first.raw())
            .await
            .unwrap();
        first.commit().await.unwrap();
        other.await.unwrap();
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&store.primary.pool())
            .await
            .unwrap();
        assert_eq!(count, 2);
    }

    /// An SQLite store with the migrations before `version` applied, and its pool.
    async fn migrated_before(version: &str) -> (tempfile::TempDir, Store, sqlx::AnyPool) {
        let dir = tempfile::tempdir().unwrap();
        let older = dir.path().join("older");
        std::fs::create_dir(&older).unwrap();
        for name in versions("sqlite")
            .iter()
            .filter(|name| name.as_str() < version)
        {
            std::fs::copy(
                format!("{}/migrations/sqlite/{name}", env!("CARGO_MANIFEST_DIR")),
                older.join(name),
            )
            .unwrap();
        }
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::connect(&url).await.unwrap();
        let pool = store.primary.pool();
        Migrator::new(older.as_path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        (dir, store, pool)
    }

    /// Contacts written before provenance was recorded take their writers from the audit log.
    #[tokio::test]
    async fn provenance_of_older_contacts_comes_from_the_audit_log() {
        let (_dir, store, pool) = migrated_before("0011").await;
        let statements = [
            "INSERT INTO agents (id, name, created_at, updated_at) VALUES ('agt_1', 'A', 0, 0)",
            "INSERT INTO contacts (id, agent_id, tags, attributes, search_text, version, \
             created_at, updated_at) VALUES ('ct_1', 'agt_1', '[]', '{}', '', 2, 0, 0), \
             ('ct_2', 'agt_1', '[]', '{}', '', 1, 0, 0)",
            "INSERT INTO audit_events (id, occurred_at, actor_type, actor_id, actor_label, action, \
             target_type, target_id, details) VALUES \
             ('evt_1', 1, 'api_key', 'key_1', 'Sync', 'contact.created', 'contact', 'ct_1', '{}'), \
             ('evt_2', 2, 'member', 'mem_1', 'a@b.co', 'contact.updated', 'contact', 'ct_1', '{}')",
        ];
        for statement in statements {
            sqlx::query(statement).execute(&pool).await.unwrap();
        }
        store.migrate().await.unwrap();
        let mut conn = store.conn().await.unwrap();
        let written = contacts::get(&mut conn, "agt_1", "ct_1").await.unwrap();
        assert_eq!(written.created_by, ActorRef::api_key("key_1", "Sync"));
        assert_eq!(written.updated_by, ActorRef::member("mem_1", "a@b.co"));
        let unknown = contacts::get(&mut conn, "agt_1", "ct_2").await.unwrap();
        assert_eq!(unknown.created_by.kind, "system");
        assert_eq!(unknown.created_by.label.as_deref(), Some("unknown"));
        assert_eq!(unknown.updated_by, unknown.created_by);
    }

    /// Contacts that exist when the search index is created are found through it.
    #[tokio::test]
    async fn the_search_index_covers_contacts_written_before_it() {
        let (_dir, store, pool) = migrated_before("0013").await;
        for statement in [
            "INSERT INTO agents (id, name, created_at, updated_at) VALUES ('agt_1', 'A', 0, 0)",
            "INSERT INTO contacts (id, agent_id, tags, attributes, search_text, version, \
             created_at, updated_at) VALUES ('ct_1', 'agt_1', '[]', '{}', 'ada lovelace', 1, 0, 0), \
             ('ct_2', 'agt_1', '[]', '{}', 'grace hopper', 1, 0, 0)",
        ] {
            sqlx::query(statement).execute(&pool).await.unwrap();
        }
        store.migrate().await.unwrap();
        let indexed: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM contacts_search WHERE contacts_search MATCH '\"lov\"'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(indexed, 1);
        let mut conn = store.conn().await.unwrap();
        let filter = crate::model::contact::ContactFilter {
            q: Some("ovel".into()),
            ..Default::default()
        };
        let found = contacts::list(&mut conn, "agt_1", &filter, None, 10)
            .await
            .unwrap();
        assert_eq!(
            found.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            ["ct_1"]
        );
    }

    #[test]
    fn both_back_ends_have_the_same_migrations() {
        assert_eq!(versions("sqlite"), versions("postgres"));
    }
}
