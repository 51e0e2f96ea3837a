//! The one error type of the HTTP layer and its mapping to the contract's JSON shape.
//!
//! Handlers return `ApiError`; its `IntoResponse` stores the error as a response extension and
//! `render_errors`, run by the outermost middleware, turns it into the wire body with the
//! request id. It also gives every non-JSON error produced outside our handlers (unknown
//! route, wrong method, body limit, panic) the same shape.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

use crate::{error::DomainError, model::FieldErrors};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("An API key is required: send it as `Authorization: Bearer <key>`.")]
    MissingApiKey,
    #[error("The API key is invalid, expired or revoked.")]
    InvalidApiKey,
    #[error("Sign in to continue.")]
    Unauthenticated,
    #[error("The email or password is incorrect.")]
    InvalidCredentials,
    #[error("Requests from this IP address are not allowed for this API key.")]
    IpNotAllowed,
    #[error("This API key lacks the `{required}` permission.")]
    PermissionDenied {
        required: String,
        granted: Vec<String>,
    },
    #[error("{0}")]
    Forbidden(String),
    #[error("The request is missing a valid X-CSRF-Token header.")]
    CsrfFailed,
    #[error("Enter your password again to copy API keys (POST /api/session/confirm).")]
    ReauthRequired,
    #[error("The requested resource was not found.")]
    NotFound,
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("A contact with this email already exists.")]
    ContactExists { existing_id: String },
    #[error("The workspace is already set up; sign in instead.")]
    AlreadySetUp,
    #[error("The workspace must keep at least one owner.")]
    LastOwner,
    #[error("Copying API keys is disabled on this server; create a new key instead.")]
    RevealDisabled,
    #[error("{0}")]
    Conflict(String),
    #[error(
        "The resource has changed since it was read (If-Match did not match); read it again and retry."
    )]
    PreconditionFailed,
    #[error(
        "The request body stopped arriving before it was complete; nothing was changed. Send the request again."
    )]
    RequestTimeout,
    #[error("The request body is larger than the limit of {limit} bytes.")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    Validation {
        message: String,
        fields: FieldErrors,
    },
    #[error("Too many attempts; try again in {retry_after} seconds.")]
    RateLimited { retry_after: u64 },
    #[error("The service is temporarily unavailable; retry in a few seconds.")]
    Unavailable { retry_after: u64 },
    #[error("An internal error occurred; quote the request id to the operator.")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn validation(fields: FieldErrors) -> Self {
        let message = match fields.len() {
            1 => fields
                .iter()
                .map(|(k, v)| format!("`{k}` {v}."))
                .collect::<String>(),
            _ => "Some fields are invalid; see `fields` for each one.".to_owned(),
        };
        Self::Validation { message, fields }
    }

    pub fn field(name: &str, message: impl Into<String>) -> Self {
        Self::validation(FieldErrors::from([(name.to_owned(), message.into())]))
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::Internal(err.into())
    }

    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            BadRequest(_) => StatusCode::BAD_REQUEST,
            MissingApiKey | InvalidApiKey | Unauthenticated | InvalidCredentials => {
                StatusCode::UNAUTHORIZED
            }
            IpNotAllowed | PermissionDenied { .. } | Forbidden(_) | CsrfFailed | ReauthRequired => {
                StatusCode::FORBIDDEN
            }
            NotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ContactExists { .. } | AlreadySetUp | LastOwner | RevealDisabled | Conflict(_) => {
                StatusCode::CONFLICT
            }
            PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            BadRequest(_) => "bad_request",
            MissingApiKey => "missing_api_key",
            InvalidApiKey => "invalid_api_key",
            Unauthenticated => "unauthenticated",
            InvalidCredentials => "invalid_credentials",
            IpNotAllowed => "ip_not_allowed",
            PermissionDenied { .. } => "permission_denied",
            Forbidden(_) => "forbidden",
            CsrfFailed => "csrf_failed",
            ReauthRequired => "reauth_required",
            NotFound => "not_found",
            MethodNotAllowed(_) => "method_not_allowed",
            ContactExists { .. } => "contact_exists",
            AlreadySetUp => "already_set_up",
            LastOwner => "last_owner",
            RevealDisabled => "reveal_disabled",
            Conflict(_) => "conflict",
            PreconditionFailed => "precondition_failed",
            RequestTimeout => "request_timeout",
            PayloadTooLarge { .. } => "payload_too_large",
            UnsupportedMediaType(_) => "unsupported_media_type",
            Validation { .. } => "validation_failed",
            RateLimited { .. } => "rate_limited",
            Unavailable { .. } => "unavailable",
            Internal(_) => "internal",
        }
    }

    pub(crate) fn body(&self) -> Map<String, Value> {
        let mut body = Map::new();
        body.insert("code".into(), json!(self.code()));
        body.insert("message".into(), json!(self.to_string()));
        match self {
            ApiError::PermissionDenied { required, granted } => {
                body.insert("required_permission".into(), json!(required));
                body.insert("granted_permissions".into(), json!(granted));
            }
            ApiError::ContactExists { existing_id } => {
                body.insert("existing_id".into(), json!(existing_id));
            }
            ApiError::Validation { fields, .. } => {
                body.insert("fields".into(), json!(fields));
            }
            ApiError::RateLimited { retry_after } => {
                body.insert("retry_after".into(), json!(retry_after));
            }
            _ => {}
        }
        body
    }
}

