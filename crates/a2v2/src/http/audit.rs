//! `/api/audit-logs`: read and export the audit log. There is deliberately no route that
//! changes or deletes events; only the retention purge removes old ones.

use axum::{
    Json,
    body::Body,
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};

use super::{auth::session::Caller, error::ApiError, extract::AppQuery};
use crate::{
    audit::{self, query::AuditQuery},
    model::{audit::AuditEvent, now_ms, page::Page, time::to_rfc3339},
    state::AppState,
};

/// `GET /api/audit-logs` (admin): events newest first, paginated; filters `action` (exact, or
/// a prefix such as `api_key.*`), `agent_id`, `actor_id`, `since` (inclusive) and `until`
/// (exclusive), times in RFC 3339. 400 `bad_request` for a malformed filter.
#[utoipa::path(get, path = "/api/audit-logs", tag = "Audit log", params(AuditQuery),
    responses((status = 200, description = "One page of events, newest first.", body = Page<AuditEvent>)))]
pub async fn list(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<AuditQuery>,
) -> Result<Json<Page<AuditEvent>>, ApiError> {
    Ok(Json(audit::list(&state.store, &query).await?))
}

/// `GET /api/audit-logs/export?format=csv|jsonl` (admin): every matching event, oldest first,
/// as a download (same filters as the list). The export itself is recorded.
#[utoipa::path(get, path = "/api/audit-logs/export", tag = "Audit log", params(AuditQuery),
    responses((status = 200, description = "Every matching event, oldest first, as a download.",
        content(("application/x-ndjson"), ("text/csv")),
        headers(("Content-Disposition" = String, description = "`attachment; filename=…`")))))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(query): AppQuery<AuditQuery>,
) -> Result<Response, ApiError> {
    let (format, chunks) = audit::export(&state.store, &caller.by(), &query).await?;
    let stamp: String = to_rfc3339(now_ms())
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let disposition = format!(
        "attachment; filename=\"audit-log-{stamp}.{}\"",
        format.name()
    );
    let mut response = Body::from_stream(chunks).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
