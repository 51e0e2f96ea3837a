//! `/v1/documents…` (API key) and the dashboard's `/api/agents/{agent_id}/documents…`
//! (session): uploads (multipart or raw), reads, corrections, re-extraction and deletion.

use axum::{
    Json,
    body::Body,
    extract::{Path, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{
    auth::{api_key::Principal, session::Caller},
    contacts::etag_header,
    error::ApiError,
    extract::{AppQuery, Valid, stalled},
    openapi::{bodies, errors},
};
use crate::{
    contacts::Precondition,
    documents::{
        ListQuery,
        input::{self, DocumentPatch, ExtractAgain},
        service::Upload,
    },
    model::{
        document::{Detail, Document, Status},
        page::Page,
        permissions::{Action, Area, Permission},
    },
    state::AppState,
};

/// Largest `schema` or `metadata` part of a multipart upload.
const PART_LIMIT: usize = 64 * 1024;
/// Room for the multipart framing and the small parts around the file.
const MULTIPART_OVERHEAD: usize = 256 * 1024;

/// The query of an upload or a re-extraction.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file name of a raw upload (a multipart `file` part names its own).
    pub filename: Option<String>,
    /// `true`: also write the contacts found into the agent's CRM.
    #[param(pattern = "^(true|false|1|0)$")]
    pub create_contacts: Option<String>,
}

impl UploadQuery {
    fn create_contacts(&self) -> Result<bool, ApiError> {
        match self.create_contacts.as_deref() {
            None | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") => Ok(true),
            Some(_) => Err(ApiError::BadRequest(
                "`create_contacts` must be true or false.".into(),
            )),
        }
    }
}

/// The document with its `ETag`: 201/200 when extraction has ended, 202 while it runs.
fn respond(status: StatusCode, doc: &Document, detail: Detail) -> Response {
    let mut response = (status, Json(doc.view(detail))).into_response();
    response
        .headers_mut()
        .insert(header::ETAG, etag_header(doc.version));
    response
}

fn created(doc: &Document, location: String) -> Response {
    let status = if doc.status == Status::Processing {
        StatusCode::ACCEPTED
    } else {
        StatusCode::CREATED
    };
    let mut response = respond(status, doc, Detail::Full);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
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

fn too_large(limit: usize) -> ApiError {
    ApiError::PayloadTooLarge { limit }
}

/// A failed body read: 408 when the client stopped sending, 413 past the limit, else 400.
fn body_error(err: &(dyn std::error::Error + 'static), limit: usize) -> ApiError {
    let mut cause = Some(err);
    while let Some(err) = cause {
        if err.is::<LengthLimitError>() {
            return too_large(limit);
        }
        cause = err.source();
    }
    if stalled(err) {
        ApiError::RequestTimeout
    } else {
        ApiError::BadRequest("The request body could not be read.".into())
    }
}

fn multipart_error(err: multer::Error, limit: usize) -> ApiError {
    match err {
        multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => {
            too_large(limit)
        }
        multer::Error::StreamReadFailed(inner) => body_error(inner.as_ref(), limit),
        multer::Error::UnknownField { field_name } => ApiError::BadRequest(format!(
            "The multipart part `{}` is not known; send `file`, and optionally `schema` and \
             `metadata`.",
            field_name.unwrap_or_default()
        )),
        _ => ApiError::BadRequest("The multipart body is malformed.".into()),
    }
}

/// Reads an upload without holding more than the limit in memory: the declared length is
/// checked first, and the body is read only up to the limit.
async fn read_upload(
    state: &AppState,
    query: &UploadQuery,
    request: Request,
) -> Result<Upload, ApiError> {
    let limit = state.config.max_upload_bytes;
    let headers = request.headers();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    let multipart = content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data");
    let allowed = if multipart {
        limit.saturating_add(MULTIPART_OVERHEAD)
    } else {
        limit
    };
    if declared.is_some_and(|length| length > allowed as u64) {
        return Err(too_large(limit));
    }
    let mut filename = match query.filename.as_deref() {
        Some(name) => input::filename(name).map_err(|err| ApiError::field("filename", err))?,
        None => None,
    };
    let create_contacts = query.create_contacts()?;
    let body = request.into_body();
    if !multipart {
        let bytes = Limited::new(body, limit)
            .collect()
            .await
            .map_err(|err| body_error(err.as_ref(), limit))?
            .to_bytes();
        return Ok(Upload {
            bytes,
            filename,
            schema: None,
            metadata: Map::new(),
            create_contacts,
        });
    }
    let boundary = multer::parse_boundary(&content_type)
        .map_err(|_| ApiError::BadRequest("The multipart body has no boundary.".into()))?;
    let constraints = multer::Constraints::new()
        .allowed_fields(vec!["file", "schema", "metadata"])
        .size_limit(
            multer::SizeLimit::new()
                .whole_stream(allowed as u64)
                .for_field("file", limit as u64)
                .for_field("schema", PART_LIMIT as u64)
                .for_field("metadata", PART_LIMIT as u64),
        );
    let mut parts =
        multer::Multipart::with_constraints(body.into_data_stream(), boundary, constraints);
    let (mut file, mut schema, mut metadata) = (None, None, Map::new());
    while let Some(part) = parts
        .next_field()
        .await
        .map_err(|err| multipart_error(err, limit))?
    {
        match part.name() {
            Some("file") => {
                if filename.is_none()
                    && let Some(name) = part.file_name()
                {
                    filename =
                        input::filename(name).map_err(|err| ApiError::field("filename", err))?;
                }
                file = Some(
                    part.bytes()
                        .await
                        .map_err(|err| multipart_error(err, limit))?,
                );
            }
            Some("schema") => {
                let bytes = part
                    .bytes()
                    .await
                    .map_err(|err| multipart_error(err, limit))?;
                schema = Some(input::schema(&bytes).map_err(|err| ApiError::field("schema", err))?);
            }
            _ => {
                let bytes = part
                    .bytes()
                    .await
                    .map_err(|err| multipart_error(err, limit))?;
                let value: Value = serde_json::from_slice(&bytes)
                    .map_err(|_| ApiError::field("metadata", "must be a JSON object"))?;
                metadata =
                    input::metadata(&value).map_err(|err| ApiError::field("metadata", err))?;
            }
        }
    }
    let bytes = file.ok_or_else(|| ApiError::field("file", "is required"))?;
    Ok(Upload {
        bytes,
        filename,
        schema,
        metadata,
        create_contacts,
    })
}

/// `?create_contacts=true` writes contacts too: the key must also hold contacts:create.
fn check_contacts_permission(principal: &Principal, wanted: bool) -> Result<(), ApiError> {
    let needed = Permission(Area::Contacts, Action::Create);
    if wanted && !principal.key.permissions.has(needed) {
        return Err(ApiError::PermissionDenied {
            required: needed.name(),
            granted: principal.key.permissions.names(),
        });
    }
    Ok(())
}

/// `POST /v1/documents` (documents:create): multipart `file` (+ optional `schema`,
/// `metadata`) or the raw file as the body with `?filename=`. 201 document when extraction
/// ended (`succeeded` or `failed`), 202 `processing` when it continues in the background;
/// `Location` and `ETag`. 403 `permission_denied` for `?create_contacts=true` without
/// contacts:create; 413 over `--max-upload-bytes`; 415 not a supported format; 422 bad
/// `schema`, `metadata` or missing `file`.
#[utoipa::path(post, path = "/v1/documents", tag = "Documents", params(UploadQuery), request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file (its format is detected from the bytes), or a multipart/form-data body with a `file` part and optional `schema` and `metadata` parts."),
    responses((status = 201, description = "The document: `id`, `filename`, `content_type`, `size_bytes`, `sha256`, `status`, `error`, `page_count`, `text`, `ocr`, `fields`, `contacts`, `schema_fields`, `metadata`, `created_at`, `updated_at`.", body = Object), (status = 202, description = "Accepted: extraction continues in the background (`status: processing`).", body = Object)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    AppQuery(query): AppQuery<UploadQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    check_contacts_permission(&principal, query.create_contacts()?)?;
    let upload = read_upload(&state, &query, request).await?;
    let doc = state
        .documents
        .create(&principal.by(), principal.agent_id(), upload)
        .await?;
    Ok(created(&doc, format!("/v1/documents/{}", doc.id)))
}

/// `GET /v1/documents` (documents:read): `{data, has_more, next_cursor}` in creation order,
/// without `text`. Filters `status`, `q` (file name), `updated_since`; `limit`, `cursor`.
#[utoipa::path(get, path = "/v1/documents", tag = "Documents", params(ListQuery),
    responses((status = 200, description = "One page of the agent's documents, without `text`.", body = Object)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    AppQuery(query): AppQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let page = state.documents.list(principal.agent_id(), &query).await?;
    Ok(summaries(&page))
}

fn summaries(page: &Page<Document>) -> Response {
    Json(Page {
        data: page
            .data
            .iter()
            .map(|doc| doc.view(Detail::Summary))
            .collect(),
        has_more: page.has_more,
        next_cursor: page.next_cursor.clone(),
    })
    .into_response()
}

/// `GET /v1/documents/{id}` (documents:read): 200 document with `ETag`; 404.
#[utoipa::path(get, path = "/v1/documents/{id}", tag = "Documents", params(("id" = String, Path, description = "The document's id.")),
    responses((status = 200, description = "The document: `id`, `filename`, `content_type`, `size_bytes`, `sha256`, `status`, `error`, `page_count`, `text`, `ocr`, `fields`, `contacts`, `schema_fields`, `metadata`, `created_at`, `updated_at`.", body = Object)))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let doc = state.documents.get(principal.agent_id(), &id).await?;
    Ok(respond(StatusCode::OK, &doc, Detail::Full))
}

/// The original bytes as a download, with the detected content type.
fn file_response(doc: &Document, bytes: Vec<u8>) -> Response {
    let mut response = (StatusCode::OK, Body::from(bytes)).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&doc.content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    // Served as an attachment: an uploaded HTML file must never run on this origin.
    let name: String = doc
        .filename
        .as_deref()
        .unwrap_or("document")
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::ETAG, etag_header(doc.version));
    response
}

