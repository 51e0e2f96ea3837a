//! Every route, written once: its method, path, who may call it, and its handler. The router
//! is built from these tables, each route wrapped in its guard with what it requires, so a
//! route cannot exist without its entry and a method cannot be open by omission.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderValue, Method, header},
    middleware::{Next, from_fn_with_state},
    response::{IntoResponse, Response},
    routing::{MethodFilter, MethodRouter, on},
};

use super::{
    agents, audit,
    auth::{
        api_key,
        session::{self, Access},
    },
    contacts, documents,
    error::ApiError,
    keys, members,
    metrics::{Registry, RouteMetrics},
    sessions,
};
use crate::{
    model::{
        member::Role::{Admin, Member, Owner},
        permissions::{Action, Area, Permission},
    },
    state::AppState,
};

/// One route: method, path, what it requires (`A`), and its handler.
pub struct Route<A> {
    pub method: Method,
    pub path: &'static str,
    pub requires: A,
    handler: fn(MethodFilter) -> MethodRouter<AppState>,
    /// Whether `--request-timeout-seconds` bounds it; uploads and exports take as long as
    /// their data needs (bounded by the stall timeouts instead).
    timed: bool,
}

const fn route<A>(
    method: Method,
    path: &'static str,
    requires: A,
    handler: fn(MethodFilter) -> MethodRouter<AppState>,
) -> Route<A> {
    Route {
        method,
        path,
        requires,
        handler,
        timed: true,
    }
}

/// A route that `--request-timeout-seconds` does not bound.
const fn untimed_route<A>(
    method: Method,
    path: &'static str,
    requires: A,
    handler: fn(MethodFilter) -> MethodRouter<AppState>,
) -> Route<A> {
    Route {
        method,
        path,
        requires,
        handler,
        timed: false,
    }
}

const fn perm(area: Area, action: Action) -> Option<Permission> {
    Some(Permission(area, action))
}

use Access::{AtLeast, Public};
use Action::{Create, Delete, Read, Update};
use Area::{Contacts, Documents};

/// Every `/v1` route and the permission it requires (`None`: any valid key).
pub const V1_ROUTES: &[Route<Option<Permission>>] = &[
    route(Method::GET, "/v1/key", None, |m| on(m, keys::introspect)),
    route(Method::POST, "/v1/contacts", perm(Contacts, Create), |m| {
        on(m, contacts::create)
    }),
    route(Method::GET, "/v1/contacts", perm(Contacts, Read), |m| {
        on(m, contacts::list)
    }),
    route(
        Method::GET,
        "/v1/contacts/{id}",
        perm(Contacts, Read),
        |m| on(m, contacts::get),
    ),
    route(
        Method::PATCH,
        "/v1/contacts/{id}",
        perm(Contacts, Update),
        |m| on(m, contacts::update),
    ),
    route(
        Method::DELETE,
        "/v1/contacts/{id}",
        perm(Contacts, Delete),
        |m| on(m, contacts::delete),
    ),
    untimed_route(
        Method::POST,
        "/v1/documents",
        perm(Documents, Create),
        |m| on(m, documents::create),
    ),
    route(Method::GET, "/v1/documents", perm(Documents, Read), |m| {
        on(m, documents::list)
    }),
    route(
        Method::GET,
        "/v1/documents/{id}",
        perm(Documents, Read),
        |m| on(m, documents::get),
    ),
    untimed_route(
        Method::GET,
        "/v1/documents/{id}/file",
        perm(Documents, Read),
        |m| on(m, documents::file),
    ),
    route(
        Method::PATCH,
        "/v1/documents/{id}",
        perm(Documents, Update),
        |m| on(m, documents::update),
    ),
    route(
        Method::POST,
        "/v1/documents/{id}/extract",
        perm(Documents, Update),
        |m| on(m, documents::extract),
    ),
    route(
        Method::DELETE,
        "/v1/documents/{id}",
        perm(Documents, Delete),
        |m| on(m, documents::delete),
    ),
];

