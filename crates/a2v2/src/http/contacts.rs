//! `/v1/contacts…` (API key) and the dashboard's read-only views under
//! `/api/agents/{agent_id}/contacts…` (session).

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use super::{
    auth::api_key::Principal,
    error::ApiError,
    extract::{AppJson, AppQuery, Valid},
    openapi::{bodies::ContactInput, errors},
};
use crate::{
    contacts::{
        ListQuery, Precondition, etag,
        idempotency::{self, Idempotency},
        service::Created,
        validation::{ContactPatch, NewContact},
    },
    model::{contact::Contact, page::Page},
    state::AppState,
    store::idempotency::StoredResponse,
    validate,
};

const IDEMPOTENCY_KEY: &str = "idempotency-key";

fn etag_header(version: i64) -> HeaderValue {
    HeaderValue::from_str(&etag(version)).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// The contact with its `ETag`.
fn respond(status: StatusCode, contact: &Contact) -> Response {
    let mut response = (status, Json(contact)).into_response();
    response
        .headers_mut()
        .insert(header::ETAG, etag_header(contact.version));
    response
}

fn precondition(headers: &HeaderMap) -> Option<Precondition> {
    Precondition::from_if_match(
        headers
            .get_all(header::IF_MATCH)
            .iter()
            .filter_map(|value| value.to_str().ok()),
    )
}

/// A stored response, replayed as it was first sent.
fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let version = serde_json::from_str::<serde_json::Value>(&stored.body)
        .ok()
        .and_then(|body| body["version"].as_i64());
    let mut response = (status, stored.body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        HeaderName::from_static("idempotent-replayed"),
        HeaderValue::from_static("true"),
    );
    if let Some(location) = stored.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LOCATION, location);
    }
    if let Some(version) = version {
        headers.insert(header::ETAG, etag_header(version));
    }
    response
}

/// `POST /v1/contacts` (contacts:create): 201 contact with `Location` and `ETag`.
/// Honours `Idempotency-Key` (a replay answers like the first response).
/// 400 bad JSON or `Idempotency-Key`; 409 `contact_exists` with `existing_id`;
/// 413 body over 1 MiB; 422 `validation_failed` (also a reused `Idempotency-Key`).
#[utoipa::path(post, path = "/v1/contacts", tag = "Contacts",
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body within 24 h return the first response and create nothing.")),
    request_body = ContactInput,
    responses(
        (status = 201, description = "The new contact.", body = Contact,
            headers(("Location" = String, description = "`/v1/contacts/{id}`."), ("ETag" = String, description = "`\"<version>\"`, for `If-Match`."))),
        (status = 409, response = errors::ContactExistsOrInFlight),
    ))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    AppJson(body): AppJson<serde_json::Map<String, serde_json::Value>>,
) -> Result<Response, ApiError> {
    let idempotency = headers
        .get(IDEMPOTENCY_KEY)
        .map(|value| idempotency::key_from(value.as_bytes()))
        .transpose()?
        .map(|key| Idempotency {
            key,
            request_hash: idempotency::body_hash(&body),
        });
    // A retry answers like the first request did, before anything else is checked.
    if let Some(request) = &idempotency
        && let Some(stored) = state
            .contacts
            .stored_response(principal.agent_id(), request)
            .await?
    {
        return Ok(replay(stored));
    }
    let NewContact(fields) = validate::parse(&body).map_err(ApiError::validation)?;
    match state
        .contacts
        .create(&principal.by(), principal.agent_id(), fields, idempotency)
        .await?
    {
        Created::Replayed(stored) => Ok(replay(stored)),
        Created::New(contact) => {
            let mut response = respond(StatusCode::CREATED, &contact);
            if let Ok(value) = HeaderValue::from_str(&format!("/v1/contacts/{}", contact.id)) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            Ok(response)
        }
    }
}

/// `GET /v1/contacts` (contacts:read): `{data, has_more, next_cursor}` in creation order.
/// Filters `q`, `email`, `tag`, `updated_since`; `limit` 1–200 and `cursor`.
/// 400 `bad_request` for a bad limit, cursor, timestamp or an unknown parameter.
#[utoipa::path(get, path = "/v1/contacts", tag = "Contacts", params(ListQuery),
    responses((status = 200, description = "One page of the agent's contacts, in creation order.", body = Page<Contact>)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    AppQuery(query): AppQuery<ListQuery>,
) -> Result<Json<Page<Contact>>, ApiError> {
    Ok(Json(
        state.contacts.list(principal.agent_id(), &query).await?,
    ))
}

