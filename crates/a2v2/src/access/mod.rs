//! The access guard of every `/v1` route: key → validity → client IP → permission.
//!
//! Which permission a route needs is written once, in `V1_ROUTES`; the guard looks the matched
//! route up there, so handlers never check permissions themselves.

pub mod client_ip;

use std::{
    net::{IpAddr, SocketAddr},
    sync::{Arc, atomic::Ordering},
};

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
        cache::{CachedKey, KeyCache, Rejection},
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

/// Why a request was refused by the guard.
#[derive(Debug)]
pub enum Denied {
    Missing,
    Invalid(Rejection),
    IpNotAllowed(Arc<CachedKey>),
    PermissionDenied(Arc<CachedKey>, Permission),
}

/// The whole verification, in SPEC order, without I/O: parse, hash, cache lookup, expiry,
/// client IP, permission.
pub fn authorize(
    keys: &KeyCache,
    presented: Option<&str>,
    client: IpAddr,
    required: Option<Permission>,
    now_ms: i64,
) -> Result<Arc<CachedKey>, Denied> {
    let presented = presented.ok_or(Denied::Missing)?;
    let key = keys.verify(presented, now_ms).map_err(Denied::Invalid)?;
    if !ip::allows(&key.ip_nets, client) {
        return Err(Denied::IpNotAllowed(key));
    }
    if let Some(permission) = required
        && !key.permissions.has(permission)
    {
        return Err(Denied::PermissionDenied(key, permission));
    }
    Ok(key)
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
    // HEAD is answered by the GET handler, so it needs what GET needs.
    let method = match request.method() {
        &Method::HEAD => &Method::GET,
        other => other,
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("", MatchedPath::as_str);
    // A method missing from the table is refused rather than left open; for methods the
    // route does not serve this is the right answer anyway.
    let required =
        required_permission(method, route).ok_or_else(crate::error::method_not_allowed)?;
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
    let now = now_ms();
    let metrics = &state.metrics;
    let key = match authorize(&state.keys, presented_key(headers), client, required, now) {
        Ok(key) => key,
        Err(Denied::Missing) => return Err(ApiError::MissingApiKey),
        Err(Denied::Invalid(rejection)) => {
            let counter = match rejection {
                Rejection::Malformed => &metrics.rejected_malformed,
                Rejection::Unknown => &metrics.rejected_unknown,
                Rejection::Expired => &metrics.rejected_expired,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            deny("invalid_api_key", None, None);
            return Err(ApiError::InvalidApiKey);
        }
        Err(Denied::IpNotAllowed(key)) => {
            metrics.denied_ip.fetch_add(1, Ordering::Relaxed);
            deny("ip_not_allowed", Some(&key), None);
            return Err(ApiError::IpNotAllowed);
        }
        Err(Denied::PermissionDenied(key, permission)) => {
            metrics.denied_permission.fetch_add(1, Ordering::Relaxed);
            deny("permission_denied", Some(&key), Some(permission));
            return Err(ApiError::PermissionDenied {
                required: permission.name(),
                granted: key.permissions.names(),
            });
        }
    };
    metrics.verified_ok.fetch_add(1, Ordering::Relaxed);
    // Ids never need escaping; an escaped path segment names nothing that exists.
    if request.uri().path().contains('%') {
        return Err(ApiError::NotFound);
    }
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
    use crate::keys::permissions::Permissions;
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

    fn cache_with(ip: &str, permissions: Permissions) -> (KeyCache, String) {
        let master = crate::crypto::MasterKey::load(&crate::config::MasterKeySource::Inline(
            "33".repeat(32),
        ))
        .unwrap();
        let cache = KeyCache::new(crate::crypto::KeySecrets::new(&master));
        let secret = crate::keys::format::generate();
        cache.put(CachedKey::new(
            "key_1".into(),
            "agt_1".into(),
            "k".into(),
            cache.secrets().lookup_hash(&secret),
            permissions,
            ip::parse_list(&serde_json::json!(ip)).unwrap(),
            None,
            None,
        ));
        (cache, secret)
    }

    #[test]
    fn checks_run_in_the_documented_order() {
        let read = Permission(Area::Contacts, Action::Read);
        let write = Permission(Area::Contacts, Action::Update);
        let (cache, secret) = cache_with("10.0.0.0/8", Permissions::default().with(read));
        let inside: IpAddr = "10.1.2.3".parse().unwrap();
        let outside: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(matches!(
            authorize(&cache, None, outside, Some(write), 0),
            Err(Denied::Missing)
        ));
        assert!(matches!(
            authorize(&cache, Some("a2v2_bad"), outside, Some(write), 0),
            Err(Denied::Invalid(Rejection::Malformed))
        ));
        assert!(matches!(
            authorize(&cache, Some(&secret), outside, Some(write), 0),
            Err(Denied::IpNotAllowed(_))
        ));
        assert!(matches!(
            authorize(&cache, Some(&secret), inside, Some(write), 0),
            Err(Denied::PermissionDenied(_, p)) if p == write
        ));
        assert_eq!(
            authorize(&cache, Some(&secret), inside, Some(read), 0)
                .unwrap()
                .id,
            "key_1"
        );
        assert!(authorize(&cache, Some(&secret), inside, None, 0).is_ok());
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
