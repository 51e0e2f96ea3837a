//! `GET /openapi.json`: the OpenAPI 3.1 document of every `/v1` and `/api` route.
//!
//! Each handler describes itself with `#[utoipa::path]` (its parameters, body, success
//! responses and the errors of its own logic) and is named once in [`ApiDoc`]'s `paths`. What
//! every route of a kind shares is added here from the route tables themselves: the security
//! its guard enforces and the guard's errors (401, 403 with the required permission or role,
//! 429, 503), and the errors that follow from its shape (a JSON body: 400, 413, 415, 422; a
//! path id: 404). Response and body schemas come from the types the handlers use. A test
//! fails when the document and the route tables disagree.

pub mod bodies;
pub mod errors;

use std::collections::BTreeMap;

use axum::{
    http::{HeaderValue, Method, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use utoipa::{
    OpenApi, PartialSchema,
    openapi::{
        self, Components, PathItem, RefOr,
        path::{Operation, ParameterIn},
        security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        },
    },
};

use super::{
    agents, audit,
    auth::session::{Access, COOKIE, role_too_low},
    contacts, documents,
    error::ApiError,
    extract::JSON_BODY_LIMIT,
    keys, members,
    routes::{API_ROUTES, Route, V1_PUBLIC_ROUTES, V1_ROUTES},
    sessions,
};
use crate::model::{
    member::Role,
    permissions::{Action, Area, Permission},
};

/// Every documented handler. A new route's handler gets `#[utoipa::path]` and a line here.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "a2v2",
        description = "The public API (`/v1`, authenticated with an API key) and the management \
                       API (`/api`, authenticated with a dashboard session) of a2v2. Every error \
                       is `{\"error\": {code, message, request_id, …}}`; every response carries \
                       `X-Request-Id`."
    ),
    paths(
        keys::introspect,
        keys::report_leak,
        documents::create,
        documents::list,
        documents::get,
        documents::file,
        documents::update,
        documents::extract,
        documents::delete,
        documents::dashboard_list,
        documents::dashboard_get,
        documents::dashboard_file,
        documents::dashboard_create,
        documents::dashboard_update,
        documents::dashboard_extract,
        documents::dashboard_delete,
        contacts::create,
        contacts::list,
        contacts::get,
        contacts::update,
        contacts::delete,
        sessions::setup_status,
        sessions::setup,
        sessions::sign_in,
        sessions::current,
        sessions::sign_out,
        sessions::confirm,
        agents::list,
        agents::create,
        agents::get,
        agents::update,
        agents::delete,
        keys::list,
        keys::create,
        keys::validate,
        keys::get,
        keys::update,
        keys::delete,
        keys::reveal,
        keys::roll,
        keys::simulate,
        keys::usage,
        keys::suspend_all,
        keys::resume_all,
        keys::suspension,
        members::list,
        members::create,
        members::update,
        members::delete,
        members::accept_invite,
        audit::list,
        audit::export,
        contacts::dashboard_list,
        contacts::dashboard_get,
        contacts::dashboard_create,
        contacts::dashboard_update,
        contacts::dashboard_delete,
        contacts::dashboard_import,
        contacts::dashboard_import_preview,
        contacts::dashboard_import_status,
        contacts::dashboard_export,
    ),
    components(schemas(errors::ErrorBody)),
    tags(
        (name = "Key", description = "The API key making the request."),
        (name = "Contacts", description = "An agent's CRM records."),
        (name = "Documents", description = "Uploaded files and the text and fields extracted from them."),
        (name = "Session", description = "Setup, sign-in and sign-out of the dashboard."),
        (name = "Agents", description = "Agents and their API keys."),
        (name = "API keys", description = "Scoped keys for integrations."),
        (name = "Members", description = "The people who may sign in, and invites."),
        (name = "Audit log", description = "Who did what, when, from where."),
        (name = "Dashboard", description = "Read views of an agent's data for the dashboard."),
    )
)]
pub struct ApiDoc;

