//! HTTP handlers for contacts: `/v1/contacts…` (API key) and the dashboard's read-only views
//! under `/api/agents/{agent_id}/contacts…` (session).
//!
//! Permissions are enforced by the `/v1` guard (`access::V1_ROUTES`) and roles by the session
//! guard (`members::roles::API_ROUTES`); handlers only ever touch the caller's agent's rows.

use axum::{
    Extension, Json,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

use super::{
    Contact, ListQuery, Precondition,
    cache::{ContactCache, Entry},
    idempotency, validation,
};
use crate::{
    access::Principal,
    agents,
    audit::{self, Actor, Event, Origin, Target},
    error::ApiError,
    extract::{AppJson, AppQuery},
    pagination,
    state::AppState,
    store::{is_unique_violation, new_id, now_ms},
};

/// Unconditional writes that lose a race re-read and try again at most this often.
const WRITE_ATTEMPTS: usize = 50;

fn actor_and_origin(principal: &Principal) -> (Actor, Origin) {
    (
        Actor::api_key(&principal.key.id, &principal.key.name),
        Origin {
            ip: Some(principal.ip.to_string()),
            user_agent: principal.user_agent.clone(),
        },
    )
}

fn target(contact: &Contact) -> Target {
    let label = contact.fields.label();
    Target::new(
        "contact",
        &contact.id,
        if label.is_empty() {
            &contact.id
        } else {
            &label
        },
    )
}

/// `200` with the contact and its `ETag`.
fn respond(status: StatusCode, contact: &Contact) -> Response {
    let mut response = (status, Json(contact.view())).into_response();
    response.headers_mut().insert(header::ETAG, contact.etag());
    response
}

async fn contact_exists(state: &AppState, agent_id: &str, contact: &Contact) -> ApiError {
    let Some(email_lower) = contact.fields.email_lower() else {
        return ApiError::internal(anyhow::anyhow!(
            "unique violation on a contact without email"
        ));
    };
    let mut conn = match state.store.pool.acquire().await {
        Ok(conn) => conn,
        Err(err) => return err.into(),
    };
    match super::id_by_email(&mut conn, agent_id, &email_lower).await {
        Ok(Some(existing_id)) => ApiError::ContactExists { existing_id },
        // The other contact went away meanwhile; the client may simply retry.
        Ok(None) => ApiError::Conflict(
            "Another contact had this email a moment ago; retry the request.".into(),
        ),
        Err(err) => err.into(),
    }
}

async fn find(state: &AppState, agent_id: &str, id: &str) -> Result<Contact, ApiError> {
    let mut conn = state.store.pool.acquire().await?;
    super::get(&mut conn, agent_id, id)
        .await?
        .ok_or(ApiError::NotFound)
}

/// `POST /v1/contacts` (contacts:create): 201 contact with `Location` and `ETag`.
/// Honours `Idempotency-Key` (a replay answers like the first response).
/// 400 bad JSON or `Idempotency-Key`; 409 `contact_exists` with `existing_id`;
/// 413 body over 1 MiB; 422 `validation_failed` (also a reused `Idempotency-Key`).
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    AppJson(body): AppJson<Map<String, Value>>,
) -> Result<Response, ApiError> {
    let agent_id = principal.key.agent_id.as_str();
    let idempotency_key = idempotency::key_from(&headers)?;
    let request_hash = idempotency_key
        .as_ref()
        .map(|_| idempotency::body_hash(&body));
    let now = now_ms();
    if let (Some(key), Some(hash)) = (&idempotency_key, &request_hash) {
        let mut conn = state.store.pool.acquire().await?;
        if let Some(stored) = idempotency::find(&mut conn, agent_id, key, now).await? {
            return stored.replay(hash);
        }
    }
    let fields = validation::new_fields(&body).map_err(ApiError::validation)?;
    let contact = Contact {
        id: new_id("ct"),
        fields,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let location = format!("/v1/contacts/{}", contact.id);
    let (actor, origin) = actor_and_origin(&principal);

    let mut tx = state.store.begin().await?;
    if let (Some(key), Some(hash)) = (&idempotency_key, &request_hash) {
        let stored = idempotency::Stored {
            request_hash: hash.clone(),
            status: StatusCode::CREATED.as_u16(),
            body: contact.view().to_string(),
            location: Some(location.clone()),
        };
        // First in the transaction: a concurrent request with the same key waits here and
        // then replays this one's response instead of reporting a duplicate email.
        if let Err(err) = idempotency::insert(&mut tx, agent_id, key, &stored, now).await {
            drop(tx);
            if !is_unique_violation(&err) {
                return Err(err.into());
            }
            let mut conn = state.store.pool.acquire().await?;
            return match idempotency::find(&mut conn, agent_id, key, now).await? {
                Some(stored) => stored.replay(hash),
                None => Err(ApiError::Conflict(
                    "Another request with this Idempotency-Key is in progress; retry shortly."
                        .into(),
                )),
            };
        }
    }
    if let Err(err) = super::insert(&mut tx, agent_id, &contact).await {
        drop(tx);
        return Err(if is_unique_violation(&err) {
            contact_exists(&state, agent_id, &contact).await
        } else {
            err.into()
        });
    }
    audit::record(
        &mut tx,
        &actor,
        &origin,
        Event {
            action: "contact.created",
            agent_id: Some(agent_id),
            target: Some(target(&contact)),
            details: json!({}),
        },
    )
    .await?;
    tx.commit().await?;

    let mut response = respond(StatusCode::CREATED, &contact);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// `GET /v1/contacts` (contacts:read): `{data, has_more, next_cursor}` in creation order.
/// Filters `q`, `email`, `tag`, `updated_since`; `limit` 1–200 and `cursor`.
/// 400 `bad_request` for a bad limit, cursor, timestamp or an unknown parameter.
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    AppQuery(query): AppQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    list_for(&state, &principal.key.agent_id, &query).await
}

async fn list_for(
    state: &AppState,
    agent_id: &str,
    query: &ListQuery,
) -> Result<Json<Value>, ApiError> {
    let page = query.page()?;
    let filter = query.filter()?;
    let mut conn = state.store.pool.acquire().await?;
    let contacts = super::list(
        &mut conn,
        agent_id,
        &filter,
        page.after.as_deref(),
        page.limit,
    )
    .await?;
    Ok(Json(pagination::respond(
        contacts,
        page.limit,
        |c| c.id.clone(),
        Contact::view,
    )))
}

/// `GET /v1/contacts/{id}` (contacts:read): 200 contact with `ETag: "<version>"`; 404.
/// Served from the read cache when it holds the contact (see `contacts::cache`).
pub async fn get(
    State(state): State<AppState>,
    Extension(cache): Extension<ContactCache>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let agent_id = principal.key.agent_id.as_str();
    if let Some(entry) = cache.get(agent_id, &id) {
        return Ok(cached_response(&entry));
    }
    let generation = cache.generation();
    let contact = find(&state, agent_id, &id).await?;
    let entry = Entry {
        agent_id: agent_id.to_owned(),
        version: contact.version,
        body: Bytes::from(serde_json::to_vec(&contact.view()).map_err(ApiError::internal)?),
    };
    let response = cached_response(&entry);
    cache.put_if_unchanged(generation, &id, entry);
    Ok(response)
}

fn cached_response(entry: &Entry) -> Response {
    let mut response = (StatusCode::OK, entry.body.clone()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::ETAG, super::etag(entry.version));
    response
}

/// `PATCH /v1/contacts/{id}` (contacts:update): partial update, `null` clears a field.
/// 200 contact with `ETag`; 404; 409 `contact_exists`; 412 `precondition_failed` when
/// `If-Match` does not name the current version (nothing changes); 422 `validation_failed`.
/// The write is conditional on the version read, so of concurrent PATCHes with the same
/// `If-Match` exactly one succeeds.
pub async fn update(
    State(state): State<AppState>,
    Extension(cache): Extension<ContactCache>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    AppJson(body): AppJson<Map<String, Value>>,
) -> Result<Response, ApiError> {
    let agent_id = principal.key.agent_id.as_str();
    let patch = validation::parse_patch(&body).map_err(ApiError::validation)?;
    let precondition = Precondition::from_headers(&headers);
    let (actor, origin) = actor_and_origin(&principal);
    for _ in 0..WRITE_ATTEMPTS {
        let current = find(&state, agent_id, &id).await?;
        if precondition
            .as_ref()
            .is_some_and(|p| !p.allows(current.version))
        {
            return Err(ApiError::PreconditionFailed);
        }
        let mut next = current.clone();
        let changed = next.fields.apply(&patch);
        if changed.is_empty() {
            return Ok(respond(StatusCode::OK, &current));
        }
        if let Some(errors) = next.fields.identity_error() {
            return Err(ApiError::validation(errors));
        }
        next.version = current.version + 1;
        next.updated_at = now_ms().max(current.updated_at);
        let tags_changed = changed.contains(&"tags");

        let mut tx = state.store.begin().await?;
        let written =
            match super::update_if_version(&mut tx, agent_id, &next, current.version, tags_changed)
                .await
            {
                Ok(written) => written,
                Err(err) if is_unique_violation(&err) => {
                    drop(tx);
                    return Err(contact_exists(&state, agent_id, &next).await);
                }
                Err(err) => return Err(err.into()),
            };
        if !written {
            // Changed or deleted since it was read: the next round answers 412 or 404 when
            // the client sent If-Match, or applies the patch to the newer version otherwise.
            continue;
        }
        audit::record(
            &mut tx,
            &actor,
            &origin,
            Event {
                action: "contact.updated",
                agent_id: Some(agent_id),
                target: Some(target(&next)),
                details: json!({ "changed": changed, "version": next.version }),
            },
        )
        .await?;
        commit_and_forget(tx, &cache, &id).await?;
        return Ok(respond(StatusCode::OK, &next));
    }
    Err(ApiError::Conflict(
        "The contact is being changed by many requests at once; retry shortly.".into(),
    ))
}

/// `DELETE /v1/contacts/{id}` (contacts:delete): 204; 404; 412 `precondition_failed` when an
/// `If-Match` header does not name the current version.
pub async fn delete(
    State(state): State<AppState>,
    Extension(cache): Extension<ContactCache>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let agent_id = principal.key.agent_id.as_str();
    let precondition = Precondition::from_headers(&headers);
    let (actor, origin) = actor_and_origin(&principal);
    for _ in 0..WRITE_ATTEMPTS {
        let current = find(&state, agent_id, &id).await?;
        if precondition
            .as_ref()
            .is_some_and(|p| !p.allows(current.version))
        {
            return Err(ApiError::PreconditionFailed);
        }
        let mut tx = state.store.begin().await?;
        if !super::delete_if_version(&mut tx, agent_id, &id, current.version).await? {
            continue;
        }
        audit::record(
            &mut tx,
            &actor,
            &origin,
            Event {
                action: "contact.deleted",
                agent_id: Some(agent_id),
                target: Some(target(&current)),
                details: json!({ "version": current.version }),
            },
        )
        .await?;
        commit_and_forget(tx, &cache, &id).await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Err(ApiError::Conflict(
        "The contact is being changed by many requests at once; retry shortly.".into(),
    ))
}

/// `GET /api/agents/{agent_id}/contacts` (any member): the agent's contacts, with the same
/// filters and pagination as `GET /v1/contacts`. 404 unknown agent; 400 bad query.
pub async fn dashboard_list(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    AppQuery(query): AppQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    {
        let mut conn = state.store.pool.acquire().await?;
        agents::find(&mut conn, &agent_id).await?;
    }
    list_for(&state, &agent_id, &query).await
}

/// `GET /api/agents/{agent_id}/contacts/{contact_id}` (any member): 200 contact with `ETag`;
/// 404 unknown agent or contact.
pub async fn dashboard_get(
    State(state): State<AppState>,
    Path((agent_id, contact_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let contact = find(&state, &agent_id, &contact_id).await?;
    Ok(respond(StatusCode::OK, &contact))
}

/// Commits, then drops the contact from the read cache, as one step that a client hanging up
/// cannot cut short: a commit that lands must never leave the old contact cached.
async fn commit_and_forget(
    tx: crate::store::Tx,
    cache: &ContactCache,
    id: &str,
) -> Result<(), ApiError> {
    let (cache, id) = (cache.clone(), id.to_owned());
    tokio::spawn(async move {
        let committed = tx.commit().await;
        cache.invalidate(&id);
        committed
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(())
}
