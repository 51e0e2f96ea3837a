//! Extractors whose rejections speak the contract's error shape.

use axum::{
    extract::{FromRequest, FromRequestParts, Request, rejection::JsonRejection},
    http::request::Parts,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::ApiError;
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

/// JSON body; malformed JSON, wrong types and a wrong content type become contract errors.
pub struct AppJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
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
            if err.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
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