/// Security scheme names.
const BEARER: &str = "bearer";
const API_KEY_HEADER: &str = "api_key";
const SESSION: &str = "session";
const CSRF: &str = "csrf";

/// The complete document.
pub fn document() -> openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    for route in V1_ROUTES {
        if let Some(operation) = operation_mut(&mut doc, route) {
            let mut guard = vec![
                ApiError::MissingApiKey,
                ApiError::InvalidApiKey,
                ApiError::IpNotAllowed,
            ];
            if let Some(permission) = route.requires {
                guard.push(permission_denied(permission));
            }
            guard.push(ApiError::RateLimited { retry_after: 1 });
            complete(operation, route, v1_security(), guard);
        }
    }
    for route in V1_PUBLIC_ROUTES {
        if let Some(operation) = operation_mut(&mut doc, route) {
            complete(
                operation,
                route,
                Vec::new(),
                vec![ApiError::RateLimited { retry_after: 1 }],
            );
        }
    }
    for route in API_ROUTES {
        if let Some(operation) = operation_mut(&mut doc, route) {
            let (security, guard) = match route.requires {
                Access::Public => (Vec::new(), Vec::new()),
                Access::AtLeast(role) => session_guard(&route.method, role),
            };
            complete(operation, route, security, guard);
        }
    }
    let components = doc.components.get_or_insert_with(Components::new);
    // Error responses are inlined per operation, merged by status.
    components.responses.clear();
    let bearer = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .bearer_format("a2v2_…")
        .description(Some("`Authorization: Bearer <key>`: an API key (`/v1`)."))
        .build();
    components.add_security_scheme(BEARER, SecurityScheme::Http(bearer));
    components.add_security_scheme(
        API_KEY_HEADER,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-API-Key",
            "The API key in `X-API-Key` instead of `Authorization` (`/v1`).",
        ))),
    );
    components.add_security_scheme(
        SESSION,
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            COOKIE,
            "The dashboard session cookie set by `POST /api/session` (`__Host-a2v2_session` \
             when served over https).",
        ))),
    );
    components.add_security_scheme(
        CSRF,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-CSRF-Token",
            "The `csrf_token` of the session; required on every state-changing `/api` request.",
        ))),
    );
    doc
}

/// The refusal of a key that lacks `permission` (and holds one read permission of another area).
fn permission_denied(permission: Permission) -> ApiError {
    let other = match permission.0 {
        Area::Contacts => Area::Documents,
        Area::Documents => Area::Contacts,
    };
    ApiError::PermissionDenied {
        required: permission.name(),
        granted: vec![Permission(other, Action::Read).name()],
    }
}

fn v1_security() -> Vec<SecurityRequirement> {
    vec![
        SecurityRequirement::new(BEARER, Vec::<String>::new()),
        SecurityRequirement::new(API_KEY_HEADER, Vec::<String>::new()),
    ]
}

/// What the session guard of a route requires and how it refuses.
fn session_guard(method: &Method, role: Role) -> (Vec<SecurityRequirement>, Vec<ApiError>) {
    let mut requirement = SecurityRequirement::new(SESSION, Vec::<String>::new());
    let mut guard = vec![ApiError::Unauthenticated];
    if !matches!(*method, Method::GET | Method::HEAD) {
        requirement = requirement.add(CSRF, Vec::<String>::new());
        guard.push(ApiError::CsrfFailed);
    }
    if role > Role::Member {
        guard.push(role_too_low(Role::Member, role));
    }
    (vec![requirement], guard)
}

/// The operation a route's handler documents, if it does.
fn operation_mut<'a, A>(
    doc: &'a mut openapi::OpenApi,
    route: &Route<A>,
) -> Option<&'a mut Operation> {
    let item = doc.paths.paths.get_mut(route.path)?;
    slot(item, &route.method)?.as_mut()
}

