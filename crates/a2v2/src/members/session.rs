//! Dashboard sessions: first-run setup, sign-in and sign-out, and the guard of `/api` routes
//! (session cookie, CSRF token, role).

use std::net::SocketAddr;

use axum::{
    Json,
    extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Row;
use subtle::ConstantTimeEq;

use super::{Member, Role, roles::Access};
use crate::{
    access::client_ip,
    audit::{self, Actor, Event, Origin, Target},
    crypto::random_token,
    error::{ApiError, FieldErrors},
    extract::AppJson,
    state::AppState,
    store::{is_unique_violation, new_id, now_ms},
    validate::email_error,
};

pub const COOKIE: &str = "a2v2_session";
const SESSION_TTL_MS: i64 = 12 * 60 * 60 * 1000;

/// The signed-in member making an `/api` request, and where from.
#[derive(Clone, Debug)]
pub struct Caller {
    pub member: Member,
    pub origin: Origin,
    token_hash: String,
}

impl Caller {
    pub fn actor(&self) -> Actor {
        Actor::member(&self.member.id, &self.member.email)
    }

    /// The stored hash of this request's session token.
    pub fn session_hash(&self) -> &str {
        &self.token_hash
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or(ApiError::Unauthenticated)
    }
}

/// Where a dashboard request came from, resolved like `/v1` client addresses.
pub fn origin_of(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> Origin {
    Origin {
        ip: Some(client_ip::resolve(peer.ip(), headers, &state.config.trusted_proxies).to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(512).collect()),
    }
}

fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then_some(value)
        })
}

/// Guard for every `/api` route: who may call it comes from `roles::API_ROUTES`.
pub async fn guard(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    // HEAD is answered by the GET handler, so it needs what GET needs.
    let method = match request.method() {
        &Method::HEAD => Method::GET,
        other => other.clone(),
    };
    let Some(access) = super::roles::required_access(&method, &route) else {
        return refuse_unlisted(&route);
    };
    let minimum = match access {
        Access::Public => return Ok(next.run(request).await),
        Access::AtLeast(role) => role,
    };
    let headers = request.headers();
    let token = session_token(headers).ok_or(ApiError::Unauthenticated)?;
    let token_hash = state.keys.secrets().session_hash(token);
    let row = sqlx::query(
        "SELECT m.id, m.email, m.role, m.created_at, s.csrf_token FROM sessions s \
         JOIN members m ON m.id = s.member_id WHERE s.token_hash = $1 AND s.expires_at > $2",
    )
    .bind(&token_hash)
    .bind(now_ms())
    .fetch_optional(&state.store.pool)
    .await?
    .ok_or(ApiError::Unauthenticated)?;
    let member = super::from_row(&row)?;
    let csrf: String = row.try_get("csrf_token")?;
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !safe {
        let sent = headers
            .get("x-csrf-token")
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        if !bool::from(sent.ct_eq(csrf.as_bytes())) {
            return Err(ApiError::CsrfFailed);
        }
    }
    if member.role < minimum {
        return Err(ApiError::Forbidden(format!(
            "Your role ({}) may not do this; it needs the {} role or higher.",
            member.role.name(),
            minimum.name(),
        )));
    }
    // Ids never need escaping; an escaped path segment names nothing that exists.
    if request.uri().path().contains('%') {
        return Err(ApiError::NotFound);
    }
    let origin = origin_of(&state, peer, headers);
    request.extensions_mut().insert(Caller {
        member,
        origin,
        token_hash,
    });
    Ok(next.run(request).await)
}

/// A method the table does not list for a known route is 405 with `Allow`; a route missing
/// from the table altogether is a bug, refused rather than left open.
fn refuse_unlisted(route: &str) -> Result<Response, ApiError> {
    let allowed = super::roles::allowed_methods(route);
    if allowed.is_empty() {
        return Err(ApiError::internal(anyhow::anyhow!(
            "no role entry for {route}"
        )));
    }
    let allow = allowed.join(", ");
    let mut response =
        ApiError::MethodNotAllowed(format!("This method is not allowed here; use {allow}."))
            .into_response();
    if let Ok(value) = HeaderValue::from_str(&allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    Ok(response)
}

#[derive(Deserialize)]
pub struct SetupRequest {
    #[serde(default)]
    email: Value,
    #[serde(default)]
    password: Value,
    workspace_name: Option<Value>,
}

#[derive(Deserialize)]
pub struct SignInRequest {
    #[serde(default)]
    email: Value,
    #[serde(default)]
    password: Value,
}

fn string_field<'a>(errors: &mut FieldErrors, name: &str, value: &'a Value) -> &'a str {
    match value {
        Value::String(text) => text,
        Value::Null => {
            errors.insert(name.into(), "is required".into());
            ""
        }
        _ => {
            errors.insert(name.into(), "must be a string".into());
            ""
        }
    }
}

/// `GET /api/setup` (public): whether the first owner still has to be created.
pub async fn setup_status(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut conn = state.store.pool.acquire().await?;
    let members = super::count(&mut conn).await?;
    Ok(Json(json!({ "needs_setup": members == 0 })))
}

