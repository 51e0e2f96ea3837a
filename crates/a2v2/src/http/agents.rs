//! `/api/agents`: list, create, read, rename and delete agents.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};

use super::{
    auth::session::Caller,
    error::ApiError,
    extract::{AppQuery, Valid},
    openapi::bodies,
};
use crate::{
    agents::{self, AgentInput},
    model::{
        agent::Agent,
        page::{Page, PageQuery},
    },
    state::AppState,
};

/// `GET /api/agents` (any member): agents in creation order, paginated.
#[utoipa::path(get, path = "/api/agents", tag = "Agents", params(PageQuery),
    responses((status = 200, description = "One page of agents, in creation order.", body = Page<Agent>)))]
pub async fn list(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<PageQuery>,
) -> Result<Json<Page<Agent>>, ApiError> {
    let page = query.page().map_err(ApiError::BadRequest)?;
    Ok(Json(agents::list(&state.store, &page).await?))
}

/// `POST /api/agents` (admin): 201 agent; 422 `validation_failed`.
#[utoipa::path(post, path = "/api/agents", tag = "Agents", request_body = bodies::AgentInput,
    responses((status = 201, description = "The new agent.", body = Agent)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Valid(input): Valid<AgentInput>,
) -> Result<Response, ApiError> {
    let agent = agents::create(&state.store, &caller.by(), input).await?;
    Ok((StatusCode::CREATED, Json(agent)).into_response())
}

/// `GET /api/agents/{agent_id}` (any member): 200 agent; 404.
#[utoipa::path(get, path = "/api/agents/{agent_id}", tag = "Agents", params(("agent_id" = String, Path, description = "The agent's id.")),
    responses((status = 200, description = "The agent.", body = Agent)))]
pub async fn get(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
) -> Result<Json<Agent>, ApiError> {
    Ok(Json(agents::get(&state.store, &agent_id).await?))
}

/// `PATCH /api/agents/{agent_id}` (admin): rename. 200 agent; 404; 422.
#[utoipa::path(patch, path = "/api/agents/{agent_id}", tag = "Agents", params(("agent_id" = String, Path, description = "The agent's id.")),
    request_body = bodies::AgentInput,
    responses((status = 200, description = "The renamed agent.", body = Agent)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(agent_id): Path<String>,
    Valid(input): Valid<AgentInput>,
) -> Result<Json<Agent>, ApiError> {
    Ok(Json(
        agents::rename(&state.store, &caller.by(), &agent_id, input).await?,
    ))
}

/// `DELETE /api/agents/{agent_id}` (admin): deletes the agent with its keys (revoked at once),
/// contacts and documents. 204; 404.
#[utoipa::path(delete, path = "/api/agents/{agent_id}", tag = "Agents", params(("agent_id" = String, Path, description = "The agent's id.")),
    responses((status = 204, description = "Deleted, with its keys (revoked at once), contacts and documents.")))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(agent_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    agents::delete(&state.keys, &caller.by(), &agent_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