/// `GET /v1/documents/{id}/file` (documents:read): 200 the original bytes; 404.
#[utoipa::path(get, path = "/v1/documents/{id}/file", tag = "Documents", params(("id" = String, Path, description = "The document's id.")),
    responses((status = 200, description = "The original file, with its detected `Content-Type`.", content_type = "*/*", body = Vec<u8>)))]
pub async fn file(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (doc, bytes) = state.documents.file(principal.agent_id(), &id).await?;
    Ok(file_response(&doc, bytes))
}

/// `PATCH /v1/documents/{id}` (documents:update): `filename`, `metadata`, and corrections
/// of `fields` (whole categories; `null` takes one back) and `schema_fields`, kept and
/// listed in `edited`. 200 document; 404; 412 when `If-Match` does not name the current
/// version; 422.
#[utoipa::path(patch, path = "/v1/documents/{id}", tag = "Documents", params(("id" = String, Path, description = "The document's id."), ("If-Match" = Option<String>, Header, description = "`\"<version>\"` (the `ETag`): change only that version, else 412.")), request_body(content = Object, description = "`filename`, `metadata`, and corrections of `fields` / `schema_fields`."),
    responses((status = 200, description = "The document: `id`, `filename`, `content_type`, `size_bytes`, `sha256`, `status`, `error`, `page_count`, `text`, `ocr`, `fields`, `contacts`, `schema_fields`, `metadata`, `created_at`, `updated_at`.", body = Object), (status = 412, response = errors::PreconditionFailed)))]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    Valid(patch): Valid<DocumentPatch>,
) -> Result<Response, ApiError> {
    let doc = state
        .documents
        .update(
            &principal.by(),
            principal.agent_id(),
            &id,
            &patch,
            precondition(&headers).as_ref(),
        )
        .await?;
    Ok(respond(StatusCode::OK, &doc, Detail::Full))
}

