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
};
use crate::{
    keys::input::{CreateKey, KeyPatch},
    model::{ip, key::KeyView, page::Page, permissions::Permissions, time::opt_rfc3339},
    state::AppState,
};

/// `GET /api/agents/{agent_id}/api-keys` (any member): every key, newest first.
pub async fn list(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
) -> Result<Json<Page<KeyView>>, ApiError> {
    Ok(Json(Page::complete(state.keys.list(&agent_id).await?)))
}

/// `POST /api/agents/{agent_id}/api-keys` (admin): 201 key with `key`, the secret, shown once.
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
pub async fn validate(Valid(_): Valid<CreateKey>) -> StatusCode {
    StatusCode::NO_CONTENT
}

/// `GET /api/agents/{agent_id}/api-keys/{key_id}` (any member): one key, no secret.
pub async fn get(
    State(state): State<AppState>,
    Path((agent_id, key_id)): Path<(String, String)>,
) -> Result<Json<KeyView>, ApiError> {
    Ok(Json(state.keys.get(&agent_id, &key_id).await?))
}

/// `PATCH /api/agents/{agent_id}/api-keys/{key_id}` (admin): changes name, description,
/// ip_addresses, permissions, expires_at; effective for the very next request. 200 key.
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

#[derive(Serialize)]
pub struct Revealed {
    key: String,
}

/// `POST /api/agents/{agent_id}/api-keys/{key_id}/reveal` (admin): `{key}` for Copy API Key;
/// 409 `reveal_disabled` when the server keeps no copy.
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
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((agent_id, key_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.keys.delete(&caller.by(), &agent_id, &key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What `GET /v1/key` tells an integration about its own key.
#[derive(Serialize)]
pub struct KeyIntrospection {
    id: String,
    name: String,
    agent_id: String,
    permissions: Permissions,
    access: Vec<&'static str>,
    ip_addresses: Vec<String>,
    expires_at: Option<String>,
    client_ip: String,
}

/// `GET /v1/key` (any valid key): what the presented key may do.
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
