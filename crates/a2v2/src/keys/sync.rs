//! Keeping every server's key cache in step with storage when another process changes a key:
//! another node, or the `a2v2 keys` CLI.
//!
//! Every key change calls [`announce`] in its transaction. That bumps the change counter
//! (`key_version`) and logs the changed key ids under the new version (`key_changes`), on
//! both back ends; on PostgreSQL it also sends `NOTIFY a2v2_keys, '<key id>'`.
//!
//! - The fast path (PostgreSQL): every node listens and reloads the notified key at once.
//!   After a lost connection it reloads every key, since notifications sent meanwhile are gone.
//! - The backstop (both back ends): every server polls the counter once a second on a
//!   connection of its own, off the request path, and reloads the keys logged since the
//!   version its cache reflects; when the log no longer reaches back that far, all keys.
//!
//! Reloading a key that is already current (the node's own change, or one already notified)
//! is harmless: it is read from storage under `key_writes`, like every other cache write.

use std::{
    collections::BTreeSet,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use anyhow::Context;
use sqlx::{AnyConnection, Connection, Row, postgres::PgListener};

use super::handlers::load_cache;
use crate::{
    state::AppState,
    store::{Backend, now_ms},
};

pub const CHANNEL: &str = "a2v2_keys";

/// How often each server looks for key changes made by other processes.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// How long logged changes are kept; a server that fell further behind reloads every key.
pub const KEEP_CHANGES_MS: i64 = 60 * 60 * 1000;

/// More logged changes than this since the last poll: reload every key instead.
const MAX_INCREMENTAL: i64 = 1000;

/// Records a change of `key_id` in the transaction on `conn`; see [`announce_all`].
pub async fn announce(
    conn: &mut AnyConnection,
    backend: Backend,
    key_id: &str,
) -> Result<(), sqlx::Error> {
    announce_all(conn, backend, &[key_id]).await
}

/// Records a change of `key_ids` in the transaction on `conn`: bumps the change counter, logs
/// the ids under the new version, prunes log rows older than [`KEEP_CHANGES_MS`], and on
/// PostgreSQL notifies the other nodes when the transaction commits.
///
/// The counter row stays locked until the transaction ends, so versions are handed out in
/// commit order: once a version is visible, every smaller one is too.
pub async fn announce_all(
    conn: &mut AnyConnection,
    backend: Backend,
    key_ids: &[&str],
) -> Result<(), sqlx::Error> {
    if key_ids.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let version: i64 = sqlx::query_scalar(
        "UPDATE key_version SET version = version + 1 WHERE id = 1 RETURNING version",
    )
    .fetch_one(&mut *conn)
    .await?;
    for key_id in key_ids {
        sqlx::query(
            "INSERT INTO key_changes (version, key_id, changed_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(version)
        .bind(*key_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        if backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(*key_id)
                .execute(&mut *conn)
                .await?;
        }
    }
    sqlx::query("DELETE FROM key_changes WHERE changed_at < $1")
        .bind(now - KEEP_CHANGES_MS)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The current value of the change counter.
pub async fn current_version(conn: &mut AnyConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT version FROM key_version WHERE id = 1")
        .fetch_one(conn)
        .await
}

/// What a server must do to catch up from version `seen` to `current`.
#[derive(Debug, PartialEq, Eq)]
pub enum CatchUp {
    /// Nothing changed.
    Nothing,
    /// Reload these keys.
    Keys(BTreeSet<String>),
    /// Reload every key: the log does not cover every version since `seen`, or holds too many.
    Everything,
}

/// Decides from the logged `(version, key_id)` rows with `seen < version <= current`.
pub fn plan(seen: i64, current: i64, logged: &[(i64, String)]) -> CatchUp {
    if current == seen {
        return CatchUp::Nothing;
    }
    // A counter that went backwards means a restored database: trust nothing.
    if current < seen || current - seen > MAX_INCREMENTAL {
        return CatchUp::Everything;
    }
    let versions: BTreeSet<i64> = logged
        .iter()
        .map(|(version, _)| *version)
        .filter(|version| *version > seen && *version <= current)
        .collect();
    // Versions are unique integers in (seen, current]: as many as the range is wide means
    // none was pruned.
    if i64::try_from(versions.len()).ok() != Some(current - seen) {
        return CatchUp::Everything;
    }
    CatchUp::Keys(
        logged
            .iter()
            .filter(|(version, _)| *version > seen && *version <= current)
            .map(|(_, key_id)| key_id.clone())
            .collect(),
    )
}

/// Applies other processes' key changes to this server's cache, for as long as it runs.
pub async fn poll(state: AppState) {
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut conn: Option<AnyConnection> = None;
    loop {
        tick.tick().await;
        let result = async {
            if conn.is_none() {
                conn = Some(crate::store::connect_single(&state.config.database_url).await?);
            }
            match conn.as_mut() {
                Some(conn) => catch_up(&state, conn).await,
                None => Ok(()),
            }
        }
        .await;
        if let Err(err) = result {
            tracing::warn!(error = %format!("{err:#}"), "checking for key changes failed; retrying");
            if let Some(old) = conn.take() {
                let _ = old.close().await;
            }
        }
    }
}

/// One poll: reads the counter on `conn` and reloads what changed since the cache's version.
pub async fn catch_up(state: &AppState, conn: &mut AnyConnection) -> anyhow::Result<()> {
    let seen = state.key_version.load(Ordering::Acquire);
    let current = current_version(conn).await?;
    if current == seen {
        return Ok(());
    }
    let logged = if current > seen && current - seen <= MAX_INCREMENTAL {
        changes_between(conn, seen, current).await?
    } else {
        Vec::new()
    };
    let started = Instant::now();
    match plan(seen, current, &logged) {
        CatchUp::Nothing => {}
        CatchUp::Keys(key_ids) => {
            refresh_all(state, &key_ids).await?;
            state.key_version.fetch_max(current, Ordering::AcqRel);
            tracing::debug!(keys = key_ids.len(), version = current, elapsed = ?started.elapsed(),
                "reloaded changed keys");
        }
        CatchUp::Everything => {
            let loaded = load_cache(state).await?;
            if current < seen {
                state.key_version.store(current, Ordering::Release);
            }
            tracing::info!(
                keys = loaded,
                version = current,
                "reloaded every key after missed changes"
            );
        }
    }
    Ok(())
}

async fn changes_between(
    conn: &mut AnyConnection,
    seen: i64,
    current: i64,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT version, key_id FROM key_changes WHERE version > $1 AND version <= $2 \
         ORDER BY version",
    )
    .bind(seen)
    .bind(current)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("version")?, row.try_get("key_id")?)))
        .collect()
}

