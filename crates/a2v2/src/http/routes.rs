//! Every route, written once: its method, path, who may call it, and its handler. The router
//! is built from these tables, each route wrapped in its guard with what it requires, so a
//! route cannot exist without its entry and a method cannot be open by omission.

use axum::{
    extract::{MatchedPath, Request},
    http::{HeaderValue, Method, header},
    middleware::from_fn_with_state,
    response::{IntoResponse, Response},
    routing::{MethodFilter, MethodRouter, on},
};

use super::{
    agents, audit,
    auth::{
        api_key,
        session::{self, Access},
    },
    contacts,
    error::ApiError,
    keys, members, sessions,
};
use crate::{
    model::{
        member::Role::{Admin, Member},
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
}

const fn perm(area: Area, action: Action) -> Option<Permission> {
    Some(Permission(area, action))
}

use Access::{AtLeast, Public};
use Action::{Create, Delete, Read, Update};
use Area::Contacts;

/// Every `/v1` route and the permission it requires (`None`: any valid key).
pub const V1_ROUTES: &[Route<Option<Permission>>] = &[
    Route {
        method: Method::GET,
        path: "/v1/key",
        requires: None,
        handler: |m| on(m, keys::introspect),
    },
    Route {
        method: Method::POST,
        path: "/v1/contacts",
        requires: perm(Contacts, Create),
        handler: |m| on(m, contacts::create),
    },
    Route {
        method: Method::GET,
        path: "/v1/contacts",
        requires: perm(Contacts, Read),
        handler: |m| on(m, contacts::list),
    },
    Route {
        method: Method::GET,
        path: "/v1/contacts/{id}",
        requires: perm(Contacts, Read),
        handler: |m| on(m, contacts::get),
    },
    Route {
        method: Method::PATCH,
        path: "/v1/contacts/{id}",
        requires: perm(Contacts, Update),
        handler: |m| on(m, contacts::update),
    },
    Route {
        method: Method::DELETE,
        path: "/v1/contacts/{id}",
        requires: perm(Contacts, Delete),
        handler: |m| on(m, contacts::delete),
    },
];

/// Every `/api` route and who may call it (SPEC §1 roles). Finer rules — an admin acting on
/// an owner, the last owner — live with the members feature.
pub const API_ROUTES: &[Route<Access>] = &[
    Route {
        method: Method::GET,
        path: "/api/setup",
        requires: Public,
        handler: |m| on(m, sessions::setup_status),
    },
    Route {
        method: Method::POST,
        path: "/api/setup",
        requires: Public,
        handler: |m| on(m, sessions::setup),
    },
    Route {
        method: Method::POST,
        path: "/api/session",
        requires: Public,
        handler: |m| on(m, sessions::sign_in),
    },
    Route {
        method: Method::GET,
        path: "/api/session",
        requires: AtLeast(Member),
        handler: |m| on(m, sessions::current),
    },
    Route {
        method: Method::DELETE,
        path: "/api/session",
        requires: AtLeast(Member),
        handler: |m| on(m, sessions::sign_out),
    },
    Route {
        method: Method::GET,
        path: "/api/agents",
        requires: AtLeast(Member),
        handler: |m| on(m, agents::list),
    },
    Route {
        method: Method::POST,
        path: "/api/agents",
        requires: AtLeast(Admin),
        handler: |m| on(m, agents::create),
    },
    Route {
        method: Method::GET,
        path: "/api/agents/{agent_id}",
        requires: AtLeast(Member),
        handler: |m| on(m, agents::get),
    },
    Route {
        method: Method::PATCH,
        path: "/api/agents/{agent_id}",
        requires: AtLeast(Admin),
        handler: |m| on(m, agents::update),
    },
    Route {
        method: Method::DELETE,
        path: "/api/agents/{agent_id}",
        requires: AtLeast(Admin),
        handler: |m| on(m, agents::delete),
    },
    Route {
        method: Method::GET,
        path: "/api/agents/{agent_id}/api-keys",
        requires: AtLeast(Member),
        handler: |m| on(m, keys::list),
    },
    Route {
        method: Method::POST,
        path: "/api/agents/{agent_id}/api-keys",
        requires: AtLeast(Admin),
        handler: |m| on(m, keys::create),
    },
    Route {
        method: Method::GET,
        path: "/api/agents/{agent_id}/api-keys/{key_id}",
        requires: AtLeast(Member),
        handler: |m| on(m, keys::get),
    },
    Route {
        method: Method::PATCH,
        path: "/api/agents/{agent_id}/api-keys/{key_id}",
        requires: AtLeast(Admin),
        handler: |m| on(m, keys::update),
    },
    Route {
        method: Method::DELETE,
        path: "/api/agents/{agent_id}/api-keys/{key_id}",
        requires: AtLeast(Admin),
        handler: |m| on(m, keys::delete),
    },
    Route {
        method: Method::POST,
        path: "/api/agents/{agent_id}/api-keys/{key_id}/reveal",
        requires: AtLeast(Admin),
        handler: |m| on(m, keys::reveal),
    },
    Route {
        method: Method::GET,
        path: "/api/members",
        requires: AtLeast(Member),
        handler: |m| on(m, members::list),
    },
    Route {
        method: Method::POST,
        path: "/api/members",
        requires: AtLeast(Admin),
        handler: |m| on(m, members::create),
    },
    Route {
        method: Method::PATCH,
        path: "/api/members/{member_id}",
        requires: AtLeast(Admin),
        handler: |m| on(m, members::update),
    },
    Route {
        method: Method::DELETE,
        path: "/api/members/{member_id}",
        requires: AtLeast(Admin),
        handler: |m| on(m, members::delete),
    },
    Route {
        method: Method::POST,
        path: "/api/invites/accept",
        requires: Public,
        handler: |m| on(m, members::accept_invite),
    },
    Route {
        method: Method::GET,
        path: "/api/audit-logs",
        requires: AtLeast(Admin),
        handler: |m| on(m, audit::list),
    },
    Route {
        method: Method::GET,
        path: "/api/audit-logs/export",
        requires: AtLeast(Admin),
        handler: |m| on(m, audit::export),
    },
    Route {
        method: Method::GET,
        path: "/api/agents/{agent_id}/contacts",
        requires: AtLeast(Member),
        handler: |m| on(m, contacts::dashboard_list),
    },
    Route {
        method: Method::GET,
        path: "/api/agents/{agent_id}/contacts/{contact_id}",
        requires: AtLeast(Member),
        handler: |m| on(m, contacts::dashboard_get),
    },
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

/// A method no route serves on a known path: 405 naming the methods that are.
async fn refuse_method(request: Request) -> Response {
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("", MatchedPath::as_str);
    let mut allowed = allowed_methods(V1_ROUTES, path);
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

/// The routes of `table`, each behind `guard` with what it requires.
fn build<A: Clone + Send + Sync + 'static, G: Clone + Send + Sync + 'static>(
    table: &[Route<A>],
    guarded: impl Fn(&A) -> G,
    guard: impl Fn(MethodRouter<AppState>, G) -> MethodRouter<AppState>,
) -> axum::Router<AppState> {
    let mut router = axum::Router::new();
    let mut paths: Vec<&str> = Vec::new();
    for route in table {
        if !paths.contains(&route.path) {
            paths.push(route.path);
        }
    }
    for path in paths {
        let mut methods = MethodRouter::new().fallback(refuse_method);
        for route in table.iter().filter(|route| route.path == path) {
            let handler = (route.handler)(filter_of(&route.method));
            methods = methods.merge(guard(handler, guarded(&route.requires)));
        }
        router = router.route(path, methods);
    }
    router
}

/// The `/v1` and `/api` routes with their guards.
pub fn router(state: &AppState) -> axum::Router<AppState> {
    let v1 = build(
        V1_ROUTES,
        |requires| api_key::Guarded {
            state: state.clone(),
            required: *requires,
        },
        |handler, guarded| handler.route_layer(from_fn_with_state(guarded, api_key::guard)),
    );
    let api = build(
        API_ROUTES,
        |requires| session::Guarded {
            state: state.clone(),
            access: *requires,
        },
        |handler, guarded| handler.route_layer(from_fn_with_state(guarded, session::guard)),
    );
    v1.merge(api)
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
        names_each_route_once(API_ROUTES);
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
