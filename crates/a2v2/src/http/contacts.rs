//! `/v1/contacts…` (API key) and the dashboard's contacts under
//! `/api/agents/{agent_id}/contacts…` (session): reads for every member, writes for admins
//! through the same service, rules and errors as `/v1`, with the member as actor.

use axum::{
    Json,
    body::{Body, Bytes},
    extract::{Path, State},
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use super::{
    auth::{api_key::Principal, session::Caller},
    error::ApiError,
    extract::{AppJson, AppQuery, Valid, stalled},
    multipart,
    openapi::{bodies::ContactInput, errors},
};
use futures_util::StreamExt;
use serde::Deserialize;

use crate::{
    audit::export::Format,
    contacts::{
        ListQuery, Precondition,
        idempotency::{self, Idempotency},
        import::{self, ImportFile, OnDuplicate},
        service::Created,
        validation::{ContactPatch, NewContact},
    },
    error::DomainError,
    model::{
        audit::By,
        contact::{Contact, ContactImport},
        page::Page,
    },
    state::AppState,
    store::idempotency::StoredResponse,
    validate,
};

const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The strong entity tag of a version: `"<version>"`.
pub fn etag_header(version: i64) -> HeaderValue {
    // Formatted on the stack, as this runs on every read; an i64 and its quotes fit.
    let mut text = [0u8; 24];
    let mut cursor = std::io::Cursor::new(&mut text[..]);
    let tag = match std::io::Write::write_fmt(&mut cursor, format_args!("\"{version}\"")) {
        Ok(()) => usize::try_from(cursor.position())
            .ok()
            .and_then(|len| HeaderValue::from_bytes(&text[..len]).ok()),
        Err(_) => None,
    };
    tag.unwrap_or(HeaderValue::from_static("\"0\""))
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
    create_as(
        &state,
        &principal.by(),
        principal.agent_id(),
        &headers,
        &body,
        &|id: &str| format!("/v1/contacts/{id}"),
    )
    .await
}

/// A create through either API: the same validation, idempotency and errors.
async fn create_as(
    state: &AppState,
    by: &By,
    agent_id: &str,
    headers: &HeaderMap,
    body: &serde_json::Map<String, serde_json::Value>,
    location: &(dyn Fn(&str) -> String + Sync),
) -> Result<Response, ApiError> {
    let idempotency = headers
        .get(IDEMPOTENCY_KEY)
        .map(|value| idempotency::key_from(value.as_bytes()))
        .transpose()?
        .map(|key| Idempotency {
            key,
            request_hash: idempotency::body_hash(body),
        });
    // A retry answers like the first request did, before anything else is checked.
    if let Some(request) = &idempotency
        && let Some(stored) = state.contacts.stored_response(agent_id, request).await?
    {
        return Ok(replay(stored));
    }
    let NewContact(fields) = validate::parse(body).map_err(ApiError::validation)?;
    match state
        .contacts
        .create(by, agent_id, fields, idempotency, location)
        .await?
    {
        Created::Replayed(stored) => Ok(replay(stored)),
        Created::New(contact) => {
            let mut response = respond(StatusCode::CREATED, &contact);
            if let Ok(value) = HeaderValue::from_str(&location(&contact.id)) {
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
    let mut response = Response::new(Body::from(entry.body.clone()));
    let headers = response.headers_mut();
    // Room for what is added on the way out too, so the map is sized once.
    headers.reserve(2 + super::request_id::HEADERS_ADDED);
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

/// `POST /api/agents/{agent_id}/contacts` (admin): like `POST /v1/contacts`, audited with the
/// member as actor; `Location` names the dashboard's URL of the contact. 404 unknown agent.
#[utoipa::path(post, path = "/api/agents/{agent_id}/contacts", tag = "Dashboard",
    params(("agent_id" = String, Path, description = "The agent's id."), ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body within 24 h return the first response and create nothing.")),
    request_body = ContactInput,
    responses(
        (status = 201, description = "The new contact.", body = Contact,
            headers(("Location" = String, description = "`/api/agents/{agent_id}/contacts/{id}`."), ("ETag" = String, description = "`\"<version>\"`, for `If-Match`."))),
        (status = 409, response = errors::ContactExistsOrInFlight),
    ))]
pub async fn dashboard_create(
    State(state): State<AppState>,
    caller: Caller,
    Path(agent_id): Path<String>,
    headers: HeaderMap,
    AppJson(body): AppJson<serde_json::Map<String, serde_json::Value>>,
) -> Result<Response, ApiError> {
    state.contacts.ensure_agent(&agent_id).await?;
    let location = |id: &str| format!("/api/agents/{agent_id}/contacts/{id}");
    create_as(&state, &caller.by(), &agent_id, &headers, &body, &location).await
}

/// `PATCH /api/agents/{agent_id}/contacts/{contact_id}` (admin): like `PATCH /v1/contacts/{id}`
/// (partial update, `If-Match`, 404/409/412/422), audited with the member as actor.
#[utoipa::path(patch, path = "/api/agents/{agent_id}/contacts/{contact_id}", tag = "Dashboard",
    params(("agent_id" = String, Path, description = "The agent's id."), ("contact_id" = String, Path, description = "The contact's id."), ("If-Match" = Option<String>, Header, description = "`\"<version>\"` (the `ETag`): change only that version, else 412.")),
    request_body = ContactInput,
    responses(
        (status = 200, description = "The changed contact.", body = Contact, headers(("ETag" = String, description = "`\"<version>\"`, for `If-Match`."))),
        (status = 409, response = errors::ContactExistsOrBusy),
        (status = 412, response = errors::PreconditionFailed),
    ))]
pub async fn dashboard_update(
    State(state): State<AppState>,
    caller: Caller,
    Path((agent_id, contact_id)): Path<(String, String)>,
    headers: HeaderMap,
    Valid(patch): Valid<ContactPatch>,
) -> Result<Response, ApiError> {
    let contact = state
        .contacts
        .update(
            &caller.by(),
            &agent_id,
            &contact_id,
            &patch,
            precondition(&headers).as_ref(),
        )
        .await?;
    Ok(respond(StatusCode::OK, &contact))
}

/// `DELETE /api/agents/{agent_id}/contacts/{contact_id}` (admin): 204; 404; 412 on a stale
/// `If-Match`. Audited with the member as actor.
#[utoipa::path(delete, path = "/api/agents/{agent_id}/contacts/{contact_id}", tag = "Dashboard",
    params(("agent_id" = String, Path, description = "The agent's id."), ("contact_id" = String, Path, description = "The contact's id."), ("If-Match" = Option<String>, Header, description = "`\"<version>\"` (the `ETag`): change only that version, else 412.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 409, response = errors::Busy),
        (status = 412, response = errors::PreconditionFailed),
    ))]
pub async fn dashboard_delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((agent_id, contact_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    state
        .contacts
        .delete(
            &caller.by(),
            &agent_id,
            &contact_id,
            precondition(&headers).as_ref(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `?on_duplicate=skip|update` of an import.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// `skip` (default) keeps a stored contact with the same email; `update` fills it in.
    pub on_duplicate: Option<String>,
}

/// The media types a CSV upload arrives with: what browsers and tools send for `.csv` files.
const CSV_TYPES: [&str; 6] = [
    "text/csv",
    "text/plain",
    "application/csv",
    "application/vnd.ms-excel",
    "application/octet-stream",
    "text/tab-separated-values",
];

/// The body, at most `limit` bytes: 413 beyond, 408 when the client stalls.
async fn read_limited(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut stream = body.into_data_stream();
    let mut buffer = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| {
            if stalled(&err) {
                ApiError::RequestTimeout
            } else {
                ApiError::BadRequest("The request body could not be read.".into())
            }
        })?;
        if buffer.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buffer))
}

/// The uploaded CSV file: the body itself (`text/csv` and the like) or the `file` part of a
/// `multipart/form-data` body; 415 for other media types, 422 without a `file` part.
async fn upload(state: &AppState, headers: &HeaderMap, body: Body) -> Result<ImportFile, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("text/csv")
        .to_owned();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let boundary = multipart::boundary(&content_type);
    if boundary.is_none() && !CSV_TYPES.contains(&essence.as_str()) {
        return Err(ApiError::UnsupportedMediaType(
            "Send the CSV file as the body with `Content-Type: text/csv`, or as the `file` part \
             of a multipart/form-data body."
                .into(),
        ));
    }
    let bytes = read_limited(headers, body, state.config.max_upload_bytes).await?;
    tokio::task::spawn_blocking(move || {
        let csv = match &boundary {
            Some(boundary) => multipart::part(&bytes, boundary, "file").ok_or_else(|| {
                DomainError::field(
                    "file",
                    "is required: send the CSV file in a part named `file`",
                )
            })?,
            None => &bytes[..],
        };
        ImportFile::read(csv)
    })
    .await
    .map_err(|err| ApiError::from(DomainError::internal(err)))?
    .map_err(ApiError::from)
}

