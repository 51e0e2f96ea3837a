//! The guard of every `/api` route and its principal: the signed-in member (session cookie,
//! CSRF token on state-changing requests, role).

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, FromRequestParts, Request, State},
    http::{HeaderMap, HeaderValue, Method, header, request::Parts},
    middleware::Next,
    response::Response,
};
use subtle::ConstantTimeEq;

use crate::{
    http::{client_ip, error::ApiError},
    members::{
        service::Acting,
        sessions::{self, SESSION_TTL_MS, Session},
    },
    model::{
        audit::{Actor, By, Origin},
        member::Role,
    },
    state::AppState,
};

pub const COOKIE: &str = "a2v2_session";

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No session needed (setup and sign-in).
    Public,
    /// A signed-in member with at least this role.
    AtLeast(Role),
}

/// The signed-in member making an `/api` request, and where from.
#[derive(Clone, Debug)]
pub struct Caller {
    pub session: Session,
    pub origin: Origin,
}

impl Caller {
    pub fn by(&self) -> By {
        By {
            actor: Actor::member(&self.session.member.id, &self.session.member.email),
            origin: self.origin.clone(),
        }
    }

    /// The caller as the members rules see them: bound by their role.
    pub fn acting(&self) -> Acting {
        Acting {
            by: self.by(),
            role: Some(self.session.member.role),
        }
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

/// The request's origin, for public routes that act without a session.
pub struct RequestOrigin(pub Origin);

impl FromRequestParts<AppState> for RequestOrigin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0)
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no peer address")))?;
        Ok(Self(origin_of(state, peer, &parts.headers)))
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

/// The `Set-Cookie` value that starts a session.
pub fn session_cookie(token: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_TTL_MS / 1000,
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that ends a session.
pub fn expired_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// What the guard of one route knows: the state and who may call the route.
#[derive(Clone)]
pub struct Guarded {
    pub state: AppState,
    pub access: Access,
}

/// Checks the session, the CSRF token and the role; the member travels to the handler as
/// [`Caller`].
pub async fn guard(
    State(Guarded { state, access }): State<Guarded>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let minimum = match access {
        Access::Public => return Ok(next.run(request).await),
        Access::AtLeast(role) => role,
    };
    let headers = request.headers();
    let token = session_token(headers).ok_or(ApiError::Unauthenticated)?;
    let session = sessions::authenticate(&state.store, state.keys.secrets(), token)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !safe {
        let sent = headers
            .get("x-csrf-token")
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        if !bool::from(sent.ct_eq(session.csrf_token.as_bytes())) {
            return Err(ApiError::CsrfFailed);
        }
    }
    let role = session.member.role;
    if role < minimum {
        return Err(ApiError::Forbidden(format!(
            "Your role ({}) may not do this; it needs the {} role or higher.",
            role.name(),
            minimum.name(),
        )));
    }
    // Ids never need escaping; an escaped path segment names nothing that exists.
    if request.uri().path().contains('%') {
        return Err(ApiError::NotFound);
    }
    let origin = origin_of(&state, peer, headers);
    request.extensions_mut().insert(Caller { session, origin });
    Ok(next.run(request).await)
}