/// `POST /v1/documents/{id}/extract` (documents:update): runs extraction again, keeping
/// corrections; an optional JSON body `{"schema": …}` extracts with a new schema from now on
/// (`null`: without one). 200 when done, 202 while it runs; 404; 409 while an extraction is
/// queued.
#[utoipa::path(post, path = "/v1/documents/{id}/extract", tag = "Documents", params(("id" = String, Path, description = "The document's id."), UploadQuery),
    request_body(content = Option<bodies::ExtractInput>, description = "Optional: a new `schema` to extract with (and keep for later runs), or `null` to extract without one. Without a body the stored schema is used."),
    responses((status = 200, description = "The document: `id`, `filename`, `content_type`, `size_bytes`, `sha256`, `status`, `error`, `page_count`, `text`, `ocr`, `fields`, `contacts`, `schema_fields`, `metadata`, `created_at`, `updated_at`.", body = Object), (status = 202, description = "Accepted: extraction continues in the background.", body = Object)))]
pub async fn extract(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    AppQuery(query): AppQuery<UploadQuery>,
    body: Option<Valid<ExtractAgain>>,
) -> Result<Response, ApiError> {
    let create_contacts = query.create_contacts()?;
    check_contacts_permission(&principal, create_contacts)?;
    let schema = body.and_then(|Valid(again)| again.schema);
    let doc = state
        .documents
        .extract_again(
            &principal.by(),
            principal.agent_id(),
            &id,
            create_contacts,
            schema,
        )
        .await?;
    Ok(extracted(&doc))
}

