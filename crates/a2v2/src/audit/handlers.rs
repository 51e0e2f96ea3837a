//! `/api/audit-logs`: read and export the audit log. There is deliberately no route that
//! changes or deletes events; only the retention purge removes old ones.

use axum::{
    Json,
    body::Body,
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::{
    Event,
    export::{self, Format},
    query::{self, AuditQuery, Order},
};
use crate::{
    error::ApiError,
    extract::AppQuery,
    members::session::Caller,
    pagination::{self, PageQuery},
    state::AppState,
    store::now_ms,
    time_fmt::to_rfc3339,
};

/// `GET /api/audit-logs` (admin): events newest first, paginated; filters `action` (exact, or
/// a prefix such as `api_key.*`), `agent_id`, `actor_id`, `since` (inclusive) and `until`
/// (exclusive), times in RFC 3339. 400 `bad_request` for a malformed filter.
pub async fn list(
    State(state): State<AppState>,
    AppQuery(params): AppQuery<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let page = PageQuery {
        limit: params.limit.clone(),
        cursor: params.cursor.clone(),
    }
    .page()?;
    let filter = params.filter()?;
    let mut conn = state.store.pool.acquire().await?;
    let events = query::fetch(
        &mut conn,
        &filter,
        Order::NewestFirst,
        page.after.as_deref(),
        None,
        page.limit + 1,
    )
    .await?;
    Ok(Json(pagination::respond(
        events,
        page.limit,
        |e| e.id.clone(),
        query::EventRow::view,
    )))
}

/// `GET /api/audit-logs/export?format=csv|jsonl` (admin): every matching event, oldest first,
/// as a download (same filters as the list). The export itself is recorded.
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(params): AppQuery<AuditQuery>,
) -> Result<Response, ApiError> {
    let format = Format::parse(params.format.as_deref())?;
    let filter = params.filter()?;
    let mut tx = state.store.begin().await?;
    super::record(
        &mut tx,
        &caller.actor(),
        &caller.origin,
        Event {
            action: "audit.exported",
            agent_id: None,
            target: None,
            details: json!({
                "format": format.name(),
                "filters": {
                    "action": params.action,
                    "agent_id": filter.agent_id,
                    "actor_id": filter.actor_id,
                    "since": filter.since.map(to_rfc3339),
                    "until": filter.until.map(to_rfc3339),
                },
            }),
        },
    )
    .await?;
    tx.commit().await?;
    let stamp: String = to_rfc3339(now_ms())
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let disposition = format!(
        "attachment; filename=\"audit-log-{stamp}.{}\"",
        format.name()
    );
    let mut response =
        Body::from_stream(export::stream(state.store.clone(), filter, format)).into_response();
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
