//! Request ids: one per request, sent back as `X-Request-Id` and recorded on every log line;
//! and the headers every response carries.

use std::cell::Cell;

use axum::{
    extract::Request,
    http::{HeaderMap, HeaderName, HeaderValue, header},
    middleware::Next,
    response::Response,
};
use tracing::Instrument;

use crate::model::now_ms;

pub static HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// What every response carries unless its handler set the header itself.
static SECURITY_HEADERS: [(HeaderName, HeaderValue); 6] = [
    (
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    ),
    (
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ),
    (
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    ),
    (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    (
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(super::web::CONTENT_SECURITY_POLICY),
    ),
];

/// How many headers [`assign`] adds to a response at most.
pub const HEADERS_ADDED: usize = SECURITY_HEADERS.len() + 1;

thread_local! {
    /// This thread's random part of the ids it hands out, and how many it handed out.
    static GENERATOR: Cell<(u64, u32)> = Cell::new((rand::random(), 0));
}

/// A new request id: 32 hex digits, the unix time in milliseconds (48 bits, so ids sort
/// by time), 48 random bits drawn once per thread, and a 32-bit count within the thread.
/// Unique without a lock shared between threads or a call into the OS per id.
pub fn generate() -> HeaderValue {
    let (random, count) = GENERATOR.with(|generator| {
        let (random, count) = generator.get();
        generator.set((random, count.wrapping_add(1)));
        (random, count)
    });
    let value: u128 = (u128::from(now_ms() as u64 & 0xffff_ffff_ffff) << 80)
        | (u128::from(random & 0xffff_ffff_ffff) << 32)
        | u128::from(count);
    let mut text = [0u8; 32];
    for (i, digit) in text.iter_mut().enumerate() {
        *digit = b"0123456789abcdef"[((value >> (124 - 4 * i)) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&text).unwrap_or(HeaderValue::from_static("0"))
}

/// Adds [`SECURITY_HEADERS`] that the response does not carry yet.
fn secure(headers: &mut HeaderMap) {
    headers.reserve(HEADERS_ADDED);
    for (name, value) in &SECURITY_HEADERS {
        headers.entry(name).or_insert_with(|| value.clone());
    }
}

/// Assigns the id, opens the request span, gives errors the contract's shape, adds the
/// security headers and logs one line per request. One middleware for all of it: each
/// layer is one more service cloned and one more future boxed per request.
///
/// Only method, path (never the query, which may carry cursors or filters typed by users),
/// status and latency are logged: never headers, so cookies and keys stay out of logs.
pub async fn assign(request: Request, next: Next) -> Response {
    let id = generate();
    let span = tracing::info_span!(
        "request",
        request_id = %id.to_str().unwrap_or_default(),
        method = %request.method(),
        path = %request.uri().path(),
    );
    async move {
        // The clock is read only for the access line, when it is written.
        let started = tracing::enabled!(tracing::Level::INFO).then(std::time::Instant::now);
        let response = next.run(request).await;
        let mut response = super::error::render_errors(id.to_str().unwrap_or_default(), response);
        secure(response.headers_mut());
        if let Some(started) = started {
            tracing::info!(
                status = response.status().as_u16(),
                latency_us = started.elapsed().as_micros() as u64,
                "request"
            );
        }
        response.headers_mut().insert(HEADER.clone(), id);
        response
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_hex_and_sorted_by_time() {
        let ids: Vec<String> = (0..1000)
            .map(|_| generate().to_str().unwrap().to_owned())
            .collect();
        assert!(
            ids.iter()
                .all(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        );
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(
            sorted, ids,
            "one thread's ids sort in the order they were made"
        );
        let other = std::thread::spawn(|| generate().to_str().unwrap().to_owned())
            .join()
            .unwrap();
        assert!(!ids.contains(&other));
    }

    #[test]
    fn a_handler_keeps_its_own_security_header() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=60"),
        );
        secure(&mut headers);
        assert_eq!(headers[header::CACHE_CONTROL], "max-age=60");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(headers.len(), SECURITY_HEADERS.len());
    }
}
