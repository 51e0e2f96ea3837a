//! Operations endpoints: liveness, readiness and metrics.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::state::AppState;

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: storage answers.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(json!({ "status": "ready" })).into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable" })),
            )
                .into_response()
        }
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let m = &state.metrics;
    let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let body = format!(
        "# HELP a2v2_api_key_verifications_total API key verifications on /v1 by outcome.\n\
         # TYPE a2v2_api_key_verifications_total counter\n\
         a2v2_api_key_verifications_total{{outcome=\"ok\"}} {}\n\
         a2v2_api_key_verifications_total{{outcome=\"malformed\"}} {}\n\
         a2v2_api_key_verifications_total{{outcome=\"unknown\"}} {}\n\
         a2v2_api_key_verifications_total{{outcome=\"expired\"}} {}\n\
         a2v2_api_key_verifications_total{{outcome=\"ip_not_allowed\"}} {}\n\
         a2v2_api_key_verifications_total{{outcome=\"permission_denied\"}} {}\n\
         # HELP a2v2_api_keys_cached API keys held in the in-memory cache.\n\
         # TYPE a2v2_api_keys_cached gauge\n\
         a2v2_api_keys_cached {}\n\
         # HELP a2v2_db_acquires_total Database connections handed out by the pool.\n\
         # TYPE a2v2_db_acquires_total counter\n\
         a2v2_db_acquires_total {}\n\
         # HELP a2v2_connections_open Client connections open now.\n\
         # TYPE a2v2_connections_open gauge\n\
         a2v2_connections_open {}\n\
         # HELP a2v2_connections_closed_total Client connections closed, by reason.\n\
         # TYPE a2v2_connections_closed_total counter\n\
         a2v2_connections_closed_total{{reason=\"normal\"}} {}\n\
         a2v2_connections_closed_total{{reason=\"header_timeout\"}} {}\n\
         a2v2_connections_closed_total{{reason=\"body_timeout\"}} {}\n\
         a2v2_connections_closed_total{{reason=\"idle_timeout\"}} {}\n\
         a2v2_connections_closed_total{{reason=\"limit\"}} {}\n",
        read(&m.verified_ok),
        read(&m.rejected_malformed),
        read(&m.rejected_unknown),
        read(&m.rejected_expired),
        read(&m.denied_ip),
        read(&m.denied_permission),
        state.keys.cache().len(),
        state.store.acquires(),
        read(&m.connections.open),
        read(&m.connections.closed_normally),
        read(&m.connections.closed_header_timeout),
        read(&m.connections.closed_body_timeout),
        read(&m.connections.closed_idle_timeout),
        read(&m.connections.refused_at_limit),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
