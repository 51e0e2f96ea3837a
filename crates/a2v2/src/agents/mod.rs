//! Agents: each owns its API keys, contacts and documents; nothing crosses agents.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};
use sqlx::{AnyConnection, Row};

use crate::{
    audit::{self, Event, Target},
    error::ApiError,
    extract::{AppJson, AppQuery},
    members::session::Caller,
    pagination::{self, PageQuery},
    state::AppState,
    store::{new_id, now_ms},
    time_fmt::to_rfc3339,
};

#[derive(Clone, Debug)]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Agent {
    fn view(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "created_at": to_rfc3339(self.created_at),
            "updated_at": to_rfc3339(self.updated_at),
        })
    }
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<Agent, sqlx::Error> {
    Ok(Agent {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The agent, or 404 `not_found`.
pub async fn find(conn: &mut AnyConnection, agent_id: &str) -> Result<Agent, ApiError> {
    let row = sqlx::query("SELECT id, name, created_at, updated_at FROM agents WHERE id = $1")
        .bind(agent_id)
        .fetch_optional(conn)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(from_row(&row)?)
}

fn validate_name(body: &Map<String, Value>) -> Result<String, ApiError> {
    if let Some(unknown) = body.keys().find(|k| k.as_str() != "name") {
        return Err(ApiError::field(
            &unknown.chars().take(64).collect::<String>(),
            "is not a known field",
        ));
    }
    match body.get("name") {
        Some(Value::String(name)) => match crate::keys::text_error(name.trim(), 100, true) {
            Some(err) => Err(ApiError::field("name", err)),
            None => Ok(name.trim().to_owned()),
        },
        None | Some(Value::Null) => Err(ApiError::field("name", "is required")),
        Some(_) => Err(ApiError::field("name", "must be a string")),
    }
}

/// `GET /api/agents` (any member): agents in creation order, paginated.
pub async fn list(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    let page = query.page()?;
    let rows = sqlx::query(
        "SELECT id, name, created_at, updated_at FROM agents WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(page.after.as_deref().unwrap_or(""))
    .bind(page.limit + 1)
    .fetch_all(&state.store.pool)
    .await?;
    let agents = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(Json(pagination::respond(
        agents,
        page.limit,
        |a| a.id.clone(),
        Agent::view,
    )))
}

/// `POST /api/agents` (admin): 201 agent; 422 `validation_failed`.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(body): AppJson<Map<String, Value>>,
) -> Result<Response, ApiError> {
    let name = validate_name(&body)?;
    let now = now_ms();
    let agent = Agent {
        id: new_id("agt"),
        name,
        created_at: now,
        updated_at: now,
    };
    let mut tx = state.store.begin().await?;
    sqlx::query("INSERT INTO agents (id, name, created_at, updated_at) VALUES ($1, $2, $3, $3)")
        .bind(&agent.id)
        .bind(&agent.name)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        &caller.actor(),
        &caller.origin,
        Event {
            action: "agent.created",
            agent_id: Some(&agent.id),
            target: Some(Target::new("agent", &agent.id, &agent.name)),
            details: json!({ "name": agent.name }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(agent.view())).into_response())
}

/// `GET /api/agents/{agent_id}` (any member): 200 agent; 404.
pub async fn get(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut conn = state.store.pool.acquire().await?;
    Ok(Json(find(&mut conn, &agent_id).await?.view()))
}

/// `PATCH /api/agents/{agent_id}` (admin): rename. 200 agent; 404; 422.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(agent_id): Path<String>,
    AppJson(body): AppJson<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let name = validate_name(&body)?;
    let mut tx = state.store.begin().await?;
    let mut agent = find(&mut tx, &agent_id).await?;
    if agent.name != name {
        let previous = std::mem::replace(&mut agent.name, name);
        agent.updated_at = now_ms();
        sqlx::query("UPDATE agents SET name = $1, updated_at = $2 WHERE id = $3")
            .bind(&agent.name)
            .bind(agent.updated_at)
            .bind(&agent.id)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut tx,
            &caller.actor(),
            &caller.origin,
            Event {
                action: "agent.updated",
                agent_id: Some(&agent.id),
                target: Some(Target::new("agent", &agent.id, &agent.name)),
                details: json!({ "changes": { "name": { "from": previous, "to": agent.name } } }),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Json(agent.view()))
}

/// `DELETE /api/agents/{agent_id}` (admin): deletes the agent with its keys (revoked at once),
/// contacts and documents. 204; 404.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(agent_id): Path<String>,
) -> Result<Response, ApiError> {
    let _serialised = state.key_writes.lock().await;
    let mut tx = state.store.begin().await?;
    let agent = find(&mut tx, &agent_id).await?;
    // On PostgreSQL, lock the agent before listing its keys: a key being created for it either
    // commits first (and is listed, so every node drops it) or fails its foreign key. SQLite
    // transactions are already serialised by `BEGIN IMMEDIATE`.
    if state.store.backend == crate::store::Backend::Postgres {
        sqlx::query("SELECT id FROM agents WHERE id = $1 FOR UPDATE")
            .bind(&agent.id)
            .execute(&mut *tx)
            .await?;
    }
    let key_ids: Vec<String> = sqlx::query("SELECT id FROM api_keys WHERE agent_id = $1")
        .bind(&agent.id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| row.try_get("id"))
        .collect::<Result<_, _>>()?;
    sqlx::query("DELETE FROM agents WHERE id = $1")
        .bind(&agent.id)
        .execute(&mut *tx)
        .await?;
    let announced: Vec<&str> = key_ids.iter().map(String::as_str).collect();
    crate::keys::sync::announce_all(&mut tx, state.store.backend, &announced).await?;
    audit::record(
        &mut tx,
        &caller.actor(),
        &caller.origin,
        Event {
            action: "agent.deleted",
            agent_id: Some(&agent.id),
            target: Some(Target::new("agent", &agent.id, &agent.name)),
            details: json!({ "revoked_api_keys": key_ids }),
        },
    )
    .await?;
    tx.commit().await?;
    for key_id in &key_ids {
        state.keys.remove(key_id);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
