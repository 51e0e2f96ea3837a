//! `/api/agents/{agent_id}/api-keys…`: the management of keys, and `GET /v1/key`.

use axum::{
    Json,
    extract::{Path, State},
    http::{Method, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use serde_json::{Map, Value};

use super::{
    auth::{
        api_key::{self, Anonymous, Principal},
        session::Caller,
    },
    error::ApiError,
    extract::Valid,
    openapi::{
        bodies::{KeyInput, LeakInput, RollInput, SimulateInput},
        errors,
    },
};
use crate::{
    keys::{
        input::{CreateKey, KeyPatch, LeakReport, RollKey},
        service::KeyUsage,
    },
    model::{
        FieldErrors,
        audit::{Actor, By},
        ip,
        key::KeyView,
        now_ms,
        page::Page,
        permissions::{Permission, Permissions},
        time::opt_rfc3339,
    },
    state::AppState,
    validate::FromBody,
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
/// 409 `reveal_disabled` when the server keeps no copy; 403 `reauth_required` unless the
/// member entered their password in the last 10 minutes.
#[utoipa::path(post, path = "/api/agents/{agent_id}/api-keys/{key_id}/reveal", tag = "API keys",
    params(("agent_id" = String, Path, description = "The agent's id."), ("key_id" = String, Path, description = "The key's id.")),
    responses(
        (status = 200, description = "The key's secret.", body = Revealed),
        (status = 403, response = errors::ReauthRequired),
        (status = 409, response = errors::RevealDisabled),
    ))]
pub async fn reveal(
    State(state): State<AppState>,
    caller: Caller,
    Path((agent_id, key_id)): Path<(String, String)>,
) -> Result<Json<Revealed>, ApiError> {
    if !caller.session.recently_confirmed(now_ms()) {
        return Err(ApiError::ReauthRequired);
    }
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

/// `POST /api/agents/{agent_id}/api-keys/{key_id}/roll` (admin): a new secret for the same
/// key; the old one works for `grace_seconds` more. 200 key with the new `key` and
/// `previous_expires_at`.
#[utoipa::path(post, path = "/api/agents/{agent_id}/api-keys/{key_id}/roll", tag = "API keys",
    params(("agent_id" = String, Path, description = "The agent's id."), ("key_id" = String, Path, description = "The key's id.")),
    request_body = RollInput,
    responses((status = 200, description = "The key with its new secret in `key`, and `previous_expires_at`.", body = KeyView)))]
pub async fn roll(
    State(state): State<AppState>,
    caller: Caller,
    Path((agent_id, key_id)): Path<(String, String)>,
    Valid(RollKey { grace_seconds }): Valid<RollKey>,
) -> Result<Json<KeyView>, ApiError> {
    Ok(Json(
        state
            .keys
            .roll(&caller.by(), &agent_id, &key_id, grace_seconds)
            .await?,
    ))
}

/// The body of a simulation: `{method, path, ip}`.
#[derive(Debug)]
pub struct SimulatedRequest {
    pub method: Method,
    pub path: String,
    pub ip: std::net::IpAddr,
}

impl FromBody for SimulatedRequest {
    const FIELDS: &'static [&'static str] = &["method", "path", "ip"];

    fn from_body(body: &Map<String, Value>, errors: &mut FieldErrors) -> Option<Self> {
        let method = match body.get("method").and_then(Value::as_str) {
            Some(text) => match Method::from_bytes(text.trim().to_ascii_uppercase().as_bytes()) {
                Ok(method) => Some(method),
                Err(_) => {
                    errors.insert("method".into(), "must be an HTTP method such as GET".into());
                    None
                }
            },
            None => {
                errors.insert("method".into(), "is required".into());
                None
            }
        };
        let path = match body.get("path").and_then(Value::as_str) {
            Some(path) if path.starts_with('/') && path.len() <= 2000 => {
                // The guard sees the path without its query.
                Some(path.split('?').next().unwrap_or(path).to_owned())
            }
            Some(_) => {
                errors.insert(
                    "path".into(),
                    "must be a path starting with /, such as /v1/contacts".into(),
                );
                None
            }
            None => {
                errors.insert("path".into(), "is required".into());
                None
            }
        };
        let ip = match body.get("ip").and_then(Value::as_str).map(str::trim) {
            Some(text) => match text.parse() {
                Ok(ip) => Some(ip),
                Err(_) => {
                    errors.insert("ip".into(), "must be an IPv4 or IPv6 address".into());
                    None
                }
            },
            None => {
                errors.insert("ip".into(), "is required".into());
                None
            }
        };
        Some(Self {
            method: method?,
            path: path?,
            ip: ip?,
        })
    }
}

