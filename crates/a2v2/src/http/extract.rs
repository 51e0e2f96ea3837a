//! Extractors whose rejections speak the contract's error shape.

use axum::{
    body::Bytes,
    extract::{
        FromRequest, FromRequestParts, OptionalFromRequest, Request, rejection::JsonRejection,
    },
    http::{header, request::Parts},
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{connections::BodyStalled, error::ApiError};
use crate::validate::{self, FromBody};

/// Largest JSON body accepted by management and `/v1` JSON endpoints.
pub const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// A JSON object body validated into `T`: every problem, unknown fields included, in one 422.
pub struct Valid<T>(pub T);

impl<S: Send + Sync, T: FromBody> FromRequest<S> for Valid<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let AppJson(body) = AppJson::<Map<String, Value>>::from_request(req, state).await?;
        validate::parse(&body)
            .map(Self)
            .map_err(ApiError::validation)
    }
}

/// An optional body: no body at all (no `Content-Type` and nothing sent) is `None`; anything
/// else must be a valid JSON object body, as for [`Valid`].
impl<S: Send + Sync, T: FromBody> OptionalFromRequest<S> for Valid<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        if req.headers().contains_key(header::CONTENT_TYPE) {
            return <Self as FromRequest<S>>::from_request(req, state)
                .await
                .map(Some);
        }
        let bytes = match Bytes::from_request(req, state).await {
            Ok(bytes) => bytes,
            Err(err) => return Err(json_rejection(JsonRejection::BytesRejection(err))),
        };
        if bytes.is_empty() {
            Ok(None)
        } else {
            Err(ApiError::UnsupportedMediaType(
                "Send the body as JSON with `Content-Type: application/json`.".into(),
            ))
        }
    }
}

/// JSON body; malformed JSON, wrong types and a wrong content type become contract errors.
pub struct AppJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match <axum::Json<T> as FromRequest<S>>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType(
            "Send the body as JSON with `Content-Type: application/json`.".into(),
        ),
        JsonRejection::JsonDataError(err) => ApiError::BadRequest(format!(
            "The JSON body does not have the expected shape: {}.",
            err.body_text()
                .trim_start_matches("Failed to deserialize the JSON body into the target type: ")
        )),
        JsonRejection::JsonSyntaxError(_) => {
            ApiError::BadRequest("The body is not valid JSON.".into())
        }
        JsonRejection::BytesRejection(err) => {
            if stalled(&err) {
                ApiError::RequestTimeout
            } else if err.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge {
                    limit: JSON_BODY_LIMIT,
                }
            } else {
                ApiError::BadRequest("The request body could not be read.".into())
            }
        }
        other => ApiError::BadRequest(other.body_text()),
    }
}

/// Whether reading a body failed because the client stopped sending it. Extractors that read
/// a body map this to 408 before any handler logic runs, so a stalled upload changes nothing.
pub fn stalled(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(err) = cause {
        if err.is::<BodyStalled>() {
            return true;
        }
        cause = err.source();
    }
    false
}

/// Query string; unknown or ill-typed parameters are 400 `bad_request`.
pub struct AppQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for AppQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded_from_str(query).map(Self)
    }
}

fn serde_urlencoded_from_str<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    // No parameter has a use for NUL, and PostgreSQL refuses it in text.
    if query.contains("%00") {
        return Err(ApiError::BadRequest(
            "The query string contains a NUL character.".into(),
        ));
    }
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{query}")
            .parse()
            .map_err(|_| ApiError::BadRequest("The query string is malformed.".into()))?,
    )
    .map(|q| q.0)
    .map_err(|err| {
        ApiError::BadRequest(format!(
            "The query string is invalid: {}.",
            err.body_text()
                .trim_start_matches("Failed to deserialize query string: ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use std::{
        pin::Pin,
        task::{Context, Poll},
    };

    use axum::{
        body::{Body, Bytes},
        http::{Request, StatusCode, header},
    };
    use hyper::body::Frame;

    use super::*;

    type BoxError = Box<dyn std::error::Error + Send + Sync>;

    /// A body that yields the start of a JSON object, then fails with what `error` makes.
    struct FailsAfterFirstChunk {
        sent: bool,
        error: fn() -> BoxError,
    }

    impl hyper::body::Body for FailsAfterFirstChunk {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            if std::mem::replace(&mut self.sent, true) {
                Poll::Ready(Some(Err((self.error)())))
            } else {
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"{\"name\":")))))
            }
        }
    }

    async fn json_status(error: fn() -> BoxError) -> (StatusCode, &'static str) {
        let request = Request::post("/")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::new(FailsAfterFirstChunk { sent: false, error }))
            .unwrap();
        match AppJson::<Value>::from_request(request, &()).await {
            Ok(_) => panic!("a failing body must not parse"),
            Err(err) => (err.status(), err.code()),
        }
    }

    #[tokio::test]
    async fn a_stalled_body_is_a_request_timeout_and_other_failures_a_bad_request() {
        assert_eq!(
            json_status(|| Box::new(BodyStalled)).await,
            (StatusCode::REQUEST_TIMEOUT, "request_timeout")
        );
        assert_eq!(
            json_status(|| "connection reset".into()).await,
            (StatusCode::BAD_REQUEST, "bad_request")
        );
    }
}