/// The rendered error waiting for its request id; see `render_errors`.
#[derive(Clone)]
struct PendingError {
    status: StatusCode,
    body: Map<String, Value>,
    retry_after: Option<u64>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(err) = &self {
            tracing::error!(error = ?err, "internal error");
        }
        let retry_after = match &self {
            ApiError::RateLimited { retry_after } | ApiError::Unavailable { retry_after } => {
                Some(*retry_after)
            }
            _ => None,
        };
        let mut response = self.status().into_response();
        if let ApiError::RequestTimeout = self {
            // The rest of the body may still come; the connection cannot carry another request.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response.extensions_mut().insert(PendingError {
            status: self.status(),
            body: self.body(),
            retry_after,
        });
        response
    }
}

pub fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed("This method is not allowed on this resource.".into())
}

/// Generic error for a status produced by a layer or by axum itself.
fn generic_for(status: StatusCode) -> ApiError {
    match status {
        StatusCode::NOT_FOUND => ApiError::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => method_not_allowed(),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge { limit: 0 },
        StatusCode::REQUEST_TIMEOUT => ApiError::RequestTimeout,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ApiError::UnsupportedMediaType("Send the body as `application/json`.".into())
        }
        StatusCode::SERVICE_UNAVAILABLE => ApiError::Unavailable { retry_after: 1 },
        s if s.is_client_error() => ApiError::BadRequest("The request could not be read.".into()),
        _ => ApiError::Internal(anyhow::anyhow!(
            "status {status} produced outside a handler"
        )),
    }
}

/// Outermost middleware: gives every error response the contract's JSON shape with `request_id`.
/// Called by the outermost middleware (`request_id::assign`) on every response, so that the
/// error shape costs nothing extra on success.
pub fn render_errors(request_id: &str, response: Response) -> Response {
    let status = response.status();
    if !status.is_client_error() && !status.is_server_error() {
        return response;
    }
    let pending = match response.extensions().get::<PendingError>() {
        Some(pending) => pending.clone(),
        None => {
            let is_json = response
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
            if is_json {
                return response;
            }
            let err = generic_for(status);
            let mut body = err.body();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                body.insert(
                    "message".into(),
                    json!("The request body is larger than the server accepts."),
                );
            }
            PendingError {
                status,
                body,
                retry_after: None,
            }
        }
    };
    let (parts, _) = response.into_parts();
    let mut body = pending.body;
    body.insert("request_id".into(), json!(request_id));
    let mut out = (pending.status, Json(json!({ "error": body }))).into_response();
    let headers = out.headers_mut();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            headers.append(name, value.clone());
        }
    }
    if pending.status == StatusCode::UNAUTHORIZED {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if let Some(secs) = pending.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    out
}

/// How long a client should wait before retrying when storage is unavailable.
const UNAVAILABLE_RETRY_AFTER: u64 = 2;