/// What the simulator answers.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Verdict {
    allowed: bool,
    status: u16,
    code: Option<&'static str>,
    message: Option<String>,
    required_permission: Option<String>,
}

/// `POST /api/agents/{agent_id}/api-keys/{key_id}/simulate` (any member):
/// `{method, path, ip}` → what the `/v1` guard would answer that request with this key now.
#[utoipa::path(post, path = "/api/agents/{agent_id}/api-keys/{key_id}/simulate", tag = "API keys",
    params(("agent_id" = String, Path, description = "The agent's id."), ("key_id" = String, Path, description = "The key's id.")),
    request_body = SimulateInput,
    responses((status = 200, description = "What the `/v1` guard would answer.", body = Verdict)))]
pub async fn simulate(
    State(state): State<AppState>,
    Path((agent_id, key_id)): Path<(String, String)>,
    Valid(request): Valid<SimulatedRequest>,
) -> Result<Json<Verdict>, ApiError> {
    let key = state.keys.cached(&agent_id, &key_id).await?;
    let (required, verdict) = api_key::simulate(
        &state,
        key,
        &request.method,
        &request.path,
        request.ip,
        now_ms(),
    );
    let required_permission = required.map(Permission::name);
    Ok(Json(match verdict {
        Ok(()) => Verdict {
            allowed: true,
            status: 200,
            code: None,
            message: None,
            required_permission,
        },
        Err(err) => Verdict {
            allowed: false,
            status: err.status().as_u16(),
            code: Some(err.code()),
            message: Some(err.to_string()),
            required_permission,
        },
    }))
}

/// `GET /api/agents/{agent_id}/api-keys/{key_id}/usage` (any member): the last use of each
/// granted permission and the recent client addresses.
#[utoipa::path(get, path = "/api/agents/{agent_id}/api-keys/{key_id}/usage", tag = "API keys",
    params(("agent_id" = String, Path, description = "The agent's id."), ("key_id" = String, Path, description = "The key's id.")),
    responses((status = 200, description = "Last use per granted permission and recent client addresses.", body = KeyUsage)))]
pub async fn usage(
    State(state): State<AppState>,
    Path((agent_id, key_id)): Path<(String, String)>,
) -> Result<Json<KeyUsage>, ApiError> {
    Ok(Json(state.keys.usage(&agent_id, &key_id).await?))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Suspension {
    suspended: bool,
}

/// `POST /api/keys/suspend-all` (owner): every key answers 401 until resumed.
#[utoipa::path(post, path = "/api/keys/suspend-all", tag = "API keys",
    responses((status = 200, description = "Every key is refused until resumed.", body = Suspension)))]
pub async fn suspend_all(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Suspension>, ApiError> {
    state.keys.suspend_all(&caller.by(), true).await?;
    Ok(Json(Suspension { suspended: true }))
}

/// `POST /api/keys/resume-all` (owner): keys work again.
#[utoipa::path(post, path = "/api/keys/resume-all", tag = "API keys",
    responses((status = 200, description = "Keys work again.", body = Suspension)))]
pub async fn resume_all(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Suspension>, ApiError> {
    state.keys.suspend_all(&caller.by(), false).await?;
    Ok(Json(Suspension { suspended: false }))
}

/// `GET /api/keys/suspension` (any member): whether the incident switch is on.
#[utoipa::path(get, path = "/api/keys/suspension", tag = "API keys",
    responses((status = 200, description = "Whether every key is suspended.", body = Suspension)))]
pub async fn suspension(State(state): State<AppState>) -> Json<Suspension> {
    Json(Suspension {
        suspended: state.keys.is_suspended(),
    })
}

/// `POST /v1/leaked-keys {"key": …}` (no key; throttled per client): revokes a leaked key.
/// 202 whatever was sent, so that the endpoint tells nothing about keys.
#[utoipa::path(post, path = "/v1/leaked-keys", tag = "Key",
    request_body = LeakInput,
    responses((status = 202, description = "Received; the same answer whatever was sent.", body = Object)))]
pub async fn report_leak(
    State(state): State<AppState>,
    anonymous: Anonymous,
    Valid(LeakReport { key }): Valid<LeakReport>,
) -> Result<Response, ApiError> {
    let by = By {
        actor: Actor {
            kind: "system".into(),
            id: None,
            label: Some("leaked-key report".into()),
        },
        origin: anonymous.origin,
    };
    state.keys.report_leak(&by, &key).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "status": "accepted" })),
    )
        .into_response())
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
        id: key.id().to_owned(),
        name: key.name().to_owned(),
        agent_id: key.agent_id.to_string(),
        permissions: key.permissions,
        access: key.permissions.access(),
        ip_addresses: ip::display_list(key.ip_nets()),
        expires_at: opt_rfc3339(key.expires_at),
        client_ip: principal.ip.to_string(),
    })
}
