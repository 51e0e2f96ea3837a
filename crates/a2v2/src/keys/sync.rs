//! Keeping every node's key cache in step on PostgreSQL: each key change sends
//! `NOTIFY a2v2_keys, '<key id>'` in its transaction; every node listens and reloads that key
//! from storage. After a lost connection a node reloads every key, since notifications sent
//! meanwhile are gone. SQLite is single-node, so there it does nothing.

use std::time::Duration;

use sqlx::{AnyConnection, postgres::PgListener};

use super::handlers::load_cache;
use crate::{state::AppState, store::Backend};

pub const CHANNEL: &str = "a2v2_keys";

/// Announces a change of `key_id` to the other nodes when the transaction commits.
pub async fn announce(
    conn: &mut AnyConnection,
    backend: Backend,
    key_id: &str,
) -> Result<(), sqlx::Error> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(key_id)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Applies other nodes' key changes to this node's cache, for as long as the server runs.
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

async fn refresh(state: &AppState, key_id: &str) -> Result<(), sqlx::Error> {
    // Under the same lock as local changes, so an older read never overwrites a newer write.
    let _serialised = state.key_writes.lock().await;
    let mut conn = state.store.pool.acquire().await?;
    match super::get_by_id(&mut conn, key_id).await? {
        Some(row) => super::handlers::cache(state, &row),
        None => state.keys.remove(key_id),
    }
    Ok(())
}