fn extracted(doc: &Document) -> Response {
    let status = if doc.status == Status::Processing {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    respond(status, doc, Detail::Full)
}

/// `DELETE /v1/documents/{id}` (documents:delete): 204, file, text and fields gone; 404;
/// 412 when `If-Match` does not name the current version.
#[utoipa::path(delete, path = "/v1/documents/{id}", tag = "Documents", params(("id" = String, Path, description = "The document's id.")),
    responses((status = 204, description = "Deleted: file, text and fields.")))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    state
        .documents
        .delete(
            &principal.by(),
            principal.agent_id(),
            &id,
            precondition(&headers).as_ref(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/agents/{agent_id}/documents` (any member): like `GET /v1/documents`.
#[utoipa::path(get, path = "/api/agents/{agent_id}/documents", tag = "Dashboard", params(("agent_id" = String, Path, description = "The agent's id."), ListQuery),
    responses((status = 200, description = "One page of the agent's documents, without `text`.", body = Object)))]
pub async fn dashboard_list(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    AppQuery(query): AppQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let page = state.documents.list_of_agent(&agent_id, &query).await?;
    Ok(summaries(&page))
}

/// `GET /api/agents/{agent_id}/documents/{document_id}` (any member): the document with the
/// text of each page.
#[utoipa::path(get, path = "/api/agents/{agent_id}/documents/{document_id}", tag = "Dashboard", params(("agent_id" = String, Path, description = "The agent's id."), ("document_id" = String, Path, description = "The document's id.")),
    responses((status = 200, description = "The document: `id`, `filename`, `content_type`, `size_bytes`, `sha256`, `status`, `error`, `page_count`, `text`, `ocr`, `fields`, `contacts`, `schema_fields`, `metadata`, `created_at`, `updated_at`.", body = Object)))]
pub async fn dashboard_get(
    State(state): State<AppState>,
    Path((agent_id, document_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let doc = state.documents.get(&agent_id, &document_id).await?;
    Ok(respond(StatusCode::OK, &doc, Detail::WithPages))
}

/// `GET /api/agents/{agent_id}/documents/{document_id}/file` (any member).
#[utoipa::path(get, path = "/api/agents/{agent_id}/documents/{document_id}/file", tag = "Dashboard", params(("agent_id" = String, Path, description = "The agent's id."), ("document_id" = String, Path, description = "The document's id.")),
    responses((status = 200, description = "The original file, with its detected `Content-Type`.", content_type = "*/*", body = Vec<u8>)))]
pub async fn dashboard_file(
    State(state): State<AppState>,
    Path((agent_id, document_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (doc, bytes) = state.documents.file(&agent_id, &document_id).await?;
    Ok(file_response(&doc, bytes))
}

/// `POST /api/agents/{agent_id}/documents` (admin): an upload from the dashboard, audited
/// with the member as actor. 404 unknown agent.
#[utoipa::path(post, path = "/api/agents/{agent_id}/documents", tag = "Dashboard", params(("agent_id" = String, Path, description = "The agent's id."), UploadQuery), request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file (its format is detected from the bytes), or a multipart/form-data body with a `file` part and optional `schema` and `metadata` parts."),
    responses((status = 201, description = "The document: `id`, `filename`, `content_type`, `size_bytes`, `sha256`, `status`, `error`, `page_count`, `text`, `ocr`, `fields`, `contacts`, `schema_fields`, `metadata`, `created_at`, `updated_at`.", body = Object), (status = 202, description = "Accepted: extraction continues in the background.", body = Object)))]
pub async fn dashboard_create(
    State(state): State<AppState>,
    caller: Caller,
    Path(agent_id): Path<String>,
    AppQuery(query): AppQuery<UploadQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    crate::agents::get(&state.store, &agent_id).await?;
    let upload = read_upload(&state, &query, request).await?;
    let doc = state
        .documents
        .create(&caller.by(), &agent_id, upload)
        .await?;
    Ok(created(
        &doc,
        format!("/api/agents/{agent_id}/documents/{}", doc.id),
    ))
}

/// `PATCH /api/agents/{agent_id}/documents/{document_id}` (admin): corrections from the
/// dashboard; same rules as `/v1`.
#[utoipa::path(patch, path = "/api/agents/{agent_id}/documents/{document_id}", tag = "Dashboard", params(("agent_id" = String, Path, description = "The agent's id."), ("document_id" = String, Path, description = "The document's id."), ("If-Match" = Option<String>, Header, description = "`\"<version>\"` (the `ETag`): change only that version, else 412.")), request_body(content = Object, description = "`filename`, `metadata`, and corrections of `fields` / `schema_fields`."),
    responses((status = 200, description = "The document: `id`, `filename`, `content_type`, `size_bytes`, `sha256`, `status`, `error`, `page_count`, `text`, `ocr`, `fields`, `contacts`, `schema_fields`, `metadata`, `created_at`, `updated_at`.", body = Object), (status = 412, response = errors::PreconditionFailed)))]