fn slot<'a>(item: &'a mut PathItem, method: &Method) -> Option<&'a mut Option<Operation>> {
    Some(match *method {
        Method::GET => &mut item.get,
        Method::POST => &mut item.post,
        Method::PUT => &mut item.put,
        Method::PATCH => &mut item.patch,
        Method::DELETE => &mut item.delete,
        _ => return None,
    })
}

/// Adds a route's security, its guard's errors and the errors of its shape, then merges all
/// error responses by status.
fn complete<A>(
    operation: &mut Operation,
    route: &Route<A>,
    security: Vec<SecurityRequirement>,
    guard: Vec<ApiError>,
) {
    operation.operation_id = Some(operation_id(route));
    if !security.is_empty() {
        operation.security = Some(security);
    }
    let mut errors = guard;
    if operation.request_body.is_some() {
        errors.extend([
            ApiError::BadRequest("The body is not valid JSON.".into()),
            ApiError::RequestTimeout,
            ApiError::PayloadTooLarge {
                limit: JSON_BODY_LIMIT,
            },
            ApiError::UnsupportedMediaType(
                "Send the body as JSON with `Content-Type: application/json`.".into(),
            ),
            ApiError::field("name", "must be at most 100 characters"),
        ]);
    }
    let parameters = operation.parameters.iter().flatten();
    let located = |place: ParameterIn| {
        parameters.clone().any(|p| match p {
            RefOr::T(p) => p.parameter_in == place,
            RefOr::Ref(_) => false,
        })
    };
    if located(ParameterIn::Query) {
        errors.push(ApiError::BadRequest(
            "The query string is invalid: unknown field `colour`.".into(),
        ));
    }
    if located(ParameterIn::Path) {
        errors.push(ApiError::NotFound);
    }
    let responses = &mut operation.responses.responses;
    let declared: Vec<String> = responses
        .iter()
        .filter(|(status, _)| status.starts_with(['4', '5']))
        .map(|(status, _)| status.clone())
        .collect();
    for status in declared {
        if let Some(RefOr::Ref(reference)) = responses.remove(&status) {
            let name = reference
                .ref_location
                .rsplit('/')
                .next()
                .unwrap_or_default();
            errors.extend(errors::named(name));
        }
    }
    errors.push(ApiError::Unavailable { retry_after: 2 });
    let mut by_status: BTreeMap<u16, Vec<ApiError>> = BTreeMap::new();
    for error in errors {
        let same = by_status.entry(error.status().as_u16()).or_default();
        if !same.iter().any(|e| e.code() == error.code()) {
            same.push(error);
        }
    }
    for (status, errors) in by_status {
        responses.insert(status.to_string(), errors::response(&errors).into());
    }
    for response in responses.values_mut() {
        if let RefOr::T(response) = response {
            let mut id = openapi::header::Header::new(String::schema());
            id.description = Some("Quote it to find the request's log line.".into());
            response.headers.insert("X-Request-Id".into(), RefOr::T(id));
        }
    }
}

/// A unique, stable id from the method and path: `patch_v1_contacts_id`.
fn operation_id<A>(route: &Route<A>) -> String {
    let mut id = route.method.as_str().to_lowercase();
    for segment in route.path.split('/').filter(|s| !s.is_empty()) {
        id.push('_');
        id.extend(
            segment
                .chars()
                .filter(|c| !matches!(c, '{' | '}'))
                .map(|c| if c == '-' { '_' } else { c }),
        );
    }
    id
}

/// The document as served, rendered once.
#[derive(Clone)]
pub struct Rendered(Bytes);

impl Rendered {
    pub fn render() -> Self {
        Self(Bytes::from(
            serde_json::to_vec(&document()).unwrap_or_default(),
        ))
    }
}

