//! The access guard of every `/v1` route: key → validity → client IP → permission.
//!
//! Which permission a route needs is written once, in `V1_ROUTES`; the guard looks the matched
//! route up there, so handlers never check permissions themselves.

pub mod client_ip;

use std::{net::SocketAddr, sync::Arc, sync::atomic::Ordering};

use axum::{
    extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State},
    http::{HeaderMap, Method, header, request::Parts},
    middleware::Next,
    response::Response,
};

use crate::{
    audit::denials::Denial,
    error::ApiError,
    keys::{
        cache::{CachedKey, Rejection},
        ip,
        permissions::{Action, Area, Permission},
    },
    state::AppState,
    store::now_ms,
};

/// Every `/v1` route and the permission it requires (`None`: any valid key).
pub const V1_ROUTES: &[(Method, &str, Option<Permission>)] = &[
    (Method::GET, "/v1/key", None),
    (
        Method::POST,
        "/v1/contacts",
        Some(Permission(Area::Contacts, Action::Create)),
    ),
    (
        Method::GET,
        "/v1/contacts",
        Some(Permission(Area::Contacts, Action::Read)),
    ),
    (
        Method::GET,
        "/v1/contacts/{id}",
        Some(Permission(Area::Contacts, Action::Read)),
    ),
    (
        Method::PATCH,
        "/v1/contacts/{id}",
        Some(Permission(Area::Contacts, Action::Update)),
    ),
    (
        Method::DELETE,
        "/v1/contacts/{id}",
        Some(Permission(Area::Contacts, Action::Delete)),
    ),
];

/// The verified caller of a `/v1` request.
#[derive(Clone, Debug)]
pub struct Principal {
    pub key: Arc<CachedKey>,
    pub ip: std::net::IpAddr,
    pub user_agent: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("route is missing the access guard")))
    }
}

/// The key as sent: `Authorization: Bearer <key>` or `X-API-Key: <key>`.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let text = value.to_str().unwrap_or("?").trim();
        let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
        let key = if scheme.eq_ignore_ascii_case("bearer") {
            rest.trim()
        } else {
            "?"
        };
        return Some(key).filter(|k| !k.is_empty());
    }
    headers
        .get("x-api-key")
        .map(|value| value.to_str().unwrap_or("?").trim())
        .filter(|k| !k.is_empty())
}

pub fn required_permission(method: &Method, route: &str) -> Option<Option<Permission>> {
    V1_ROUTES
        .iter()
        .find(|(m, path, _)| m == method && *path == route)
        .map(|(_, _, permission)| *permission)
}

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
    // A method missing from the table is refused rather than left open; for methods the
    // route does not serve this is the right answer anyway.
    let required = required_permission(request.method(), &route)
        .ok_or_else(crate::error::method_not_allowed)?;
    let headers = request.headers();
    let client = client_ip::resolve(peer.ip(), headers, &state.config.trusted_proxies);
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let deny = |reason: &'static str, key: Option<&CachedKey>, permission: Option<Permission>| {
        state.denials.record(Denial {
            reason,
            key: key.map(|k| (k.id.clone(), k.name.clone(), k.agent_id.clone())),
            ip: client.to_string(),
            user_agent: user_agent.clone(),
            method: request.method().to_string(),
            path: request.uri().path().chars().take(200).collect(),
            required_permission: permission.map(Permission::name),
        });
    };
    let Some(presented) = presented_key(headers) else {
        return Err(ApiError::MissingApiKey);
    };
    let now = now_ms();
    let metrics = &state.metrics;
    let key = match state.keys.verify(presented, now) {
        Ok(key) => key,
        Err(rejection) => {
            let counter = match rejection {
                Rejection::Malformed => &metrics.rejected_malformed,
                Rejection::Unknown => &metrics.rejected_unknown,
                Rejection::Expired => &metrics.rejected_expired,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            deny("invalid_api_key", None, None);
            return Err(ApiError::InvalidApiKey);
        }
    };
    if !ip::allows(&key.ip_nets, client) {
        metrics.denied_ip.fetch_add(1, Ordering::Relaxed);
        deny("ip_not_allowed", Some(&key), None);
        return Err(ApiError::IpNotAllowed);
    }
    if let Some(permission) = required
        && !key.permissions.has(permission)
    {
        metrics.denied_permission.fetch_add(1, Ordering::Relaxed);
        deny("permission_denied", Some(&key), Some(permission));
        return Err(ApiError::PermissionDenied {
            required: permission.name(),
            granted: key.permissions.names(),
        });
    }
    metrics.verified_ok.fetch_add(1, Ordering::Relaxed);
    key.touch(now);
    request.extensions_mut().insert(Principal {
        key,
        ip: client,
        user_agent,
    });
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn reads_bearer_and_x_api_key() {
        let mut headers = HeaderMap::new();
        assert_eq!(presented_key(&headers), None);
        headers.insert("x-api-key", HeaderValue::from_static(" a2v2_x "));
        assert_eq!(presented_key(&headers), Some("a2v2_x"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer a2v2_y"),
        );
        assert_eq!(presented_key(&headers), Some("a2v2_y"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(presented_key(&headers), Some("?"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer   "));
        assert_eq!(presented_key(&headers), None);
    }

    #[test]
    fn the_table_names_each_route_once() {
        for (i, (method, path, _)) in V1_ROUTES.iter().enumerate() {
            assert!(
                !V1_ROUTES[i + 1..]
                    .iter()
                    .any(|(m, p, _)| m == method && p == path),
                "{method} {path} listed twice"
            );
        }
        assert_eq!(
            required_permission(&Method::DELETE, "/v1/contacts/{id}"),
            Some(Some(Permission(Area::Contacts, Action::Delete)))
        );
        assert_eq!(required_permission(&Method::PUT, "/v1/contacts/{id}"), None);
    }
}
