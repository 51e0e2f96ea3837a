//! The pool, and for a multi-host PostgreSQL URL, following the primary through a failover.
//!
//! With several hosts (`postgres://h1:p1,h2:p2/db?target_session_attrs=read-write`), the pool
//! is opened on the first host that is a writable primary. A watcher then checks, every
//! second and whenever a caller saw a connection fail, that the pool's server still is one;
//! when it is gone or demoted, it looks for the new primary, opens a pool there, swaps it in
//! and closes the old one. Callers always take the current pool; the generation tells the
//! key feed's own connections to move too.

use std::{
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use sqlx::{AnyPool, any::AnyPoolOptions};
use tokio::sync::Notify;

use super::failover::{self, HostList};

/// How long a request waits for a pooled connection before it is answered 503.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Bounds on every PostgreSQL session, so that no statement, lock wait or forgotten
/// transaction can hold a request (or a row) indefinitely.
const POSTGRES_SESSION_LIMITS: &str = "SET statement_timeout = '30s'; SET lock_timeout = '10s'; \
     SET idle_in_transaction_session_timeout = '60s';";

/// How often the watcher checks the primary, and how long one check or one host may take.
const WATCH_EVERY: Duration = Duration::from_secs(1);
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

struct Current {
    pool: AnyPool,
    url: Arc<str>,
    generation: u64,
}

pub(super) struct Primary {
    /// The hosts to search after a failover; `None` for a single server (or SQLite).
    hosts: Option<HostList>,
    current: RwLock<Current>,
    suspect: Notify,
    acquires: Arc<AtomicU64>,
}

impl Primary {
    pub(super) fn fixed(pool: AnyPool, url: &str, acquires: Arc<AtomicU64>) -> Self {
        Self {
            hosts: None,
            current: RwLock::new(Current {
                pool,
                url: url.into(),
                generation: 0,
            }),
            suspect: Notify::new(),
            acquires,
        }
    }

    /// Connects to PostgreSQL; a URL with several hosts (or `target_session_attrs`) is
    /// followed through failovers by [`Self::watch`].
    pub(super) async fn postgres(url: &str, acquires: Arc<AtomicU64>) -> anyhow::Result<Self> {
        let multi = url.contains(',') || url.contains("target_session_attrs");
        let (hosts, single) = if multi {
            let hosts = HostList::parse(url)?;
            let single = failover::find_primary(&hosts, CHECK_TIMEOUT).await?;
            (Some(hosts), single)
        } else {
            (None, url.to_owned())
        };
        let pool = postgres_pool(&single, &acquires)
            .await
            .context("connecting to PostgreSQL")?;
        let primary = Self::fixed(pool, &single, acquires);
        Ok(Self { hosts, ..primary })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Current> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn pool(&self) -> AnyPool {
        self.read().pool.clone()
    }

    pub(super) fn url(&self) -> Arc<str> {
        Arc::clone(&self.read().url)
    }

    /// A connection of its own to the current primary, outside the pool.
    pub(super) async fn connect_one(&self) -> Result<sqlx::AnyConnection, sqlx::Error> {
        use sqlx::{Connection, Executor};
        let url = self.url();
        let connect = async {
            let mut conn = sqlx::AnyConnection::connect(&url).await?;
            conn.execute(POSTGRES_SESSION_LIMITS).await?;
            Ok(conn)
        };
        tokio::time::timeout(ACQUIRE_TIMEOUT, connect)
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
    }

    pub(super) fn generation(&self) -> u64 {
        self.read().generation
    }

    pub(super) fn follows_failovers(&self) -> bool {
        self.hosts.is_some()
    }

    /// A caller saw a connection fail in a way that may mean the primary is gone.
    pub(super) fn report(&self, error: &sqlx::Error) {
        if self.hosts.is_some() && failover::is_primary_lost(error) {
            self.suspect.notify_one();
        }
    }

    /// Follows the primary for as long as the process runs (multi-host URLs only).
    pub(super) async fn watch(self: Arc<Self>) {
        let Some(hosts) = self.hosts.clone() else {
            return;
        };
        loop {
            tokio::select! {
                () = tokio::time::sleep(WATCH_EVERY) => {}
                () = self.suspect.notified() => {}
            }
            if self.is_writable_primary().await {
                continue;
            }
            match failover::find_primary(&hosts, CHECK_TIMEOUT).await {
                Ok(url) => {
                    if let Err(err) = self.swap(&url).await {
                        tracing::warn!(error = %format!("{err:#}"), "cannot open a pool on the new primary");
                    }
                }
                Err(err) => tracing::warn!(error = %err, "no PostgreSQL primary found; retrying"),
            }
        }
    }

    async fn is_writable_primary(&self) -> bool {
        let pool = self.pool();
        let check = sqlx::query_as::<_, (bool, String)>(
            "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')",
        )
        .fetch_one(&pool);
        matches!(
            tokio::time::timeout(CHECK_TIMEOUT, check).await,
            Ok(Ok((false, read_only))) if read_only == "off"
        )
    }

    async fn swap(&self, url: &str) -> anyhow::Result<()> {
        let pool = tokio::time::timeout(CHECK_TIMEOUT * 2, postgres_pool(url, &self.acquires))
            .await
            .context("timed out")??;
        let old = {
            let mut current = self
                .current
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let old = std::mem::replace(&mut current.pool, pool);
            current.url = url.into();
            current.generation += 1;
            old
        };
        tracing::warn!(
            url = %crate::config::redact_url(url),
            "switched to a new PostgreSQL primary"
        );
        // Connections to the old server end in the background; requests use the new pool.
        tokio::spawn(async move { old.close().await });
        Ok(())
    }
}

async fn postgres_pool(url: &str, acquires: &Arc<AtomicU64>) -> Result<AnyPool, sqlx::Error> {
    let counter = Arc::clone(acquires);
    AnyPoolOptions::new()
        .max_connections(16)
        .before_acquire(move |_, _| {
            counter.fetch_add(1, Ordering::Relaxed);
            Box::pin(std::future::ready(Ok(true)))
        })
        .after_connect(|conn, _| {
            Box::pin(async move {
                use sqlx::Executor;
                conn.execute(POSTGRES_SESSION_LIMITS).await?;
                Ok(())
            })
        })
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect(url)
        .await
}