/// `POST /api/setup` (public, once): creates the workspace and its first owner, signed in.
/// 201 `{member, csrf_token}`; 409 `already_set_up`; 422 `validation_failed`.
pub async fn setup(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    AppJson(body): AppJson<SetupRequest>,
) -> Result<Response, ApiError> {
    let mut errors = FieldErrors::new();
    let email = string_field(&mut errors, "email", &body.email)
        .trim()
        .to_owned();
    let password = string_field(&mut errors, "password", &body.password).to_owned();
    let workspace_name = match &body.workspace_name {
        None | Some(Value::Null) => "Workspace".to_owned(),
        Some(value) => string_field(&mut errors, "workspace_name", value)
            .trim()
            .to_owned(),
    };
    if !errors.contains_key("email")
        && let Some(err) = email_error(&email)
    {
        errors.insert("email".into(), err.into());
    }
    if !errors.contains_key("password")
        && let Some(err) = super::password_error(&password)
    {
        errors.insert("password".into(), err);
    }
    if !errors.contains_key("workspace_name")
        && let Some(err) = crate::keys::text_error(&workspace_name, 100, true)
    {
        errors.insert("workspace_name".into(), err);
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let password_hash = super::hash_password(password).await?;
    let origin = origin_of(&state, peer, &headers);
    let now = now_ms();
    let member = Member {
        id: new_id("mem"),
        email,
        role: Role::Owner,
        created_at: now,
    };
    let mut tx = state.store.begin().await?;
    if super::count(&mut tx).await? > 0 {
        return Err(ApiError::AlreadySetUp);
    }
    // The fixed primary key makes a concurrent second setup fail instead of adding an owner.
    let inserted =
        sqlx::query("INSERT INTO workspace (id, name, created_at) VALUES ('default', $1, $2)")
            .bind(&workspace_name)
            .bind(now)
            .execute(&mut *tx)
            .await;
    match inserted {
        Err(err) if is_unique_violation(&err) => return Err(ApiError::AlreadySetUp),
        other => other?,
    };
    super::insert(&mut tx, &member, &password_hash).await?;
    let actor = Actor::member(&member.id, &member.email);
    audit::record(
        &mut tx,
        &actor,
        &origin,
        Event {
            action: "workspace.setup",
            agent_id: None,
            target: Some(Target::new("workspace", "default", &workspace_name)),
            details: json!({ "workspace_name": workspace_name }),
        },
    )
    .await?;
    let response = start_session(&state, &mut tx, &member, &origin).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, response).into_response())
}

/// Creates a session row, records `session.created` and builds the sign-in response.
pub(crate) async fn start_session(
    state: &AppState,
    tx: &mut sqlx::AnyConnection,
    member: &Member,
    origin: &Origin,
) -> Result<Response, ApiError> {
    let token = random_token();
    let csrf_token = random_token();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO sessions (token_hash, member_id, csrf_token, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(state.keys.secrets().session_hash(&token))
    .bind(&member.id)
    .bind(&csrf_token)
    .bind(now)
    .bind(now + SESSION_TTL_MS)
    .execute(&mut *tx)
    .await?;
    audit::record(
        tx,
        &Actor::member(&member.id, &member.email),
        origin,
        Event {
            action: "session.created",
            agent_id: None,
            target: Some(Target::new("member", &member.id, &member.email)),
            details: json!({}),
        },
    )
    .await?;
    let cookie = format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_TTL_MS / 1000,
        if state.config.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    );
    let mut response =
        Json(json!({ "member": member.view(), "csrf_token": csrf_token })).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// `POST /api/session` (public): signs in. 200 `{member, csrf_token}`; 401
/// `invalid_credentials` for a wrong email or password alike; 429 `rate_limited` when throttled.
pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    AppJson(body): AppJson<SignInRequest>,
) -> Result<Response, ApiError> {
    let mut errors = FieldErrors::new();
    let email = string_field(&mut errors, "email", &body.email)
        .trim()
        .to_owned();
    let password = string_field(&mut errors, "password", &body.password).to_owned();
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let origin = origin_of(&state, peer, &headers);
    let ip = origin.ip.clone().unwrap_or_default();
    let now = now_ms();
    // A string that is not an email cannot match a member; it counts against the IP only
    // (and stays out of storage queries, where PostgreSQL would refuse a NUL byte).
    let plausible = email_error(&email).is_none();
    let throttled_email = plausible.then_some(email.as_str());
    if let Err(retry_after) = state.throttle.attempt(throttled_email, &ip, now) {
        return Err(ApiError::RateLimited { retry_after });
    }
    let found = if plausible {
        let mut conn = state.store.pool.acquire().await?;
        super::find_by_email(&mut conn, &email).await?
    } else {
        None
    };
    let (member, hash) = match found {
        Some((member, hash)) => (Some(member), Some(hash)),
        None => (None, None),
    };
    let password_ok = super::verify_password(password, hash).await;
    let mut tx = state.store.begin().await?;
    match member.filter(|_| password_ok) {
        Some(member) => {
            state.throttle.succeeded(throttled_email, &ip);
            let response = start_session(&state, &mut tx, &member, &origin).await?;
            tx.commit().await?;
            Ok(response)
        }
        None => {
            let label: String = email
                .chars()
                .filter(|c| !c.is_control())
                .take(100)
                .collect();
            audit::record(
                &mut tx,
                &Actor {
                    kind: "member",
                    id: None,
                    label: Some(label),
                },
                &origin,
                Event {
                    action: "session.failed",
                    agent_id: None,
                    target: None,
                    details: json!({ "reason": "invalid_credentials" }),
                },
            )
            .await?;
            tx.commit().await?;
            Err(ApiError::InvalidCredentials)
        }
    }
}

/// `GET /api/session` (any member): the signed-in member and the CSRF token.
pub async fn current(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let row = sqlx::query("SELECT csrf_token FROM sessions WHERE token_hash = $1")
        .bind(&caller.token_hash)
        .fetch_optional(&state.store.pool)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let csrf: String = row.try_get("csrf_token")?;
    Ok(Json(
        json!({ "member": caller.member.view(), "csrf_token": csrf }),
    ))
}

/// `DELETE /api/session` (any member): signs out. 204.
pub async fn sign_out(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(&caller.token_hash)
        .execute(&state.store.pool)
        .await?;
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}