/// `POST /api/agents/{agent_id}/contacts/import?on_duplicate=skip|update` (admin): imports a
/// CSV file (see `contacts::import`). A file of at most 1,000 rows is imported at once: 200
/// with the import's report (`created`, `updated`, `unchanged`, `skipped: [{row, reason}]`).
/// A larger one continues in the background: 202 with the import so far and `Location`, to
/// poll with `GET …/contacts/imports/{import_id}`. 404 unknown agent; 400 bad
/// `on_duplicate`; 413 over `--max-upload-bytes`; 415 not CSV; 422 no header or no column
/// naming a person.
#[utoipa::path(post, path = "/api/agents/{agent_id}/contacts/import", tag = "Dashboard",
    params(("agent_id" = String, Path, description = "The agent's id."), ImportQuery),
    request_body(content = String, content_type = "text/csv", description = "The CSV file (or a multipart/form-data body with a `file` part)."),
    responses(
        (status = 200, description = "A file of at most 1,000 rows, imported: the report.", body = ContactImport),
        (status = 202, description = "A larger file, importing in the background: poll `Location`.", body = ContactImport,
            headers(("Location" = String, description = "`/api/agents/{agent_id}/contacts/imports/{import_id}`."))),
    ))]
pub async fn dashboard_import(
    State(state): State<AppState>,
    caller: Caller,
    Path(agent_id): Path<String>,
    AppQuery(query): AppQuery<ImportQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let on_duplicate = OnDuplicate::parse(query.on_duplicate.as_deref())?;
    state.contacts.ensure_agent(&agent_id).await?;
    let file = upload(&state, &headers, body).await?;
    let by = caller.by();
    let import = state
        .contacts
        .start_import(&by, &agent_id, &file, on_duplicate)
        .await?;
    if file.rows.len() <= import::INLINE_ROWS {
        let done = state
            .contacts
            .run_import(&by, import, &file, true, &mut |_: &ContactImport| {})
            .await?;
        return Ok((StatusCode::OK, Json(done)).into_response());
    }
    let location = format!("/api/agents/{agent_id}/contacts/imports/{}", import.id);
    let (contacts, running) = (state.contacts.clone(), import.clone());
    tokio::spawn(async move {
        if let Err(err) = contacts
            .run_import(&by, running, &file, true, &mut |_: &ContactImport| {})
            .await
        {
            tracing::warn!(error = %err, "a contact import stopped");
        }
    });
    let mut response = (StatusCode::ACCEPTED, Json(import)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// `POST /api/agents/{agent_id}/contacts/import/preview` (admin): how a CSV file would be
/// read — `encoding`, `columns` (`[{header, field}]`), `total_rows` and the first `rows` as
/// contact values or with the `error` that would skip them — without importing anything.
/// Errors as for the import.
#[utoipa::path(post, path = "/api/agents/{agent_id}/contacts/import/preview", tag = "Dashboard",
    params(("agent_id" = String, Path, description = "The agent's id.")),
    request_body(content = String, content_type = "text/csv", description = "The CSV file (or a multipart/form-data body with a `file` part)."),
    responses((status = 200, description = "How the file would be read: `encoding`, `columns` (`[{header, field}]`), `total_rows`, the first `rows`.", body = Object)))]
