//! Management API for keys (`/api/agents/{agent_id}/api-keys…`) and `GET /v1/key`.
//!
//! Every change updates the in-memory cache before the response is sent, under
//! `key_writes`, so storage and cache agree and the very next request sees the change.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

use super::{KeyRow, ip_list};
use crate::{
    access::Principal,
    agents,
    audit::{self, Event, Target},
    error::ApiError,
    extract::AppJson,
    members::session::Caller,
    state::AppState,
    store::now_ms,
    time_fmt::opt_rfc3339,
};

fn view(state: &AppState, row: &KeyRow) -> Value {
    row.view(state.keys.get(&row.id).and_then(|k| k.last_used_at()))
}

/// Serves the key as stored, or, if its stored form cannot be read, refuses it.
pub(crate) fn cache(state: &AppState, row: &KeyRow) {
    match row.to_cached() {
        Some(cached) => state.keys.put(cached),
        None => {
            tracing::error!(key_id = %row.id, "stored key is unreadable; it is refused");
            state.keys.remove(&row.id);
        }
    }
}

async fn find(
    conn: &mut sqlx::AnyConnection,
    agent_id: &str,
    key_id: &str,
) -> Result<KeyRow, ApiError> {
    super::get(conn, agent_id, key_id)
        .await?
        .ok_or(ApiError::NotFound)
}

/// `GET /api/agents/{agent_id}/api-keys` (any member): `{data: [key…]}`, newest first.
pub async fn list(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut conn = state.store.pool.acquire().await?;
    agents::find(&mut conn, &agent_id).await?;
    let rows = super::list(&mut conn, &agent_id).await?;
    let data: Vec<Value> = rows.iter().map(|row| view(&state, row)).collect();
    Ok(Json(
        json!({ "data": data, "has_more": false, "next_cursor": null }),
    ))
}

