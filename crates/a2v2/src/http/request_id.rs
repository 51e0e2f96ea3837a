//! Request ids: one per request, sent back as `X-Request-Id` and recorded on every log line.

use axum::{
    extract::Request,
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};
use tracing::Instrument;

pub static HEADER: HeaderName = HeaderName::from_static("x-request-id");

#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// Assigns the id, opens the request span and logs one line per request.
///
/// Only method, path (never the query, which may carry cursors or filters typed by users),
/// status and latency are logged: never headers, so cookies and keys stay out of logs.
pub async fn assign(mut request: Request, next: Next) -> Response {
    let id = uuid::Uuid::now_v7().simple().to_string();
    request.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    async move {
        let started = std::time::Instant::now();
        let mut response = super::error::render_errors(&id, next.run(request).await);
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert(HEADER.clone(), value);
        }
        tracing::info!(
            status = response.status().as_u16(),
            latency_us = started.elapsed().as_micros() as u64,
            "request"
        );
        response
    }
    .instrument(span)
    .await
}
