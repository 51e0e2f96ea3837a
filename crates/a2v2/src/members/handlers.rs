//! `/api/members`: list, add, change and remove the people who may sign in.
//!
//! Handlers parse and hash; the rules and writes live in `manage`.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value};

use super::{
    manage::{self, ByWhom, Patch},
    session::Caller,
};
use crate::{
    error::{ApiError, FieldErrors},
    extract::{AppJson, AppQuery},
    pagination::{self, PageQuery},
    state::AppState,
};

fn by_whom(caller: &Caller) -> (crate::audit::Actor, Option<super::Role>) {
    (caller.actor(), Some(caller.member.role))
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

/// `POST /api/members` (admin; admins add only admins and members) `{email, password, role}`:
/// 201 member; 403 `forbidden`; 409 `conflict` for a taken email; 422 `validation_failed`.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(body): AppJson<Map<String, Value>>,
) -> Result<Response, ApiError> {
    manage::only_fields(&body, &["email", "password", "role"])?;
    let (email, role, password) = manage::check_new(
        manage::string_field(body.get("email")),
        body.get("role")
            .map_or(Err("is required".to_owned()), manage::role_field),
        Some(manage::string_field(body.get("password"))),
    )?;
    // Refuse before spending a password hash on a request that cannot succeed.
    if let Err(refusal) =
        super::rules::authorize(caller.member.role, super::rules::Change::Create { role })
    {
        return Err(refusal.into());
    }
    let password_hash = super::hash_password(password.unwrap_or_default()).await?;
    let (actor, role_of_caller) = by_whom(&caller);
    let by = ByWhom {
        actor: &actor,
        origin: &caller.origin,
        role: role_of_caller,
    };
    let mut tx = state.store.begin().await?;
    let member = manage::create(
        &mut tx,
        &by,
        &email,
        role,
        &password_hash,
        Value::Object(Map::new()),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(member.view())).into_response())
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
    let (actor, role_of_caller) = by_whom(&caller);
    let by = ByWhom {
        actor: &actor,
        origin: &caller.origin,
        role: role_of_caller,
    };
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
    let (actor, role_of_caller) = by_whom(&caller);
    let by = ByWhom {
        actor: &actor,
        origin: &caller.origin,
        role: role_of_caller,
    };
    let mut tx = state.store.begin().await?;
    manage::remove(&mut tx, &by, &member_id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
