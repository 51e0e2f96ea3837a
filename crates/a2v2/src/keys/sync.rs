//! Keeping every server's key cache in step with storage when another process changes a key:
//! another node, or the `a2v2 keys` CLI.
//!
//! Every key change is announced in its transaction (`KeyChange` calls
//! `store::key_changes::announce`): that bumps the change counter (`key_version`) and logs the
//! changed key ids under the new version (`key_changes`), on both back ends; on PostgreSQL it
//! also sends `NOTIFY a2v2_keys, '<key id>'`.
//!
//! - The fast path (PostgreSQL): every node listens and reloads the notified key at once.
//!   After a lost connection it reloads every key, since notifications sent meanwhile are gone.
//! - The backstop (both back ends): every server polls the counter once a second on a
//!   connection of its own, off the request path, and reloads the keys logged since the
//!   version its cache reflects; when the log no longer reaches back that far, all keys.
//!
//! Reloading a key that is already current (the node's own change, or one already notified)
//! is harmless: it is read from storage under the service's write lock, like every other
//! cache write.
//!
//! Each node reports the version it has applied to `key_nodes`: on every poll, and on
//! PostgreSQL as soon as a notified version is applied. A key change waits for those reports
//! (`Keys::await_nodes`), so that when it returns no node serves the old state.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use super::Keys;
use crate::{
    error::Result,
    model::now_ms,
    store::{
        self, Store, StoreError,
        key_changes::{Listener, Notified, SideConnection},
    },
};

/// How often each server looks for key changes made by other processes.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// More logged changes than this since the last poll: reload every key instead.
const MAX_INCREMENTAL: i64 = 1000;

/// A listener with no notification for this long checks that its connection is alive.
const LISTEN_IDLE: Duration = Duration::from_secs(10);
/// How often a waiting listener looks up from its connection.
const LISTEN_STEP: Duration = Duration::from_secs(1);
const PING_TIMEOUT: Duration = Duration::from_secs(3);

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

/// Applies other processes' key changes to this server's cache, for as long as it runs, and
/// confirms the cache current after every poll that got through. A poll that fails or takes
/// longer than half the lease drops its connection: a connection lost silently (no error,
/// no close, as after a NAT or conntrack drop) cannot hold the node up.
pub async fn poll(keys: Keys, store: Store) {
    let budget = (keys.lease() / 2).max(POLL_EVERY);
    let slow_ms = i64::try_from((keys.lease() / 5).as_millis()).unwrap_or(i64::MAX);
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut conn: Option<(SideConnection, u64)> = None;
    loop {
        tick.tick().await;
        let started = now_ms();
        if !keys.is_current(started) {
            tracing::warn!(
                lease_ms = keys.lease().as_millis() as u64,
                "API keys are refused with 503 until a check for key changes gets through"
            );
        }
        // After a failover the store follows the new primary; so does this connection.
        if conn
            .as_ref()
            .is_some_and(|(_, seen)| *seen != store.generation())
        {
            conn = None;
        }
        let result = tokio::time::timeout(budget, async {
            if conn.is_none() {
                let generation = store.generation();
                conn = Some((store.side_connection().await?, generation));
            }
            match conn.as_mut() {
                Some((conn, _)) => {
                    // Reported before the counter is read: a change that commits after a
                    // writer found this node missing is one this poll sees.
                    keys.report(conn).await?;
                    let before = keys.version();
                    catch_up(&keys, conn).await?;
                    if keys.version() != before {
                        keys.report(conn).await?;
                    }
                    Ok::<_, crate::error::DomainError>(())
                }
                None => Ok(()),
            }
        })
        .await;
        match result {
            Ok(Ok(())) => {
                keys.confirm(started);
                let took = now_ms().saturating_sub(started);
                if took > slow_ms {
                    tracing::warn!(
                        took_ms = took,
                        lease_ms = keys.lease().as_millis() as u64,
                        "checking for key changes was slow; keys are refused once the lease passes unconfirmed"
                    );
                }
            }
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "checking for key changes failed; retrying");
                if let Some((old, _)) = conn.take() {
                    old.close().await;
                }
            }
            Err(_) => {
                tracing::warn!(
                    budget_ms = budget.as_millis() as u64,
                    "checking for key changes timed out; reconnecting"
                );
                // A connection stuck on a dead link would hang on a polite close too.
                drop(conn.take());
            }
        }
    }
}

/// One poll: reads the counter on `conn` and reloads what changed since the cache's version.
pub async fn catch_up(keys: &Keys, conn: &mut SideConnection) -> Result<()> {
    let seen = keys.version();
    let current = store::key_changes::current_version(conn).await?;
    if current == seen {
        return Ok(());
    }
    let logged = if current > seen && current - seen <= MAX_INCREMENTAL {
        store::key_changes::between(conn, seen, current).await?
    } else {
        Vec::new()
    };
    let started = Instant::now();
    match plan(seen, current, &logged) {
        CatchUp::Nothing => {}
        CatchUp::Keys(key_ids) => {
            keys.refresh(&key_ids).await?;
            keys.reached(current);
            tracing::debug!(keys = key_ids.len(), version = current, elapsed = ?started.elapsed(),
                "reloaded changed keys");
        }
        CatchUp::Everything => {
            let loaded = keys.load_all().await?;
            if current < seen {
                keys.rewind(current);
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

/// Applies other nodes' notified key changes to this node's cache (PostgreSQL only).
pub async fn follow(keys: Keys, store: Store) {
    loop {
        let generation = store.generation();
        match store.listen_key_changes().await {
            Ok(None) => return,
            Ok(Some(listener)) => {
                if let Err(err) = listen(&keys, &store, generation, listener).await {
                    tracing::warn!(error = %err, "key change listener lost its connection; reconnecting");
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "key change listener cannot connect; retrying");
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Applies notified changes until the connection fails, or the store moves to a new primary
/// (whose notifications this connection would never see).
async fn listen(keys: &Keys, store: &Store, generation: u64, mut listener: Listener) -> Result<()> {
    // Anything that changed while we were not listening.
    keys.load_all().await?;
    let mut quiet = Duration::ZERO;
    loop {
        let next = match tokio::time::timeout(LISTEN_STEP, listener.recv()).await {
            Ok(next) => next?,
            Err(_) => {
                if store.generation() != generation {
                    return Ok(());
                }
                quiet += LISTEN_STEP;
                if quiet >= LISTEN_IDLE {
                    // Quiet for a while: make sure the connection is still alive, since a
                    // silently dropped one would wait here forever.
                    tokio::time::timeout(PING_TIMEOUT, listener.ping())
                        .await
                        .map_err(|_| StoreError::Timeout)??;
                    quiet = Duration::ZERO;
                }
                continue;
            }
        };
        quiet = Duration::ZERO;
        match next {
            Some(Notified::Key(key_id)) => keys.refresh(&BTreeSet::from([key_id])).await?,
            // Every key of the version was notified before, and applied in order; so was
            // every earlier version since the listening began (or the load after it).
            Some(Notified::Version(version)) => {
                keys.reached(version);
                keys.report_on(&mut listener).await?;
            }
            // The connection dropped and was re-established: notifications sent meanwhile
            // are lost, so reload everything.
            None => {
                keys.load_all().await?;
            }
        }
    }
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