/// `POST /api/agents/{agent_id}/api-keys` (admin): 201 key with `key`, the secret, shown once.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(agent_id): Path<String>,
    AppJson(body): AppJson<Map<String, Value>>,
) -> Result<Response, ApiError> {
    let now = now_ms();
    let changes = super::validate(&body, true, now)?;
    let (row, secret) = super::mint(
        state.keys.secrets(),
        state.config.key_reveal,
        &agent_id,
        Some((&caller.member.id, &caller.member.email)),
        changes,
        now,
    )?;
    let _serialised = state.key_writes.lock().await;
    let mut tx = state.store.begin().await?;
    super::manage::create(
        &mut tx,
        state.store.backend,
        &caller.actor(),
        &caller.origin,
        &row,
    )
    .await?;
    tx.commit().await?;
    cache(&state, &row);
    let mut body = view(&state, &row);
    body["key"] = json!(secret);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /api/agents/{agent_id}/api-keys/{key_id}` (any member): one key, no secret.
pub async fn get(
    State(state): State<AppState>,
    Path((agent_id, key_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let mut conn = state.store.pool.acquire().await?;
    let row = find(&mut conn, &agent_id, &key_id).await?;
    Ok(Json(view(&state, &row)))
}

/// `PATCH /api/agents/{agent_id}/api-keys/{key_id}` (admin): changes name, description,
/// ip_addresses, permissions, expires_at; effective for the very next request. 200 key.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((agent_id, key_id)): Path<(String, String)>,
    AppJson(body): AppJson<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let now = now_ms();
    let changes = super::validate(&body, false, now)?;
    let _serialised = state.key_writes.lock().await;
    let mut tx = state.store.begin().await?;
    let mut row = find(&mut tx, &agent_id, &key_id).await?;
    let changed = super::apply(&mut row, changes);
    if !changed.is_empty() {
        row.updated_at = now;
        super::update(&mut tx, &row).await?;
        super::sync::announce(&mut tx, state.store.backend, &row.id).await?;
        audit::record(
            &mut tx,
            &caller.actor(),
            &caller.origin,
            Event {
                action: "api_key.updated",
                agent_id: Some(&agent_id),
                target: Some(Target::new("api_key", &row.id, &row.name)),
                details: json!({
                    "changed": changed.keys().collect::<Vec<_>>(),
                    "changes": changed,
                }),
            },
        )
        .await?;
    }
    tx.commit().await?;
    cache(&state, &row);
    Ok(Json(view(&state, &row)))
}

/// `POST /api/agents/{agent_id}/api-keys/{key_id}/reveal` (admin): `{key}` for Copy API Key;
/// 409 `reveal_disabled` when the server keeps no copy.
pub async fn reveal(
    State(state): State<AppState>,
    caller: Caller,
    Path((agent_id, key_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let mut tx = state.store.begin().await?;
    let row = find(&mut tx, &agent_id, &key_id).await?;
    let sealed = match (&row.secret_ciphertext, state.config.key_reveal) {
        (Some(sealed), true) => sealed,
        _ => return Err(ApiError::RevealDisabled),
    };
    let secret = state.keys.secrets().open(&row.id, sealed)?;
    audit::record(
        &mut tx,
        &caller.actor(),
        &caller.origin,
        Event {
            action: "api_key.revealed",
            agent_id: Some(&agent_id),
            target: Some(Target::new("api_key", &row.id, &row.name)),
            details: json!({}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!({ "key": secret })))
}

/// `DELETE /api/agents/{agent_id}/api-keys/{key_id}` (admin): 204; the key stops working
/// before this returns.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((agent_id, key_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let _serialised = state.key_writes.lock().await;
    let mut tx = state.store.begin().await?;
    let row = super::manage::delete(
        &mut tx,
        state.store.backend,
        &caller.actor(),
        &caller.origin,
        &agent_id,
        &key_id,
    )
    .await?;
    tx.commit().await?;
    state.keys.remove(&row.id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /v1/key` (any valid key): what the presented key may do.
pub async fn introspect(principal: Principal) -> Json<Value> {
    let key = &principal.key;
    Json(json!({
        "id": key.id,
        "name": key.name,
        "agent_id": key.agent_id,
        "permissions": key.permissions.to_json(),
        "access": key.permissions.access(),
        "ip_addresses": ip_list(&key.ip_nets),
        "expires_at": opt_rfc3339(key.expires_at),
        "client_ip": principal.ip.to_string(),
    }))
}

/// Loads every key into the cache (at start-up, and after missed changes), dropping cached
/// keys that storage no longer has.
pub async fn load_cache(state: &AppState) -> anyhow::Result<usize> {
    let _serialised = state.key_writes.lock().await;
    let mut conn = state.store.pool.acquire().await?;
    // Read before the keys: every change after this version is caught by the next poll.
    let version = super::sync::current_version(&mut conn).await?;
    let rows = super::list_all(&mut conn).await?;
    let stored: std::collections::HashSet<&str> = rows.iter().map(|row| row.id.as_str()).collect();
    state.keys.retain(|key_id| stored.contains(key_id));
    for row in &rows {
        match row.to_cached() {
            Some(cached) => state.keys.put(cached),
            None => {
                tracing::error!(key_id = %row.id, "skipping a key with a malformed stored hash")
            }
        }
    }
    state
        .key_version
        .fetch_max(version, std::sync::atomic::Ordering::AcqRel);
    Ok(rows.len())
}

/// Writes batched last-used times every few seconds.
pub async fn flush_last_used(state: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tick.tick().await;
        flush_once(&state).await;
    }
}

pub async fn flush_once(state: &AppState) {
    let uses = state.keys.take_unflushed_uses();
    if uses.is_empty() {
        return;
    }
    let result = async {
        let mut tx = state.store.begin().await?;
        super::record_uses(&mut tx, &uses).await?;
        tx.commit().await
    }
    .await;
    if let Err(err) = result {
        tracing::warn!(error = %err, "writing last-used times failed");
    }
}