pub async fn dashboard_import_preview(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    state.contacts.ensure_agent(&agent_id).await?;
    let file = upload(&state, &headers, body).await?;
    Ok(Json(file.preview()))
}

/// `GET /api/agents/{agent_id}/contacts/imports/{import_id}` (any member): an import's
/// progress (`state` running, done or failed; `processed_rows` of `total_rows`) and report.
#[utoipa::path(get, path = "/api/agents/{agent_id}/contacts/imports/{import_id}", tag = "Dashboard",
    params(("agent_id" = String, Path, description = "The agent's id."), ("import_id" = String, Path, description = "The import's id.")),
    responses((status = 200, description = "The import's progress and report.", body = ContactImport)))]
pub async fn dashboard_import_status(
    State(state): State<AppState>,
    Path((agent_id, import_id)): Path<(String, String)>,
) -> Result<Json<ContactImport>, ApiError> {
    Ok(Json(
        state.contacts.get_import(&agent_id, &import_id).await?,
    ))
}

/// `?format=csv|jsonl` and the list's filters, for an export.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    pub format: Option<String>,
    pub q: Option<String>,
    pub email: Option<String>,
    pub tag: Option<String>,
    pub updated_since: Option<String>,
    pub written_by: Option<String>,
}

/// `GET /api/agents/{agent_id}/contacts/export?format=csv|jsonl` (any member): every contact
/// matching the list's filters, as a download (CSV by default). Recorded in the audit log.
/// 404 unknown agent; 400 bad filter or format.
#[utoipa::path(get, path = "/api/agents/{agent_id}/contacts/export", tag = "Dashboard",
    params(("agent_id" = String, Path, description = "The agent's id."), ExportQuery),
    responses((status = 200, description = "Every matching contact: CSV (`text/csv`) or JSON Lines (`application/x-ndjson`).",
        content((String = "text/csv"), (String = "application/x-ndjson")))))]
pub async fn dashboard_export(
    State(state): State<AppState>,
    caller: Caller,
    Path(agent_id): Path<String>,
    AppQuery(query): AppQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let format = Format::parse(Some(query.format.as_deref().unwrap_or("csv")))?;
    let list = ListQuery {
        q: query.q,
        email: query.email,
        tag: query.tag,
        updated_since: query.updated_since,
        written_by: query.written_by,
        ..ListQuery::default()
    };
    let chunks = state
        .contacts
        .export(&caller.by(), &agent_id, list, format)
        .await?;
    let mut response = Body::from_stream(chunks).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    let disposition = format!("attachment; filename=\"contacts.{}\"", format.name());
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_quote_the_version() {
        assert_eq!(etag_header(42), "\"42\"");
        assert_eq!(etag_header(i64::MIN), format!("\"{}\"", i64::MIN).as_str());
    }
}
