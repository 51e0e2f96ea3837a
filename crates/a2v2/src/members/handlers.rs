//! `/api/members`: list, add, change and remove the people who may sign in.
//!
//! Handlers parse and hash; the rules and writes live in `manage`.

use std::net::SocketAddr;

use axum::{
    Json,
    extract::{ConnectInfo, Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

use super::{
    invites,
    manage::{self, ByWhom, Patch},
    session::{self, Caller},
};
use crate::{
    audit::{self, Actor, Event, Target},
    crypto::random_token,
    error::{ApiError, FieldErrors},
    extract::{AppJson, AppQuery},
    pagination::{self, PageQuery},
    state::AppState,
    store::now_ms,
    time_fmt::to_rfc3339,
};

fn by_whom(caller: &Caller) -> ByWhom<'_> {
    ByWhom {
        actor: caller.actor(),
        origin: &caller.origin,
        role: Some(caller.member.role),
    }
}

/// `GET /api/members` (any member): members in the order they were added, paginated.
pub async fn list(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    let page = query.page()?;
    let mut conn = state.store.pool.acquire().await?;
    let members = super::list(&mut conn, page.after.as_deref(), page.limit + 1).await?;
    Ok(Json(pagination::respond(
        members,
        page.limit,
        |m| m.id.clone(),
        super::Member::view,
    )))
}

/// `POST /api/members` (admin; admins add only admins and members) `{email, password, role}`,
/// or `{email, role, invite: true}` to let the member choose their password with the
/// `invite_token` returned once: 201 member; 403 `forbidden`; 409 `conflict` for a taken
/// email; 422 `validation_failed`.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(body): AppJson<Map<String, Value>>,
) -> Result<Response, ApiError> {
    manage::only_fields(&body, &["email", "password", "role", "invite"])?;
    let invite = match body.get("invite") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(_) => return Err(ApiError::field("invite", "must be true or false")),
    };
    if invite && body.get("password").is_some_and(|p| !p.is_null()) {
        return Err(ApiError::field(
            "password",
            "must be left out with an invite; the member chooses it",
        ));
    }
    let (email, role, password) = manage::check_new(
        manage::string_field(body.get("email")),
        body.get("role")
            .map_or(Err("is required".to_owned()), manage::role_field),
        (!invite).then(|| manage::string_field(body.get("password"))),
    )?;
    // Refuse before spending a password hash on a request that cannot succeed.
    super::rules::authorize(caller.member.role, super::rules::Change::Create { role })?;
    // An invited member gets a real hash of a secret nobody knows: sign-in stays impossible
    // and takes as long as for anyone else.
    let invite_token = invite.then(random_token);
    let password = password.unwrap_or_else(random_token);
    let password_hash = super::hash_password(password).await?;
    let by = by_whom(&caller);
    let mut tx = state.store.begin().await?;
    let member = manage::create(
        &mut tx,
        &by,
        &email,
        role,
        &password_hash,
        json!({ "invite": invite }),
    )
    .await?;
    let mut view = member.view();
    if let Some(token) = &invite_token {
        let hash = invites::token_hash(state.keys.secrets(), token);
        let expires_at = invites::insert(&mut tx, &hash, &member.id, now_ms()).await?;
        view["invite_token"] = json!(token);
        view["invite_expires_at"] = json!(to_rfc3339(expires_at));
    }
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `POST /api/invites/accept` (public) `{token, password}`: sets the invited member's
/// password and signs them in, like `POST /api/session`. 404 `not_found` for an unknown,
/// used or expired invite; 422 for a password that is too short.
pub async fn accept_invite(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    AppJson(body): AppJson<Map<String, Value>>,
) -> Result<Response, ApiError> {
    manage::only_fields(&body, &["token", "password"])?;
    let mut errors = FieldErrors::new();
    let token = manage::string_field(body.get("token"))
        .map_err(|err| errors.insert("token".into(), err))
        .ok();
    let password = manage::string_field(body.get("password"))
        .and_then(|password| match super::password_error(password) {
            Some(err) => Err(err),
            None => Ok(password.to_owned()),
        })
        .map_err(|err| errors.insert("password".into(), err))
        .ok();
    let (Some(token), Some(password)) = (token, password) else {
        return Err(ApiError::validation(errors));
    };
    let hash = invites::token_hash(state.keys.secrets(), token.trim());
    let origin = session::origin_of(&state, peer, &headers);
    // Guessing tokens is throttled like guessing passwords, before any Argon2 work.
    let ip = origin.ip.clone().unwrap_or_default();
    if let Err(retry_after) = state.throttle.attempt(None, &ip, now_ms()) {
        return Err(ApiError::RateLimited { retry_after });
    }
    let password_hash = super::hash_password(password).await?;
    let mut tx = state.store.begin().await?;
    let member_id = invites::take(&mut tx, &hash, now_ms())
        .await?
        .ok_or(ApiError::NotFound)?;
    let member = super::find(&mut tx, &member_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    super::set_password_hash(&mut tx, &member.id, &password_hash, now_ms()).await?;
    let actor = Actor::member(&member.id, &member.email);
    audit::record(
        &mut tx,
        &actor,
        &origin,
        Event {
            action: "member.updated",
            agent_id: None,
            target: Some(Target::new("member", &member.id, &member.email)),
            details: json!({ "invite_accepted": true }),
        },
    )
    .await?;
    let response = session::start_session(&state, &mut tx, &member, &origin).await?;
    tx.commit().await?;
    state.throttle.succeeded(None, &ip);
    Ok(response)
}

/// `PATCH /api/members/{member_id}` (admin) `{role}` and/or `{password}`: 200 member; 403
/// `forbidden` for an admin acting on an owner or making one; 404; 409 `last_owner`; 422.
/// A new password ends the member's sessions (other than the caller's own).
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(member_id): Path<String>,
    AppJson(body): AppJson<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    manage::only_fields(&body, &["role", "password"])?;
    let mut errors = FieldErrors::new();
    let role = match body.get("role") {
        None => None,
        Some(value) => manage::role_field(value)
            .map_err(|err| errors.insert("role".into(), err))
            .ok(),
    };
    let password = match body.get("password") {
        None => None,
        Some(value) => manage::string_field(Some(value))
            .and_then(|password| match super::password_error(password) {
                Some(err) => Err(err),
                None => Ok(password.to_owned()),
            })
            .map_err(|err| errors.insert("password".into(), err))
            .ok(),
    };
    if errors.is_empty() && role.is_none() && password.is_none() {
        errors.insert("role".into(), "or `password` is required".into());
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let password_hash = match password {
        Some(password) => Some(super::hash_password(password).await?),
        None => None,
    };
    let by = by_whom(&caller);
    let mut tx = state.store.begin().await?;
    let member = manage::update(
        &mut tx,
        &by,
        &member_id,
        Patch {
            role,
            password_hash,
        },
        Some(caller.session_hash()),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(member.view()))
}

/// `DELETE /api/members/{member_id}` (admin): 204, their sessions end at once; 403
/// `forbidden` for an admin removing an owner; 404; 409 `last_owner`.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(member_id): Path<String>,
) -> Result<Response, ApiError> {
    let by = by_whom(&caller);
    let mut tx = state.store.begin().await?;
    manage::remove(&mut tx, &by, &member_id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