/// `/v1` routes that take no key; the guessing throttle guards them.
pub const V1_PUBLIC_ROUTES: &[Route<()>] = &[route(Method::POST, "/v1/leaked-keys", (), |m| {
    on(m, keys::report_leak)
})];

/// Where a `/v1` request would go.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolved {
    /// A route, needing this permission (`None`: any valid key).
    Route(Option<Permission>),
    /// The path is served, but not with this method (405).
    WrongMethod,
    /// No such path (404).
    Unknown,
}

/// Matches `method` and `path` against the keyed `/v1` routes as the router does: literal
/// segments equal, `{…}` segments any non-empty text.
pub fn resolve_v1(method: &Method, path: &str) -> Resolved {
    let matches = |pattern: &str| {
        let mut wanted = pattern.split('/');
        let mut given = path.split('/');
        loop {
            match (wanted.next(), given.next()) {
                (None, None) => return true,
                (Some(w), Some(g)) if w.starts_with('{') => {
                    if g.is_empty() {
                        return false;
                    }
                }
                (Some(w), Some(g)) if w == g => {}
                _ => return false,
            }
        }
    };
    let mut known_path = false;
    for route in V1_ROUTES.iter().filter(|route| matches(route.path)) {
        known_path = true;
        if route.method == method {
            return Resolved::Route(route.requires);
        }
    }
    if known_path {
        Resolved::WrongMethod
    } else {
        Resolved::Unknown
    }
}

