//! Operations endpoints: liveness, readiness and metrics.

use std::{
    fmt::Write,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::{
    Extension, Json,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::metrics::Registry;
use crate::{model::now_ms, state::AppState};

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: storage takes writes and this node's key cache is confirmed current; 503
/// `{"status": "unavailable", "reason": …}` otherwise.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let reason = if !state.keys.is_current(now_ms()) {
        Some("keys_not_current")
    } else {
        match tokio::time::timeout(READY_BUDGET, state.store.check_writable()).await {
            Ok(Ok(())) => None,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "readiness check failed");
                Some("storage")
            }
            Err(_) => {
                tracing::warn!("readiness check timed out");
                Some("storage")
            }
        }
    };
    match reason {
        None => Json(json!({ "status": "ready" })).into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            Json(json!({ "status": "unavailable", "reason": reason })),
        )
            .into_response(),
    }
}

/// Longest a readiness check waits for storage.
const READY_BUDGET: std::time::Duration = std::time::Duration::from_secs(3);

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(
    State(state): State<AppState>,
    Extension(registry): Extension<Arc<Registry>>,
) -> Response {
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
         a2v2_api_key_verifications_total{{outcome=\"disabled\"}} {}\n\
         a2v2_api_key_verifications_total{{outcome=\"rate_limited\"}} {}\n\
         # HELP a2v2_guessing_refusals_total /v1 requests refused because their client sent too many invalid keys.\n\
         # TYPE a2v2_guessing_refusals_total counter\n\
         a2v2_guessing_refusals_total {}\n\
         # HELP a2v2_key_lease_refusals_total /v1 requests refused while the key cache was not confirmed current.\n\
         # TYPE a2v2_key_lease_refusals_total counter\n\
         a2v2_key_lease_refusals_total {}\n\
         # HELP a2v2_argon2_runs_total Password hash computations.\n\
         # TYPE a2v2_argon2_runs_total counter\n\
         a2v2_argon2_runs_total {}\n\
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
        read(&m.rejected_disabled),
        read(&m.rate_limited),
        read(&m.guessing_refused),
        read(&m.lease_expired),
        crate::members::argon2_runs(),
        state.keys.cache().len(),
        state.store.acquires(),
        read(&m.connections.open),
        read(&m.connections.closed_normally),
        read(&m.connections.closed_header_timeout),
        read(&m.connections.closed_body_timeout),
        read(&m.connections.closed_idle_timeout),
        read(&m.connections.refused_at_limit),
    );
    let mut body = body;
    registry.render(&mut body);
    state.store.render_metrics(&mut body);
    crate::audit::render_metrics(&mut body);
    state.documents.render_metrics(&mut body);
    let (entries, bytes) = state.contacts.cache_size();
    let _ = write!(
        body,
        "# HELP a2v2_contact_cache_entries Contacts held in the read cache.\n\
         # TYPE a2v2_contact_cache_entries gauge\n\
         a2v2_contact_cache_entries {entries}\n\
         # HELP a2v2_contact_cache_bytes Bytes of contacts held in the read cache.\n\
         # TYPE a2v2_contact_cache_bytes gauge\n\
         a2v2_contact_cache_bytes {bytes}\n"
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