/// `GET /v1/contacts/{id}` (contacts:read): 200 contact with `ETag: "<version>"`; 404.
/// Served from the read cache when it holds the contact.
#[utoipa::path(get, path = "/v1/contacts/{id}", tag = "Contacts", params(("id" = String, Path, description = "The contact's id.")),
    responses((status = 200, description = "The contact.", body = Contact, headers(("ETag" = String, description = "`\"<version>\"`, for `If-Match`.")))))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let entry = state
        .contacts
        .get_serialized(principal.agent_id(), &id)
        .await?;
    let mut response = (StatusCode::OK, entry.body.clone()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::ETAG, etag_header(entry.version));
    Ok(response)
}

/// `PATCH /v1/contacts/{id}` (contacts:update): partial update, `null` clears a field.
/// 200 contact with `ETag`; 404; 409 `contact_exists`; 412 `precondition_failed` when
/// `If-Match` does not name the current version (nothing changes); 422 `validation_failed`.
#[utoipa::path(patch, path = "/v1/contacts/{id}", tag = "Contacts", params(("id" = String, Path, description = "The contact's id."), ("If-Match" = Option<String>, Header, description = "`\"<version>\"` (the `ETag`): change only that version, else 412.")),
    request_body = ContactInput,
    responses(
        (status = 200, description = "The changed contact.", body = Contact, headers(("ETag" = String, description = "`\"<version>\"`, for `If-Match`."))),
        (status = 409, response = errors::ContactExistsOrBusy),
        (status = 412, response = errors::PreconditionFailed),
    ))]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    Valid(patch): Valid<ContactPatch>,
) -> Result<Response, ApiError> {
    let contact = state
        .contacts
        .update(
            &principal.by(),
            principal.agent_id(),
            &id,
            &patch,
            precondition(&headers).as_ref(),
        )
        .await?;
    Ok(respond(StatusCode::OK, &contact))
}

/// `DELETE /v1/contacts/{id}` (contacts:delete): 204; 404; 412 `precondition_failed` when an
/// `If-Match` header does not name the current version.
#[utoipa::path(delete, path = "/v1/contacts/{id}", tag = "Contacts", params(("id" = String, Path, description = "The contact's id."), ("If-Match" = Option<String>, Header, description = "`\"<version>\"` (the `ETag`): change only that version, else 412.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 409, response = errors::Busy),
        (status = 412, response = errors::PreconditionFailed),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    state
        .contacts
        .delete(
            &principal.by(),
            principal.agent_id(),
            &id,
            precondition(&headers).as_ref(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/agents/{agent_id}/contacts` (any member): the agent's contacts, with the same
/// filters and pagination as `GET /v1/contacts`. 404 unknown agent; 400 bad query.
#[utoipa::path(get, path = "/api/agents/{agent_id}/contacts", tag = "Dashboard", params(("agent_id" = String, Path, description = "The agent's id."), ListQuery),
    responses((status = 200, description = "One page of the agent's contacts.", body = Page<Contact>)))]
pub async fn dashboard_list(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    AppQuery(query): AppQuery<ListQuery>,
) -> Result<Json<Page<Contact>>, ApiError> {
    Ok(Json(state.contacts.list_of_agent(&agent_id, &query).await?))
}

/// `GET /api/agents/{agent_id}/contacts/{contact_id}` (any member): 200 contact with `ETag`;
/// 404 unknown agent or contact.
#[utoipa::path(get, path = "/api/agents/{agent_id}/contacts/{contact_id}", tag = "Dashboard",
    params(("agent_id" = String, Path, description = "The agent's id."), ("contact_id" = String, Path, description = "The contact's id.")),
    responses((status = 200, description = "The contact.", body = Contact, headers(("ETag" = String, description = "`\"<version>\"`, for `If-Match`.")))))]
pub async fn dashboard_get(
    State(state): State<AppState>,
    Path((agent_id, contact_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let contact = state.contacts.get(&agent_id, &contact_id).await?;
    Ok(respond(StatusCode::OK, &contact))
}