/// Every `/api` route and who may call it (SPEC §1 roles). Finer rules — an admin acting on
/// an owner, the last owner — live with the members feature.
pub const API_ROUTES: &[Route<Access>] = &[
    route(Method::GET, "/api/setup", Public, |m| {
        on(m, sessions::setup_status)
    }),
    route(Method::POST, "/api/setup", Public, |m| {
        on(m, sessions::setup)
    }),
    route(Method::POST, "/api/session", Public, |m| {
        on(m, sessions::sign_in)
    }),
    route(Method::GET, "/api/session", AtLeast(Member), |m| {
        on(m, sessions::current)
    }),
    route(Method::DELETE, "/api/session", AtLeast(Member), |m| {
        on(m, sessions::sign_out)
    }),
    route(Method::POST, "/api/session/confirm", AtLeast(Member), |m| {
        on(m, sessions::confirm)
    }),
    route(Method::GET, "/api/agents", AtLeast(Member), |m| {
        on(m, agents::list)
    }),
    route(Method::POST, "/api/agents", AtLeast(Admin), |m| {
        on(m, agents::create)
    }),
    route(
        Method::GET,
        "/api/agents/{agent_id}",
        AtLeast(Member),
        |m| on(m, agents::get),
    ),
    route(
        Method::PATCH,
        "/api/agents/{agent_id}",
        AtLeast(Admin),
        |m| on(m, agents::update),
    ),
    route(
        Method::DELETE,
        "/api/agents/{agent_id}",
        AtLeast(Admin),
        |m| on(m, agents::delete),
    ),
    route(
        Method::GET,
        "/api/agents/{agent_id}/api-keys",
        AtLeast(Member),
        |m| on(m, keys::list),
    ),
    route(
        Method::POST,
        "/api/agents/{agent_id}/api-keys",
        AtLeast(Admin),
        |m| on(m, keys::create),
    ),
    route(
        Method::POST,
        "/api/agents/{agent_id}/api-keys/validate",
        AtLeast(Admin),
        |m| on(m, keys::validate),
    ),
    route(
        Method::GET,
        "/api/agents/{agent_id}/api-keys/{key_id}",
        AtLeast(Member),
        |m| on(m, keys::get),
    ),
    route(
        Method::PATCH,
        "/api/agents/{agent_id}/api-keys/{key_id}",
        AtLeast(Admin),
        |m| on(m, keys::update),
    ),
    route(
        Method::DELETE,
        "/api/agents/{agent_id}/api-keys/{key_id}",
        AtLeast(Admin),
        |m| on(m, keys::delete),
    ),
    route(
        Method::POST,
        "/api/agents/{agent_id}/api-keys/{key_id}/reveal",
        AtLeast(Admin),
        |m| on(m, keys::reveal),
    ),
    route(
        Method::POST,
        "/api/agents/{agent_id}/api-keys/{key_id}/roll",
        AtLeast(Admin),
        |m| on(m, keys::roll),
    ),
    route(
        Method::POST,
        "/api/agents/{agent_id}/api-keys/{key_id}/simulate",
        AtLeast(Member),
        |m| on(m, keys::simulate),
    ),
    route(
        Method::GET,
        "/api/agents/{agent_id}/api-keys/{key_id}/usage",
        AtLeast(Member),
        |m| on(m, keys::usage),
    ),
    route(Method::POST, "/api/keys/suspend-all", AtLeast(Owner), |m| {
        on(m, keys::suspend_all)
    }),
    route(Method::POST, "/api/keys/resume-all", AtLeast(Owner), |m| {
        on(m, keys::resume_all)
    }),
    route(Method::GET, "/api/keys/suspension", AtLeast(Member), |m| {
        on(m, keys::suspension)
    }),
    route(Method::GET, "/api/members", AtLeast(Member), |m| {
        on(m, members::list)
    }),
    route(Method::POST, "/api/members", AtLeast(Admin), |m| {
        on(m, members::create)
    }),
    route(
        Method::PATCH,
        "/api/members/{member_id}",
        AtLeast(Admin),
        |m| on(m, members::update),
    ),
    route(
        Method::DELETE,
        "/api/members/{member_id}",
        AtLeast(Admin),
        |m| on(m, members::delete),
    ),
    route(Method::POST, "/api/invites/accept", Public, |m| {
        on(m, members::accept_invite)
    }),
    route(Method::GET, "/api/audit-logs", AtLeast(Admin), |m| {
        on(m, audit::list)
    }),
    untimed_route(Method::GET, "/api/audit-logs/export", AtLeast(Admin), |m| {
        on(m, audit::export)
    }),
    route(
        Method::GET,
        "/api/agents/{agent_id}/contacts",
        AtLeast(Member),
        |m| on(m, contacts::dashboard_list),
    ),
    route(
        Method::POST,
        "/api/agents/{agent_id}/contacts",
        AtLeast(Admin),
        |m| on(m, contacts::dashboard_create),
    ),
    untimed_route(
        Method::POST,
        "/api/agents/{agent_id}/contacts/import",
        AtLeast(Admin),
        |m| on(m, contacts::dashboard_import),
    ),
    untimed_route(
        Method::POST,
        "/api/agents/{agent_id}/contacts/import/preview",
        AtLeast(Admin),
        |m| on(m, contacts::dashboard_import_preview),
    ),
    route(
        Method::GET,
        "/api/agents/{agent_id}/contacts/imports/{import_id}",
        AtLeast(Member),
        |m| on(m, contacts::dashboard_import_status),
    ),
    untimed_route(
        Method::GET,
        "/api/agents/{agent_id}/contacts/export",
        AtLeast(Member),
        |m| on(m, contacts::dashboard_export),
    ),
    route(
        Method::GET,
        "/api/agents/{agent_id}/contacts/{contact_id}",
        AtLeast(Member),
        |m| on(m, contacts::dashboard_get),
    ),
    route(
        Method::PATCH,
        "/api/agents/{agent_id}/contacts/{contact_id}",
        AtLeast(Admin),
        |m| on(m, contacts::dashboard_update),
    ),
    route(
        Method::DELETE,
        "/api/agents/{agent_id}/contacts/{contact_id}",
        AtLeast(Admin),
        |m| on(m, contacts::dashboard_delete),
    ),
    route(
        Method::GET,
        "/api/agents/{agent_id}/documents",
        AtLeast(Member),
        |m| on(m, documents::dashboard_list),
    ),
    untimed_route(
        Method::POST,
        "/api/agents/{agent_id}/documents",
        AtLeast(Admin),
        |m| on(m, documents::dashboard_create),
    ),
    route(
        Method::GET,
        "/api/agents/{agent_id}/documents/{document_id}",
        AtLeast(Member),
        |m| on(m, documents::dashboard_get),
    ),
    untimed_route(
        Method::GET,
        "/api/agents/{agent_id}/documents/{document_id}/file",
        AtLeast(Member),
        |m| on(m, documents::dashboard_file),
    ),
    route(
        Method::PATCH,
        "/api/agents/{agent_id}/documents/{document_id}",
        AtLeast(Admin),
        |m| on(m, documents::dashboard_update),
    ),
    route(
        Method::POST,
        "/api/agents/{agent_id}/documents/{document_id}/extract",
        AtLeast(Admin),
        |m| on(m, documents::dashboard_extract),
    ),
    route(
        Method::DELETE,
        "/api/agents/{agent_id}/documents/{document_id}",
        AtLeast(Admin),
        |m| on(m, documents::dashboard_delete),
    ),
];

