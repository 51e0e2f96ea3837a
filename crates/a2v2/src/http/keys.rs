//! `/api/agents/{agent_id}/api-keys…`: the management of keys, and `GET /v1/key`.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;

use super::{
    auth::{api_key::Principal, session::Caller},
    error::ApiError,
    extract::Valid,
    openapi::{bodies::KeyInput, errors},
};
use crate::{
    keys::input::{CreateKey, KeyPatch},
    model::{ip, key::KeyView, page::Page, permissions::Permissions, time::opt_rfc3339},
    state::AppState,
};

/// `GET /api/agents/{agent_id}/api-keys` (any member): every key, newest first.
#[utoipa::path(get, path = "/api/agents/{agent_id}/api-keys", tag = "API keys",
    params(("agent_id" = String, Path, description = "The agent's id.")),
    responses((status = 200, description = "Every key of the agent, newest first, in one page.", body = Page<KeyView>)))]
pub async fn list(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
) -> Result<Json<Page<KeyView>>, ApiError> {
    Ok(Json(Page::complete(state.keys.list(&agent_id).await?)))
}

/// `POST /api/agents/{agent_id}/api-keys` (admin): 201 key with `key`, the secret, shown once.
#[utoipa::path(post, path = "/api/agents/{agent_id}/api-keys", tag = "API keys",
    params(("agent_id" = String, Path, description = "The agent's id.")), request_body = KeyInput,
    responses((status = 201, description = "The new key with `key`, the secret, shown only here.", body = KeyView)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(agent_id): Path<String>,
    Valid(CreateKey(changes)): Valid<CreateKey>,
) -> Result<Response, ApiError> {
    let member = &caller.session.member;
    let view = state
        .keys
        .create(
            &caller.by(),
            &agent_id,
            Some((&member.id, &member.email)),
            changes,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `POST /api/agents/{agent_id}/api-keys/validate` (admin): checks a key's fields with the
/// same rules as a create, without creating anything — the dashboard checks each step of the
/// Add API Key form with it. 204; 422 `validation_failed` with `fields`.
#[utoipa::path(post, path = "/api/agents/{agent_id}/api-keys/validate", tag = "API keys",
    params(("agent_id" = String, Path, description = "The agent's id.")), request_body = KeyInput,
    responses((status = 204, description = "The fields would make a valid key; nothing was created.")))]
pub async fn validate(Valid(_): Valid<CreateKey>) -> StatusCode {
    StatusCode::NO_CONTENT
}

/// `GET /api/agents/{agent_id}/api-keys/{key_id}` (any member): one key, no secret.
#[utoipa::path(get, path = "/api/agents/{agent_id}/api-keys/{key_id}", tag = "API keys",
    params(("agent_id" = String, Path, description = "The agent's id."), ("key_id" = String, Path, description = "The key's id.")),
    responses((status = 200, description = "The key, without its secret.", body = KeyView)))]
pub async fn get(
    State(state): State<AppState>,
    Path((agent_id, key_id)): Path<(String, String)>,
) -> Result<Json<KeyView>, ApiError> {
    Ok(Json(state.keys.get(&agent_id, &key_id).await?))
}

/// `PATCH /api/agents/{agent_id}/api-keys/{key_id}` (admin): changes name, description,
/// ip_addresses, permissions, expires_at; effective for the very next request. 200 key.
#[utoipa::path(patch, path = "/api/agents/{agent_id}/api-keys/{key_id}", tag = "API keys",
    params(("agent_id" = String, Path, description = "The agent's id."), ("key_id" = String, Path, description = "The key's id.")), request_body = KeyInput,
    responses((status = 200, description = "The changed key; in force for the very next request.", body = KeyView)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((agent_id, key_id)): Path<(String, String)>,
    Valid(KeyPatch(changes)): Valid<KeyPatch>,
) -> Result<Json<KeyView>, ApiError> {
    Ok(Json(
        state
            .keys
            .update(&caller.by(), &agent_id, &key_id, changes)
            .await?,
    ))
}

/// The secret of a key, for Copy API Key.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Revealed {
    key: String,
}

/// `POST /api/agents/{agent_id}/api-keys/{key_id}/reveal` (admin): `{key}` for Copy API Key;
/// 409 `reveal_disabled` when the server keeps no copy.
#[utoipa::path(post, path = "/api/agents/{agent_id}/api-keys/{key_id}/reveal", tag = "API keys",
    params(("agent_id" = String, Path, description = "The agent's id."), ("key_id" = String, Path, description = "The key's id.")),
    responses(
        (status = 200, description = "The key's secret.", body = Revealed),
        (status = 409, response = errors::RevealDisabled),
    ))]
pub async fn reveal(
    State(state): State<AppState>,
    caller: Caller,
    Path((agent_id, key_id)): Path<(String, String)>,
) -> Result<Json<Revealed>, ApiError> {
    let key = state.keys.reveal(&caller.by(), &agent_id, &key_id).await?;
    Ok(Json(Revealed { key }))
}

/// `DELETE /api/agents/{agent_id}/api-keys/{key_id}` (admin): 204; the key stops working
/// before this returns.
#[utoipa::path(delete, path = "/api/agents/{agent_id}/api-keys/{key_id}", tag = "API keys",
    params(("agent_id" = String, Path, description = "The agent's id."), ("key_id" = String, Path, description = "The key's id.")),
    responses((status = 204, description = "Deleted; the key stopped working before this answer.")))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((agent_id, key_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.keys.delete(&caller.by(), &agent_id, &key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What `GET /v1/key` tells an integration about its own key.
#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyIntrospection {
    id: String,
    name: String,
    agent_id: String,
    permissions: Permissions,
    #[schema(value_type = Vec<String>)]
    access: Vec<&'static str>,
    ip_addresses: Vec<String>,
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    /// The address the server saw the request come from.
    client_ip: String,
}

/// `GET /v1/key` (any valid key): what the presented key may do.
#[utoipa::path(get, path = "/v1/key", tag = "Key",
    responses((status = 200, description = "The presented key: its agent, permissions and limits.", body = KeyIntrospection)))]
pub async fn introspect(principal: Principal) -> Json<KeyIntrospection> {
    let key = &principal.key;
    Json(KeyIntrospection {
        id: key.id.clone(),
        name: key.name.clone(),
        agent_id: key.agent_id.clone(),
        permissions: key.permissions,
        access: key.permissions.access(),
        ip_addresses: ip::display_list(&key.ip_nets),
        expires_at: opt_rfc3339(key.expires_at),
        client_ip: principal.ip.to_string(),
    })
}
