//! The HTTP application: routes, layers, start-up and graceful shutdown.

use std::{future::Future, net::SocketAddr, sync::atomic::Ordering};

use anyhow::Context;
use axum::{
    Extension, Json, Router,
    extract::{DefaultBodyLimit, Request, State},
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::{from_fn, from_fn_with_state},
    response::{IntoResponse, Response},
    routing::{get, patch, post},
};
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::{catch_panic::CatchPanicLayer, set_header::SetResponseHeaderLayer};

use crate::{
    access, agents,
    audit::{self, denials::Denials},
    config::Config,
    contacts,
    crypto::{KeySecrets, MasterKey},
    error::ApiError,
    keys::{self, cache::KeyCache},
    members::{self, session, throttle::SignInThrottle},
    request_id,
    state::{AppState, Inner, Metrics},
    store::Store,
    web,
};

/// Largest JSON body accepted by management and `/v1` JSON endpoints.
pub const JSON_BODY_LIMIT: usize = 1024 * 1024;

pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/v1/key", get(keys::handlers::introspect))
        .route(
            "/v1/contacts",
            post(contacts::handlers::create).get(contacts::handlers::list),
        )
        .route(
            "/v1/contacts/{id}",
            get(contacts::handlers::get)
                .patch(contacts::handlers::update)
                .delete(contacts::handlers::delete),
        )
        .route_layer(from_fn_with_state(state.clone(), access::guard))
        .layer(Extension(contacts::cache::ContactCache::new(
            state.store.backend == crate::store::Backend::Sqlite,
        )));
    let api = Router::new()
        .route(
            "/api/setup",
            get(session::setup_status).post(session::setup),
        )
        .route(
            "/api/session",
            post(session::sign_in)
                .get(session::current)
                .delete(session::sign_out),
        )
        .route("/api/agents", get(agents::list).post(agents::create))
        .route(
            "/api/agents/{agent_id}",
            get(agents::get)
                .patch(agents::update)
                .delete(agents::delete),
        )
        .route(
            "/api/agents/{agent_id}/api-keys",
            get(keys::handlers::list).post(keys::handlers::create),
        )
        .route(
            "/api/agents/{agent_id}/api-keys/{key_id}",
            get(keys::handlers::get)
                .patch(keys::handlers::update)
                .delete(keys::handlers::delete),
        )
        .route(
            "/api/agents/{agent_id}/api-keys/{key_id}/reveal",
            post(keys::handlers::reveal),
        )
        .route(
            "/api/members",
            get(members::handlers::list).post(members::handlers::create),
        )
        .route(
            "/api/members/{member_id}",
            patch(members::handlers::update).delete(members::handlers::delete),
        )
        .route(
            "/api/invites/accept",
            post(members::handlers::accept_invite),
        )
        .route("/api/audit-logs", get(audit::handlers::list))
        .route("/api/audit-logs/export", get(audit::handlers::export))
        .route(
            "/api/agents/{agent_id}/contacts",
            get(contacts::handlers::dashboard_list),
        )
        .route(
            "/api/agents/{agent_id}/contacts/{contact_id}",
            get(contacts::handlers::dashboard_get),
        )
        .route_layer(from_fn_with_state(state.clone(), session::guard));
    let routes = Router::new()
        .merge(v1)
        .merge(api)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/assets/{*path}", get(web::asset))
        .with_state(state);
    with_layers(routes)
}

/// The cross-cutting layers: body limit, panic recovery, error shape, security headers and
/// request ids (outermost, so every log line and response carries one).
fn with_layers(routes: Router) -> Router {
    routes
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a handler panicked");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(web::CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        .layer(from_fn(request_id::assign))
}

async fn fallback(request: Request) -> Response {
    let path = request.uri().path();
    let reserved = ["/api", "/v1", "/assets"]
        .iter()
        .any(|prefix| path == *prefix || path.starts_with(&format!("{prefix}/")));
    if request.method() == Method::GET && !reserved {
        return web::index().await;
    }
    ApiError::NotFound.into_response()
}

/// `GET /healthz`: the process is alive.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: storage answers.
async fn readyz(State(state): State<AppState>) -> Response {
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
async fn metrics(State(state): State<AppState>) -> Response {
    let m: &Metrics = &state.metrics;
    let read = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
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
         a2v2_db_acquires_total {}\n",
        read(&m.verified_ok),
        read(&m.rejected_malformed),
        read(&m.rejected_unknown),
        read(&m.rejected_expired),
        read(&m.denied_ip),
        read(&m.denied_permission),
        state.keys.len(),
        read(&state.store.acquires),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// Opens storage (migrating unless told not to) and builds the shared state.
pub async fn open(config: Config, migrate: bool) -> anyhow::Result<AppState> {
    crate::config::ensure_dir(&config.data_dir)?;
    let master = MasterKey::load(&config.master_key)?;
    let store = Store::connect(&config.database_url).await?;
    if migrate {
        store.migrate().await?;
    }
    let denials = Denials::start(store.clone());
    let state = AppState::new(Inner {
        keys: KeyCache::new(KeySecrets::new(&master)),
        key_writes: tokio::sync::Mutex::new(()),
        key_version: std::sync::atomic::AtomicI64::new(0),
        denials,
        throttle: SignInThrottle::default(),
        metrics: Metrics::default(),
        store,
        config,
    });
    let loaded = keys::handlers::load_cache(&state).await?;
    tracing::info!(keys = loaded, "API key cache loaded");
    Ok(state)
}

/// Runs the server on `listener` until `shutdown` resolves, then drains and flushes.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let flusher = tokio::spawn(keys::handlers::flush_last_used(state.clone()));
    let follower = tokio::spawn(keys::sync::follow(state.clone()));
    let poller = tokio::spawn(keys::sync::poll(state.clone()));
    let retention = tokio::spawn(audit::retention::run(
        state.store.clone(),
        state.config.audit_retention_days,
    ));
    println!("a2v2 listening on http://{addr}");
    tracing::info!(%addr, "listening");
    axum::serve(
        listener,
        router(state.clone()).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("serving HTTP")?;
    flusher.abort();
    follower.abort();
    poller.abort();
    retention.abort();
    keys::handlers::flush_once(&state).await;
    state.store.pool.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panicking_handler_becomes_a_500_in_the_error_shape() {
        let app = with_layers(Router::new().route(
            "/boom",
            get(|| async {
                let empty: Vec<u8> = Vec::new();
                format!("{}", empty[1])
            }),
        ));
        let response = app
            .clone()
            .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let request_id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"]["code"], "internal");
        assert_eq!(body["error"]["request_id"], json!(request_id));
        assert!(!body.to_string().contains("index out of bounds"));
        let again = app
            .oneshot(
                Request::get("/healthz-missing")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(
            again.status(),
            StatusCode::OK,
            "the index page is still served"
        );
    }
}