pub async fn dashboard_update(
    State(state): State<AppState>,
    caller: Caller,
    Path((agent_id, document_id)): Path<(String, String)>,
    headers: HeaderMap,
    Valid(patch): Valid<DocumentPatch>,
) -> Result<Response, ApiError> {
    let doc = state
        .documents
        .update(
            &caller.by(),
            &agent_id,
            &document_id,
            &patch,
            precondition(&headers).as_ref(),
        )
        .await?;
    Ok(respond(StatusCode::OK, &doc, Detail::WithPages))
}

/// `POST /api/agents/{agent_id}/documents/{document_id}/extract` (admin).
#[utoipa::path(post, path = "/api/agents/{agent_id}/documents/{document_id}/extract", tag = "Dashboard", params(("agent_id" = String, Path, description = "The agent's id."), ("document_id" = String, Path, description = "The document's id."), UploadQuery),
    responses((status = 200, description = "The document: `id`, `filename`, `content_type`, `size_bytes`, `sha256`, `status`, `error`, `page_count`, `text`, `ocr`, `fields`, `contacts`, `schema_fields`, `metadata`, `created_at`, `updated_at`.", body = Object), (status = 202, description = "Accepted: extraction continues in the background.", body = Object)))]
pub async fn dashboard_extract(
    State(state): State<AppState>,
    caller: Caller,
    Path((agent_id, document_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let doc = state
        .documents
        .extract_again(&caller.by(), &agent_id, &document_id, false, None)
        .await?;
    Ok(extracted(&doc))
}

/// `DELETE /api/agents/{agent_id}/documents/{document_id}` (admin): 204.
#[utoipa::path(delete, path = "/api/agents/{agent_id}/documents/{document_id}", tag = "Dashboard", params(("agent_id" = String, Path, description = "The agent's id."), ("document_id" = String, Path, description = "The document's id.")),
    responses((status = 204, description = "Deleted.")))]
pub async fn dashboard_delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((agent_id, document_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    state
        .documents
        .delete(
            &caller.by(),
            &agent_id,
            &document_id,
            precondition(&headers).as_ref(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