/// `GET /openapi.json` (public): the OpenAPI 3.1 document.
pub async fn serve(axum::Extension(rendered): axum::Extension<Rendered>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        rendered.0,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;

    fn documented(doc: &openapi::OpenApi) -> BTreeSet<(String, String)> {
        let mut found = BTreeSet::new();
        for (path, item) in &doc.paths.paths {
            let mut item = item.clone();
            for method in [
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ] {
                if slot(&mut item, &method).is_some_and(|op| op.is_some()) {
                    found.insert((method.to_string(), path.clone()));
                }
            }
            assert!(
                item.head.is_none() && item.options.is_none() && item.trace.is_none(),
                "{path} documents a method no route serves"
            );
        }
        found
    }

    #[test]
    fn the_document_lists_every_route_and_only_those() {
        let routed: BTreeSet<(String, String)> = V1_ROUTES
            .iter()
            .map(|r| (r.method.to_string(), r.path.to_owned()))
            .chain(
                V1_PUBLIC_ROUTES
                    .iter()
                    .map(|r| (r.method.to_string(), r.path.to_owned())),
            )
            .chain(
                API_ROUTES
                    .iter()
                    .map(|r| (r.method.to_string(), r.path.to_owned())),
            )
            .collect();
        let documented = documented(&document());
        let missing: Vec<_> = routed.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&routed).collect();
        assert!(
            missing.is_empty(),
            "routes without documentation (add #[utoipa::path] to the handler and name it in \
             ApiDoc's paths): {missing:?}"
        );
        assert!(
            extra.is_empty(),
            "documented operations that no route serves: {extra:?}"
        );
    }

    #[test]
    fn every_operation_has_its_security_and_errors() {
        let doc = serde_json::to_value(document()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let ops = |path: &str, method: &str| doc["paths"][path][method].clone();
        let contact = ops("/v1/contacts/{id}", "patch");
        assert_eq!(
            contact["security"],
            serde_json::json!([{"bearer": []}, {"api_key": []}])
        );
        let forbidden = &contact["responses"]["403"]["content"]["application/json"]["examples"];
        assert_eq!(
            forbidden["permission_denied"]["value"]["error"]["required_permission"],
            "contacts:update"
        );
        assert!(forbidden["ip_not_allowed"].is_object());
        for status in [
            "400", "401", "404", "409", "412", "413", "415", "422", "429", "503",
        ] {
            assert!(
                contact["responses"][status].is_object(),
                "PATCH contact lacks {status}"
            );
        }
        let create_key = ops("/api/agents/{agent_id}/api-keys", "post");
        assert_eq!(
            create_key["security"],
            serde_json::json!([{"session": [], "csrf": []}])
        );
        let codes: Vec<&str> =
            create_key["responses"]["403"]["content"]["application/json"]["examples"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
        assert_eq!(codes, ["csrf_failed", "forbidden"]);
        let list = ops("/api/agents", "get");
        assert_eq!(list["security"], serde_json::json!([{"session": []}]));
        assert!(
            list["responses"]["403"].is_null(),
            "any member may list agents"
        );
        let sign_in = ops("/api/session", "post");
        assert!(sign_in["security"].is_null());
        assert!(sign_in["responses"]["401"]["content"]["application/json"]["examples"]
            ["invalid_credentials"]
            .is_object());
        let text = doc.to_string();
        assert!(
            !text.contains("#/components/responses/"),
            "error responses are inlined"
        );
    }

    #[test]
    fn operation_ids_are_unique_and_every_reference_resolves() {
        let doc = serde_json::to_value(document()).unwrap();
        let mut ids = BTreeSet::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                let id = op["operationId"].as_str().unwrap().to_owned();
                assert!(ids.insert(id.clone()), "operationId {id} used twice");
            }
        }
        fn refs(value: &Value, found: &mut Vec<String>) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        found.push(r.clone());
                    }
                    map.values().for_each(|v| refs(v, found));
                }
                Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        refs(&doc, &mut found);
        for reference in found {
            let name = reference.trim_start_matches("#/components/schemas/");
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "{reference} does not resolve"
            );
        }
    }
}
