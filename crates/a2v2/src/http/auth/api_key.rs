//! The guard of every `/v1` route and its principal: the verified API key.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{Arc, atomic::Ordering},
};

use axum::{
    extract::{ConnectInfo, FromRequestParts, Request, State},
    http::{HeaderMap, header, request::Parts},
    middleware::Next,
    response::Response,
};

use crate::{
    access::{self, Denied},
    audit::denials::Denial,
    http::{client_ip, error::ApiError},
    keys::cache::{CachedKey, Rejection},
    model::{
        audit::{Actor, By, Origin},
        now_ms,
        permissions::Permission,
    },
    state::AppState,
};

/// The verified caller of a `/v1` request.
#[derive(Clone, Debug)]
pub struct Principal {
    pub key: Arc<CachedKey>,
    pub ip: IpAddr,
    pub user_agent: Option<String>,
}

impl Principal {
    /// The key as the audit log's actor, with where the request came from.
    pub fn by(&self) -> By {
        By {
            actor: Actor::api_key(&self.key.id, &self.key.name),
            origin: Origin {
                ip: Some(self.ip.to_string()),
                user_agent: self.user_agent.clone(),
            },
        }
    }

    pub fn agent_id(&self) -> &str {
        &self.key.agent_id
    }
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
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
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

/// What the guard of one route knows: the state and the permission the route needs (`None`:
/// any valid key).
#[derive(Clone)]
pub struct Guarded {
    pub state: AppState,
    pub required: Option<Permission>,
}

/// Verifies the key for a route needing `required`; on success the key travels to the
/// handler as [`Principal`].
pub async fn guard(
    State(Guarded { state, required }): State<Guarded>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let now = now_ms();
    // Fail closed: a node that cannot confirm its keys are current may be missing a
    // revocation made elsewhere.
    if !state.keys.is_current(now) {
        state.metrics.lease_expired.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::Unavailable { retry_after: 1 });
    }
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
    let metrics = &state.metrics;
    let cache = state.keys.cache();
    let key = match access::authorize(cache, presented_key(headers), client, required, now) {
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
}
