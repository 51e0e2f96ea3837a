//! `/api/members`: list, add, change and remove the people who may sign in; accepting invites.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;

use super::{
    auth::session::{Caller, RequestOrigin},
    error::ApiError,
    extract::{AppQuery, Valid},
    openapi::{bodies, errors},
    sessions::{SessionView, signed_in},
};
use crate::{
    members::{
        input::{AcceptInvite, CreateMember, MemberPatch},
        service,
    },
    model::{
        member::Member,
        page::{Page, PageQuery},
        time::opt_rfc3339,
    },
    state::AppState,
};

/// `GET /api/members` (any member): members in the order they were added, paginated.
#[utoipa::path(get, path = "/api/members", tag = "Members", params(PageQuery),
    responses((status = 200, description = "One page of members, in the order they were added.", body = Page<Member>)))]
pub async fn list(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<PageQuery>,
) -> Result<Json<Page<Member>>, ApiError> {
    let page = query.page().map_err(ApiError::BadRequest)?;
    Ok(Json(service::list(&state.store, &page).await?))
}

/// A member just added, with the one-time invite token when there is one.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedMember {
    #[serde(flatten)]
    member: Member,
    /// With `invite: true`: the token for `POST /api/invites/accept`, shown only here.
    #[serde(skip_serializing_if = "Option::is_none")]
    invite_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    invite_expires_at: Option<String>,
}

/// `POST /api/members` (admin; admins add only admins and members) `{email, password, role}`,
/// or `{email, role, invite: true}` to let the member choose their password with the
/// `invite_token` returned once: 201 member; 403 `forbidden`; 409 `conflict` for a taken
/// email; 422 `validation_failed`.
#[utoipa::path(post, path = "/api/members", tag = "Members", request_body = bodies::MemberInput,
    responses(
        (status = 201, description = "The new member; with `invite: true` also the one-time `invite_token`.", body = CreatedMember),
        (status = 403, response = errors::Forbidden),
        (status = 409, response = errors::MemberExists),
    ))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Valid(input): Valid<CreateMember>,
) -> Result<Response, ApiError> {
    let created =
        service::create(&state.store, state.keys.secrets(), &caller.acting(), input).await?;
    let (invite_token, invite_expires_at) = match created.invite {
        Some((token, expires_at)) => (Some(token), opt_rfc3339(Some(expires_at))),
        None => (None, None),
    };
    let body = CreatedMember {
        member: created.member,
        invite_token,
        invite_expires_at,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `POST /api/invites/accept` (public) `{token, password}`: sets the invited member's
/// password and signs them in, like `POST /api/session`. 404 `not_found` for an unknown,
/// used or expired invite; 422 for a password that is too short.
#[utoipa::path(post, path = "/api/invites/accept", tag = "Members", request_body = bodies::AcceptInviteInput,
    responses(
        (status = 200, description = "Signed in as the invited member; sets the session cookie.", body = SessionView,
            headers(("Set-Cookie" = String, description = "The session cookie."))),
        (status = 404, response = errors::NotFound),
        (status = 429, response = errors::RateLimited),
    ))]
pub async fn accept_invite(
    State(state): State<AppState>,
    RequestOrigin(origin): RequestOrigin,
    Valid(input): Valid<AcceptInvite>,
) -> Result<Response, ApiError> {
    let session = service::accept_invite(
        &state.store,
        state.keys.secrets(),
        &state.throttle,
        &origin,
        input,
    )
    .await?;
    Ok(signed_in(&state, session).into_response())
}

/// `PATCH /api/members/{member_id}` (admin) `{role}` and/or `{password}`: 200 member; 403
/// `forbidden` for an admin acting on an owner or making one; 404; 409 `last_owner`; 422.
/// A new password ends the member's sessions (other than the caller's own).
#[utoipa::path(patch, path = "/api/members/{member_id}", tag = "Members", params(("member_id" = String, Path, description = "The member's id.")),
    request_body = bodies::MemberPatchInput,
    responses(
        (status = 200, description = "The changed member.", body = Member),
        (status = 403, response = errors::Forbidden),
        (status = 409, response = errors::LastOwner),
    ))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(member_id): Path<String>,
    Valid(patch): Valid<MemberPatch>,
) -> Result<Json<Member>, ApiError> {
    let member = service::update(
        &state.store,
        &caller.acting(),
        &member_id,
        patch,
        Some(&caller.session.token_hash),
    )
    .await?;
    Ok(Json(member))
}

/// `DELETE /api/members/{member_id}` (admin): 204, their sessions end at once; 403
/// `forbidden` for an admin removing an owner; 404; 409 `last_owner`.
#[utoipa::path(delete, path = "/api/members/{member_id}", tag = "Members", params(("member_id" = String, Path, description = "The member's id.")),
    responses(
        (status = 204, description = "Removed; their sessions ended at once."),
        (status = 403, response = errors::Forbidden),
        (status = 409, response = errors::LastOwner),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(member_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    service::remove(&state.store, &caller.acting(), &member_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