/// The one mapping from the features' errors to the contract's.
impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        match err {
            DomainError::NotFound => Self::NotFound,
            DomainError::BadRequest(message) => Self::BadRequest(message),
            DomainError::Validation(fields) => Self::validation(fields),
            DomainError::Conflict(message) => Self::Conflict(message),
            DomainError::ContactExists { existing_id } => Self::ContactExists { existing_id },
            DomainError::AlreadySetUp => Self::AlreadySetUp,
            DomainError::LastOwner => Self::LastOwner,
            DomainError::RevealDisabled => Self::RevealDisabled,
            DomainError::Forbidden(message) => Self::Forbidden(message),
            DomainError::UnsupportedMediaType(message) => Self::UnsupportedMediaType(message),
            DomainError::PreconditionFailed => Self::PreconditionFailed,
            DomainError::InvalidCredentials => Self::InvalidCredentials,
            DomainError::RateLimited { retry_after } => Self::RateLimited { retry_after },
            DomainError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "storage unavailable");
                Self::Unavailable {
                    retry_after: UNAVAILABLE_RETRY_AFTER,
                }
            }
            DomainError::Internal(err) => Self::Internal(err),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        ApiError::Internal(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes_follow_the_contract() {
        let cases = [
            (ApiError::MissingApiKey, 401, "missing_api_key"),
            (ApiError::InvalidApiKey, 401, "invalid_api_key"),
            (ApiError::IpNotAllowed, 403, "ip_not_allowed"),
            (ApiError::CsrfFailed, 403, "csrf_failed"),
            (ApiError::AlreadySetUp, 409, "already_set_up"),
            (ApiError::RevealDisabled, 409, "reveal_disabled"),
            (ApiError::PreconditionFailed, 412, "precondition_failed"),
            (ApiError::RequestTimeout, 408, "request_timeout"),
            (
                ApiError::field("name", "is required"),
                422,
                "validation_failed",
            ),
            (
                ApiError::RateLimited { retry_after: 3 },
                429,
                "rate_limited",
            ),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.status().as_u16(), status);
            assert_eq!(err.code(), code);
        }
    }

    #[test]
    fn domain_errors_map_to_the_contract() {
        use crate::store::{Constraint, StoreError};
        let cases: Vec<(DomainError, u16, &str)> = vec![
            (DomainError::NotFound, 404, "not_found"),
            (DomainError::BadRequest("x".into()), 400, "bad_request"),
            (
                DomainError::field("name", "is required"),
                422,
                "validation_failed",
            ),
            (DomainError::Conflict("x".into()), 409, "conflict"),
            (
                DomainError::ContactExists {
                    existing_id: "ct_1".into(),
                },
                409,
                "contact_exists",
            ),
            (DomainError::AlreadySetUp, 409, "already_set_up"),
            (DomainError::LastOwner, 409, "last_owner"),
            (DomainError::RevealDisabled, 409, "reveal_disabled"),
            (DomainError::Forbidden("x".into()), 403, "forbidden"),
            (
                DomainError::UnsupportedMediaType("x".into()),
                415,
                "unsupported_media_type",
            ),
            (DomainError::PreconditionFailed, 412, "precondition_failed"),
            (DomainError::InvalidCredentials, 401, "invalid_credentials"),
            (
                DomainError::RateLimited { retry_after: 5 },
                429,
                "rate_limited",
            ),
            (
                DomainError::Unavailable(StoreError::NotFound),
                503,
                "unavailable",
            ),
            (StoreError::NotFound.into(), 404, "not_found"),
            (
                StoreError::Conflict(Constraint::Unique).into(),
                500,
                "internal",
            ),
            (
                DomainError::internal(anyhow::anyhow!("boom")),
                500,
                "internal",
            ),
        ];
        for (domain, status, code) in cases {
            let label = format!("{domain:?}");
            let api = ApiError::from(domain);
            assert_eq!(api.status().as_u16(), status, "{label}");
            assert_eq!(api.code(), code, "{label}");
        }
        let fields = ApiError::from(DomainError::field("name", "is required")).body();
        assert_eq!(fields["fields"]["name"], "is required");
        assert_eq!(fields["message"], "`name` is required.");
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let err = ApiError::internal(anyhow::anyhow!("password=hunter2"));
        assert!(!Value::Object(err.body()).to_string().contains("hunter2"));
    }
}
