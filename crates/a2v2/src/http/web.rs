//! The dashboard: static assets embedded in the binary, served with strict security headers.

use axum::{
    extract::Path,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "web/"]
struct Assets;

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
    object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

fn serve(path: &str, cache: &'static str) -> Response {
    match Assets::get(path) {
        Some(file) => {
            let mut response = file.data.into_owned().into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(path)),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
            response
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `GET /assets/{*path}`: one embedded file.
pub async fn asset(Path(path): Path<String>) -> Response {
    if path == "index.html" {
        return StatusCode::NOT_FOUND.into_response();
    }
    serve(&path, "no-cache")
}

/// Every other GET outside `/api` and `/v1`: the single-page app, which routes in the browser.
pub async fn index() -> Response {
    serve("index.html", "no-store")
}