/// Applies other nodes' notified key changes to this node's cache (PostgreSQL only).
pub async fn follow(state: AppState) {
    if state.store.backend != Backend::Postgres {
        return;
    }
    loop {
        if let Err(err) = listen(&state).await {
            tracing::warn!(error = %err, "key change listener lost its connection; reconnecting");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn listen(state: &AppState) -> anyhow::Result<()> {
    let mut listener = PgListener::connect(&state.config.database_url).await?;
    listener.listen(CHANNEL).await?;
    // Anything that changed while we were not listening.
    load_cache(state).await?;
    loop {
        // `None`: the connection dropped and sqlx reconnected; notifications sent meanwhile
        // are lost, so reload everything.
        match listener.try_recv().await? {
            Some(notification) => refresh(state, notification.payload()).await?,
            None => {
                load_cache(state).await?;
            }
        }
    }
}

async fn refresh(state: &AppState, key_id: &str) -> anyhow::Result<()> {
    refresh_all(state, &BTreeSet::from([key_id.to_owned()])).await
}

/// Reloads `key_ids` from storage into the cache, dropping those storage no longer has.
async fn refresh_all(state: &AppState, key_ids: &BTreeSet<String>) -> anyhow::Result<()> {
    // Under the same lock as local changes, so an older read never overwrites a newer write.
    let _serialised = state.key_writes.lock().await;
    let mut conn = state
        .store
        .pool
        .acquire()
        .await
        .context("reloading changed keys")?;
    for key_id in key_ids {
        match super::get_by_id(&mut conn, key_id).await? {
            Some(row) => super::handlers::cache(state, &row),
            None => state.keys.remove(key_id),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(list: &[(i64, &str)]) -> Vec<(i64, String)> {
        list.iter().map(|(v, k)| (*v, (*k).to_owned())).collect()
    }

    fn keys(list: &[&str]) -> CatchUp {
        CatchUp::Keys(list.iter().map(|k| (*k).to_owned()).collect())
    }

    #[test]
    fn an_unchanged_counter_needs_nothing() {
        assert_eq!(plan(7, 7, &[]), CatchUp::Nothing);
    }

    #[test]
    fn a_complete_log_reloads_only_the_changed_keys() {
        let logged = rows(&[(4, "key_a"), (5, "key_b"), (5, "key_c"), (6, "key_a")]);
        assert_eq!(plan(3, 6, &logged), keys(&["key_a", "key_b", "key_c"]));
        // Rows committed after the counter was read wait for the next poll.
        assert_eq!(plan(3, 5, &logged), keys(&["key_a", "key_b", "key_c"]));
        assert_eq!(plan(4, 5, &logged), keys(&["key_b", "key_c"]));
    }

    #[test]
    fn a_pruned_or_rewound_log_reloads_everything() {
        let logged = rows(&[(5, "key_b"), (6, "key_a")]);
        assert_eq!(
            plan(3, 6, &logged),
            CatchUp::Everything,
            "version 4 is gone"
        );
        assert_eq!(plan(3, 6, &[]), CatchUp::Everything);
        assert_eq!(
            plan(9, 6, &logged),
            CatchUp::Everything,
            "restored database"
        );
        assert_eq!(plan(0, MAX_INCREMENTAL + 1, &[]), CatchUp::Everything);
    }
}
