//! The HTTP layer: routes and their guards, extractors, error rendering, request ids and the
//! embedded dashboard. Handlers parse the request, call a feature's service and map the
//! result to the contract's JSON; they hold no rules and no SQL.

pub mod agents;
pub mod audit;
pub mod auth;
pub mod client_ip;
pub mod connections;
pub mod contacts;
pub mod documents;
pub mod error;
pub mod extract;
pub mod keys;
pub mod members;
pub mod metrics;
pub mod multipart;
pub mod openapi;
pub mod ops;
pub mod request_id;
pub mod routes;
pub mod sessions;
pub mod web;

use std::sync::Arc;

use axum::{
    Extension, Router,
    extract::{DefaultBodyLimit, Request},
    http::{Method, StatusCode},
    middleware::from_fn,
    response::{IntoResponse, Response},
    routing::get,
};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

use crate::state::AppState;
use error::ApiError;
use extract::JSON_BODY_LIMIT;
use metrics::Registry;

/// The whole application: every route with its guard, the dashboard, and the cross-cutting
/// layers. `/metrics` is served here unless `serve_metrics` is false (when it has a listener
/// of its own, see [`metrics_router`]).
pub fn router(state: AppState, registry: Arc<Registry>, serve_metrics: bool) -> Router {
    let mut routes = routes::router(&state, &registry)
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/openapi.json", get(openapi::serve))
        .route("/assets/{*path}", get(web::asset));
    if serve_metrics {
        routes = routes.route("/metrics", get(ops::metrics));
    }
    let routes = routes.layer(
        ServiceBuilder::new()
            .layer(Extension(openapi::Rendered::render()))
            .layer(Extension(registry)),
    );
    with_layers(routes.with_state(state))
}

/// Only `/metrics`, for a listener of its own (for example on a loopback address).
pub fn metrics_router(state: AppState, registry: Arc<Registry>) -> Router {
    let routes = Router::new()
        .route("/metrics", get(ops::metrics))
        .layer(Extension(registry))
        .with_state(state);
    with_layers(routes)
}

/// The cross-cutting layers: body limit, panic recovery, and outermost the request ids
/// with the error shape and security headers (`request_id::assign`, so every log line and
/// response carries an id). One stack added at once: each `Router::layer` call boxes every
/// route once more, and a boxed service is cloned, allocation by allocation, for every
/// request that passes through it.
fn with_layers(routes: Router) -> Router {
    routes.fallback(fallback).layer(
        ServiceBuilder::new()
            .layer(from_fn(request_id::assign))
            .layer(CatchPanicLayer::custom(|_| {
                tracing::error!("a handler panicked");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }))
            .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT)),
    )
}

async fn fallback(request: Request) -> Response {
    let path = request.uri().path();
    let reserved = ["/api", "/v1", "/assets", "/metrics"]
        .iter()
        .any(|prefix| path == *prefix || path.starts_with(&format!("{prefix}/")));
    if request.method() == Method::GET && !reserved {
        return web::index().await;
    }
    ApiError::NotFound.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use serde_json::json;
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
