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
/// The cookie's name when served over https: the `__Host-` prefix makes browsers refuse it
/// unless it is `Secure`, host-only and for `/`, so a sibling subdomain cannot plant one.
pub const SECURE_COOKIE: &str = "__Host-a2v2_session";

fn cookie_name(secure: bool) -> &'static str {
    if secure { SECURE_COOKIE } else { COOKIE }
}

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

/// The session token, if exactly one session cookie was sent: with two, one may have been
/// planted, and neither is trusted.
fn session_token(headers: &HeaderMap, secure: bool) -> Option<&str> {
    let name = cookie_name(secure);
    let mut tokens = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then_some(value)
        });
    let token = tokens.next()?;
    tokens.next().is_none().then_some(token)
}

/// The `Set-Cookie` value that starts a session.
pub fn session_cookie(token: &str, secure: bool) -> String {
    format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        cookie_name(secure),
        SESSION_TTL_MS / 1000,
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that ends a session.
pub fn expired_cookie(secure: bool) -> String {
    format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        cookie_name(secure),
        if secure { "; Secure" } else { "" }
    )
}

/// What the guard of one route knows: the state and who may call the route.
#[derive(Clone)]
pub struct Guarded {
    pub state: AppState,
    pub access: Access,
}

/// The refusal of a member whose role is below what a route needs.
pub fn role_too_low(role: Role, minimum: Role) -> ApiError {
    ApiError::Forbidden(format!(
        "Your role ({}) may not do this; it needs the {} role or higher.",
        role.name(),
        minimum.name(),
    ))
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
    let token =
        session_token(headers, state.config.secure_cookies).ok_or(ApiError::Unauthenticated)?;
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
        return Err(role_too_low(role, minimum));
    }
    // Ids never need escaping; an escaped path segment names nothing that exists.
    if request.uri().path().contains('%') {
        return Err(ApiError::NotFound);
    }
    let origin = origin_of(&state, peer, headers);
    request.extensions_mut().insert(Caller { session, origin });
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookies(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::COOKIE, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn exactly_one_session_cookie_is_trusted() {
        let one = with_cookies(&["theme=dark; a2v2_session=abc"]);
        assert_eq!(session_token(&one, false), Some("abc"));
        let two = with_cookies(&["a2v2_session=abc", "a2v2_session=evil"]);
        assert_eq!(session_token(&two, false), None);
        let same_header = with_cookies(&["a2v2_session=evil; a2v2_session=abc"]);
        assert_eq!(session_token(&same_header, false), None);
    }

    #[test]
    fn over_https_only_the_host_prefixed_cookie_counts() {
        let plain = with_cookies(&["a2v2_session=abc"]);
        assert_eq!(session_token(&plain, true), None);
        let secure = with_cookies(&["__Host-a2v2_session=abc"]);
        assert_eq!(session_token(&secure, true), Some("abc"));
        let cookie = session_cookie("t", true);
        assert!(cookie.starts_with("__Host-a2v2_session=t; Path=/;"));
        assert!(cookie.ends_with("; Secure") && !cookie.contains("Domain"));
    }
}
