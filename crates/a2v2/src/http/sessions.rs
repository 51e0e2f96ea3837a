//! `/api/setup` and `/api/session`: first-run setup, sign-in, the current session, sign-out.

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use super::{
    auth::session::{Caller, RequestOrigin, expired_cookie, session_cookie},
    error::ApiError,
    extract::Valid,
    openapi::{bodies, errors},
};
use crate::{
    members::{
        input::{Confirm, Setup, SignIn},
        sessions::{self, NewSession},
    },
    model::member::Member,
    state::AppState,
};

/// The body of a sign-in and of `GET /api/session`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionView {
    member: Member,
    /// Send it as `X-CSRF-Token` on every state-changing `/api` request.
    csrf_token: String,
}

/// The sign-in response: the member and CSRF token, and the session cookie.
pub fn signed_in(state: &AppState, session: NewSession) -> Response {
    let cookie = session_cookie(&session.token, state.config.secure_cookies);
    let mut response = Json(SessionView {
        member: session.member,
        csrf_token: session.csrf_token,
    })
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Whether the first owner still has to be created.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SetupStatus {
    needs_setup: bool,
}

/// `GET /api/setup` (public): whether the first owner still has to be created.
#[utoipa::path(get, path = "/api/setup", tag = "Session",
    responses((status = 200, description = "Whether setup is still needed.", body = SetupStatus)))]
pub async fn setup_status(State(state): State<AppState>) -> Result<Json<SetupStatus>, ApiError> {
    Ok(Json(SetupStatus {
        needs_setup: sessions::setup_needed(&state.store).await?,
    }))
}

/// `POST /api/setup` (public, once): creates the workspace and its first owner, signed in.
/// 201 `{member, csrf_token}`; 409 `already_set_up`; 422 `validation_failed`.
#[utoipa::path(post, path = "/api/setup", tag = "Session", request_body = bodies::SetupInput,
    responses(
        (status = 201, description = "The workspace and its first owner, signed in.", body = SessionView, headers(("Set-Cookie" = String, description = "The session cookie: `HttpOnly`, `SameSite=Strict`."))),
        (status = 409, response = errors::AlreadySetUp),
        (status = 429, response = errors::RateLimited),
    ))]
pub async fn setup(
    State(state): State<AppState>,
    RequestOrigin(origin): RequestOrigin,
    Valid(input): Valid<Setup>,
) -> Result<Response, ApiError> {
    let session = sessions::setup(
        &state.store,
        state.keys.secrets(),
        &state.throttle,
        &origin,
        input,
    )
    .await?;
    Ok((StatusCode::CREATED, signed_in(&state, session)).into_response())
}

/// `POST /api/session` (public): signs in. 200 `{member, csrf_token}`; 401
/// `invalid_credentials` for a wrong email or password alike; 429 `rate_limited` when throttled.
#[utoipa::path(post, path = "/api/session", tag = "Session", request_body = bodies::SignInInput,
    responses(
        (status = 200, description = "Signed in.", body = SessionView, headers(("Set-Cookie" = String, description = "The session cookie: `HttpOnly`, `SameSite=Strict`."))),
        (status = 401, response = errors::InvalidCredentials),
        (status = 429, response = errors::RateLimited),
    ))]
pub async fn sign_in(
    State(state): State<AppState>,
    RequestOrigin(origin): RequestOrigin,
    Valid(input): Valid<SignIn>,
) -> Result<Response, ApiError> {
    let session = sessions::sign_in(
        &state.store,
        state.keys.secrets(),
        &state.throttle,
        &origin,
        input,
    )
    .await?;
    Ok(signed_in(&state, session))
}

/// `GET /api/session` (any member): the signed-in member and the CSRF token.
#[utoipa::path(get, path = "/api/session", tag = "Session",
    responses((status = 200, description = "The live session.", body = SessionView)))]
pub async fn current(caller: Caller) -> Json<SessionView> {
    Json(SessionView {
        member: caller.session.member,
        csrf_token: caller.session.csrf_token,
    })
}

/// `POST /api/session/confirm` (any member): `{password}` → 204; starts a new 10-minute
/// window in which the member may copy keys. 401 `invalid_credentials` when wrong.
#[utoipa::path(post, path = "/api/session/confirm", tag = "Session",
    request_body = bodies::ConfirmInput,
    responses((status = 204, description = "Confirmed for 10 minutes."), (status = 401, response = errors::InvalidCredentials), (status = 429, response = errors::RateLimited)))]
pub async fn confirm(
    State(state): State<AppState>,
    caller: Caller,
    Valid(Confirm { password }): Valid<Confirm>,
) -> Result<StatusCode, ApiError> {
    sessions::confirm(
        &state.store,
        &state.throttle,
        &caller.session,
        &caller.origin,
        password,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/session` (any member): signs out. 204.
#[utoipa::path(delete, path = "/api/session", tag = "Session",
    responses((status = 204, description = "Signed out; the cookie is cleared.")))]
pub async fn sign_out(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    sessions::sign_out(&state.store, &caller.session.token_hash).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(value) = HeaderValue::from_str(&expired_cookie(state.config.secure_cookies)) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}
