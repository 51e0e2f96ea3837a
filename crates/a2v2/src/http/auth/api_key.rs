//! The guard of every `/v1` route and its principal: the verified API key.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{Arc, atomic::Ordering},
};

use axum::{
    extract::{ConnectInfo, FromRequestParts, Request, State},
    http::{HeaderMap, HeaderValue, Method, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{
    access::{self, Denied},
    audit::denials::Denial,
    http::{
        client_ip,
        error::{self, ApiError},
        routes::{self, Resolved},
    },
    keys::{
        cache::{CachedKey, Rejection},
        limiter::Quota,
    },
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
    /// As sent: copied into a string only when something records it.
    pub user_agent: Option<HeaderValue>,
}

/// A `User-Agent` header as text, when it is text.
fn user_agent_text(value: Option<&HeaderValue>) -> Option<String> {
    value.and_then(|v| v.to_str().ok()).map(str::to_owned)
}

impl Principal {
    /// The key as the audit log's actor, with where the request came from.
    pub fn by(&self) -> By {
        By {
            actor: Actor::api_key(self.key.id(), self.key.name()),
            origin: Origin {
                ip: Some(self.ip.to_string()),
                user_agent: user_agent_text(self.user_agent.as_ref()),
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
        // Taken, not cloned: a handler extracts its principal once.
        parts
            .extensions
            .remove::<Principal>()
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

/// The contract's answer to a refusal of the guard (shared with the access simulator).
pub fn refusal(denied: &Denied) -> ApiError {
    match denied {
        Denied::Missing => ApiError::MissingApiKey,
        Denied::Invalid(_) => ApiError::InvalidApiKey,
        Denied::IpNotAllowed(_) => ApiError::IpNotAllowed,
        Denied::PermissionDenied(key, permission) => ApiError::PermissionDenied {
            required: permission.name(),
            granted: key.permissions.names(),
        },
    }
}

/// The guard's verdict for a key known by id rather than by its secret — the access
/// simulator's answer — for a request to `method` `path` from `client`: the same route
/// table, the same checks ([`access::admit`]), the same mapping to the contract
/// ([`refusal`]). Nothing is counted or recorded. `Ok` carries the permission the route
/// needs.
pub fn simulate(
    state: &AppState,
    key: Arc<CachedKey>,
    method: &Method,
    path: &str,
    client: IpAddr,
    now: i64,
) -> (Option<Permission>, Result<(), ApiError>) {
    let required = match routes::resolve_v1(method, path) {
        Resolved::Route(required) => required,
        Resolved::WrongMethod => return (None, Err(error::method_not_allowed())),
        Resolved::Unknown => return (None, Err(ApiError::NotFound)),
    };
    let verdict = (|| {
        if !state.keys.is_current(now) {
            return Err(ApiError::Unavailable { retry_after: 1 });
        }
        let key = access::admit(state.keys.cache(), key, client, required, now)
            .map_err(|denied| refusal(&denied))?;
        if path.contains('%') {
            return Err(ApiError::NotFound);
        }
        if let Some(limiter) = &key.limiter {
            let quota = limiter.peek(now);
            if quota.remaining == 0 {
                return Err(ApiError::RateLimited {
                    retry_after: quota.reset_seconds.max(1),
                });
            }
        }
        Ok(())
    })();
    (required, verdict)
}

/// Adds the `RateLimit-*` headers of a limited key.
fn with_quota(mut response: Response, quota: Option<Quota>) -> Response {
    if let Some(quota) = quota {
        let headers = response.headers_mut();
        headers.insert("ratelimit-limit", HeaderValue::from(quota.limit));
        headers.insert("ratelimit-remaining", HeaderValue::from(quota.remaining));
        headers.insert("ratelimit-reset", HeaderValue::from(quota.reset_seconds));
    }
    response
}

/// Verifies the key for a route needing `required`; on success the key travels to the
/// handler as [`Principal`]. Run by the `/v1` routes' one layer (`routes`), which also
/// observes the route.
pub async fn guard(
    Guarded { state, required }: Guarded,
    peer: SocketAddr,
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
    let user_agent = headers.get(header::USER_AGENT).cloned();
    let deny = |reason: &'static str, key: Option<&CachedKey>, permission: Option<Permission>| {
        state.denials.record(Denial {
            reason,
            key: key.map(|k| (k.id().to_owned(), k.name().to_owned(), k.agent_id.clone())),
            ip: client.to_string(),
            user_agent: user_agent_text(user_agent.as_ref()),
            method: request.method().to_string(),
            path: request.uri().path().chars().take(200).collect(),
            required_permission: permission.map(Permission::name),
        });
    };
    let metrics = &state.metrics;
    let cache = state.keys.cache();
    let presented = presented_key(headers);
    // A client that sent too many bad keys is refused, except with a key this node has
    // already verified (which a guesser cannot hold).
    if let Some(retry_after) = state.guessing.blocked(client, now)
        && !presented.is_some_and(|key| cache.knows(key))
    {
        metrics.guessing_refused.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::RateLimited { retry_after });
    }
    let key = match access::authorize(cache, presented, client, required, now) {
        Ok(key) => key,
        Err(denied) => {
            let quota = match &denied {
                Denied::Missing => {
                    state.guessing.fail(client, now);
                    None
                }
                Denied::Invalid(rejection) => {
                    let counter = match rejection {
                        Rejection::Malformed => &metrics.rejected_malformed,
                        Rejection::Unknown => &metrics.rejected_unknown,
                        Rejection::Expired => &metrics.rejected_expired,
                        Rejection::Disabled => &metrics.rejected_disabled,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    state.guessing.fail(client, now);
                    deny("invalid_api_key", None, None);
                    None
                }
                Denied::IpNotAllowed(key) => {
                    metrics.denied_ip.fetch_add(1, Ordering::Relaxed);
                    deny("ip_not_allowed", Some(key), None);
                    key.limiter.as_ref().map(|l| l.peek(now))
                }
                Denied::PermissionDenied(key, permission) => {
                    metrics.denied_permission.fetch_add(1, Ordering::Relaxed);
                    deny("permission_denied", Some(key), Some(*permission));
                    key.limiter.as_ref().map(|l| l.peek(now))
                }
            };
            return Ok(with_quota(refusal(&denied).into_response(), quota));
        }
    };
    let quota = match &key.limiter {
        None => None,
        Some(limiter) => match limiter.admit(now) {
            Ok(quota) => {
                state.keys.cache().note_limited_use(&key);
                Some(quota)
            }
            Err(quota) => {
                metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
                let refused = ApiError::RateLimited {
                    retry_after: quota.reset_seconds.max(1),
                };
                return Ok(with_quota(refused.into_response(), Some(quota)));
            }
        },
    };
    metrics.verified_ok.fetch_add(1, Ordering::Relaxed);
    // Ids never need escaping; an escaped path segment names nothing that exists.
    if request.uri().path().contains('%') {
        return Ok(with_quota(ApiError::NotFound.into_response(), quota));
    }
    state.keys.cache().record_use(&key, required, client, now);
    request.extensions_mut().insert(Principal {
        key,
        ip: client,
        user_agent,
    });
    Ok(with_quota(next.run(request).await, quota))
}

/// Where an unauthenticated `/v1` request came from.
#[derive(Clone, Debug)]
pub struct Anonymous {
    pub origin: Origin,
}

impl<S: Send + Sync> FromRequestParts<S> for Anonymous {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Anonymous>()
            .cloned()
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("route is missing its throttle")))
    }
}

/// The guard of `/v1` routes without a key: every request spends the client's budget of
/// the guessing throttle, so that they cannot be used to test keys quickly.
pub async fn throttled(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let now = now_ms();
    let headers = request.headers();
    let client = client_ip::resolve(peer.ip(), headers, &state.config.trusted_proxies);
    if let Some(retry_after) = state.guessing.blocked(client, now) {
        state
            .metrics
            .guessing_refused
            .fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::RateLimited { retry_after });
    }
    state.guessing.fail(client, now);
    let origin = Origin {
        ip: Some(client.to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    request.extensions_mut().insert(Anonymous { origin });
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