fn filter_of(method: &Method) -> MethodFilter {
    MethodFilter::try_from(method.clone()).unwrap_or(MethodFilter::GET)
}

/// The methods a table lists for `path`, for the `Allow` header of a 405.
pub fn allowed_methods<A>(table: &'static [Route<A>], path: &str) -> Vec<&'static str> {
    table
        .iter()
        .filter(|route| route.path == path)
        .map(|route| route.method.as_str())
        .collect()
}

/// A method no route serves on `path`: 405 naming the methods that are.
async fn refuse_method(path: &'static str) -> Response {
    let mut allowed = allowed_methods(V1_ROUTES, path);
    allowed.extend(allowed_methods(V1_PUBLIC_ROUTES, path));
    allowed.extend(allowed_methods(API_ROUTES, path));
    let allow = allowed.join(", ");
    let mut response =
        ApiError::MethodNotAllowed(format!("This method is not allowed here; use {allow}."))
            .into_response();
    if let Ok(value) = HeaderValue::from_str(&allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

/// The routes of `table`, each wrapped by `wrap` in its guard (made by `guarded` from what
/// the route requires) and in what observes it.
fn build<A: Clone + Send + Sync + 'static, G: Clone + Send + Sync + 'static>(
    table: &'static [Route<A>],
    timeout: Duration,
    registry: &Registry,
    guarded: impl Fn(&A) -> G,
    wrap: impl Fn(MethodRouter<AppState>, G, Observed) -> MethodRouter<AppState>,
) -> axum::Router<AppState> {
    let mut router = axum::Router::new();
    let mut paths: Vec<&str> = Vec::new();
    for route in table {
        if !paths.contains(&route.path) {
            paths.push(route.path);
        }
    }
    for path in paths {
        let mut methods = MethodRouter::new().fallback(move || refuse_method(path));
        for route in table.iter().filter(|route| route.path == path) {
            let handler = (route.handler)(filter_of(&route.method));
            let observed = Observed {
                metrics: registry.register(route.method.as_str(), route.path),
                timeout: route.timed.then_some(timeout),
            };
            methods = methods.merge(wrap(handler, guarded(&route.requires), observed));
        }
        router = router.route(path, methods);
    }
    router
}

/// What observes each route, outside its guard: the route's metrics and, for timed
/// routes, the timeout.
#[derive(Clone)]
struct Observed {
    metrics: Arc<RouteMetrics>,
    timeout: Option<Duration>,
}

impl Observed {
    /// Times the response and counts its status; a timed route that takes longer than its
    /// timeout answers 503 `unavailable`, and the client may retry.
    async fn watch(self, response: impl Future<Output = Response>) -> Response {
        let started = Instant::now();
        let response = match self.timeout {
            None => response.await,
            Some(timeout) => match tokio::time::timeout(timeout, response).await {
                Ok(response) => response,
                Err(_) => {
                    tracing::warn!(timeout_ms = timeout.as_millis() as u64, "request timed out");
                    ApiError::Unavailable { retry_after: 1 }.into_response()
                }
            },
        };
        self.metrics
            .observe(response.status().as_u16(), started.elapsed().as_secs_f64());
        response
    }
}

/// Each layer is one more boxed service to clone and future to box per request, so a route
/// whose guard is a plain function gets one layer for both.
async fn observe(State(observed): State<Observed>, request: Request, next: Next) -> Response {
    observed.watch(next.run(request)).await
}

/// The `/v1` routes' one layer: observation around [`api_key::guard`].
async fn observe_v1(
    State((observed, guarded)): State<(Observed, api_key::Guarded)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    observed
        .watch(async move {
            api_key::guard(guarded, peer, request, next)
                .await
                .into_response()
        })
        .await
}

/// The `/v1` and `/api` routes with their guards.
pub fn router(state: &AppState, registry: &Registry) -> axum::Router<AppState> {
    let timeout = state.config.request_timeout;
    let v1 = build(
        V1_ROUTES,
        timeout,
        registry,
        |requires| api_key::Guarded {
            state: state.clone(),
            required: *requires,
        },
        |handler, guarded, observed| {
            handler.route_layer(from_fn_with_state((observed, guarded), observe_v1))
        },
    );
    let api = build(
        API_ROUTES,
        timeout,
        registry,
        |requires| session::Guarded {
            state: state.clone(),
            access: *requires,
        },
        |handler, guarded, observed| {
            handler
                .route_layer(from_fn_with_state(guarded, session::guard))
                .route_layer(from_fn_with_state(observed, observe))
        },
    );
    let public = build(
        V1_PUBLIC_ROUTES,
        timeout,
        registry,
        |_| state.clone(),
        |handler, state, observed| {
            handler
                .route_layer(from_fn_with_state(state, api_key::throttled))
                .route_layer(from_fn_with_state(observed, observe))
        },
    );
    v1.merge(public).merge(api)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_each_route_once<A>(table: &[Route<A>]) {
        for (i, route) in table.iter().enumerate() {
            assert!(
                !table[i + 1..]
                    .iter()
                    .any(|r| r.method == route.method && r.path == route.path),
                "{} {} listed twice",
                route.method,
                route.path
            );
        }
    }

    #[test]
    fn the_tables_name_each_route_once() {
        names_each_route_once(V1_ROUTES);
        names_each_route_once(V1_PUBLIC_ROUTES);
        names_each_route_once(API_ROUTES);
    }

    #[test]
    fn resolves_v1_paths_like_the_router() {
        let read = perm(Contacts, Read);
        assert_eq!(resolve_v1(&Method::GET, "/v1/key"), Resolved::Route(None));
        assert_eq!(
            resolve_v1(&Method::GET, "/v1/contacts/c_1"),
            Resolved::Route(read)
        );
        assert_eq!(
            resolve_v1(&Method::PUT, "/v1/contacts/c_1"),
            Resolved::WrongMethod
        );
        assert_eq!(resolve_v1(&Method::GET, "/v1/contacts/"), Resolved::Unknown);
        assert_eq!(
            resolve_v1(&Method::GET, "/v1/contacts/a/b"),
            Resolved::Unknown
        );
        assert_eq!(resolve_v1(&Method::GET, "/v1/nothing"), Resolved::Unknown);
    }

    #[test]
    fn management_of_keys_needs_an_admin() {
        let find = |method: Method, path: &str| {
            API_ROUTES
                .iter()
                .find(|r| r.method == method && r.path == path)
                .map(|r| r.requires)
        };
        let reveal = "/api/agents/{agent_id}/api-keys/{key_id}/reveal";
        assert_eq!(find(Method::POST, reveal), Some(AtLeast(Admin)));
        assert_eq!(find(Method::GET, "/api/agents"), Some(AtLeast(Member)));
        assert_eq!(find(Method::PUT, "/api/agents"), None);
        assert_eq!(allowed_methods(API_ROUTES, "/api/agents"), ["GET", "POST"]);
        assert!(allowed_methods(API_ROUTES, "/api/nothing").is_empty());
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert_eq!(find(method, "/api/audit-logs"), None);
        }
        assert_eq!(find(Method::GET, "/api/audit-logs"), Some(AtLeast(Admin)));
    }
}
