//! The error responses of the document. Each is made from the `ApiError` the server returns,
//! so its status, code and message are the server's own and cannot drift from it.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use utoipa::{
    PartialSchema, ToResponse, ToSchema,
    openapi::{
        ContentBuilder, Ref, RefOr, Response, Schema,
        example::ExampleBuilder,
        header::Header,
        schema::{ArrayBuilder, ObjectBuilder, Type},
    },
};

use crate::http::error::ApiError;

/// The request id shown in examples.
const EXAMPLE_REQUEST_ID: &str = "req_0197e4c1a2b34d5f8e6a7b8c9d0e1f2a";

/// `{"error": {code, message, request_id, …}}`: every error the API returns (SPEC §5).
pub struct ErrorBody;

impl PartialSchema for ErrorBody {
    fn schema() -> RefOr<Schema> {
        let string = || ObjectBuilder::new().schema_type(Type::String);
        let detail = ObjectBuilder::new()
            .property(
                "code",
                string().description(Some("Stable, machine-readable code.")),
            )
            .property(
                "message",
                string().description(Some("A sentence a person can act on.")),
            )
            .property(
                "request_id",
                string().description(Some("The `X-Request-Id` of the response.")),
            )
            .property(
                "required_permission",
                string().description(Some("`permission_denied`: the permission needed.")),
            )
            .property(
                "granted_permissions",
                ArrayBuilder::new()
                    .items(string())
                    .description(Some("`permission_denied`: what the key holds.")),
            )
            .property(
                "existing_id",
                string().description(Some("`contact_exists`: the contact with this email.")),
            )
            .property(
                "fields",
                ObjectBuilder::new()
                    .additional_properties(Some(string()))
                    .description(Some("`validation_failed`: the problem with each field.")),
            )
            .property(
                "retry_after",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0))
                    .description(Some("`rate_limited`: seconds to wait.")),
            )
            .required("code")
            .required("message")
            .required("request_id");
        ObjectBuilder::new()
            .property("error", detail)
            .required("error")
            .into()
    }
}

impl ToSchema for ErrorBody {}

/// Declares error responses a handler names in its `responses(...)`, each with the errors
/// (of one status) the server sends.
macro_rules! named_errors {
    ($($(#[$doc:meta])* $name:ident => [$($error:expr),+];)*) => {
        $(
            $(#[$doc])*
            pub struct $name;

            impl<'r> ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    (stringify!($name), response(&[$($error),+]).into())
                }
            }
        )*

        /// The errors behind a response component's name.
        pub fn named(name: &str) -> Vec<ApiError> {
            match name {
                $(stringify!($name) => vec![$($error),+],)*
                _ => Vec::new(),
            }
        }
    };
}

named_errors! {
    /// 400 `bad_request`: a malformed query, header or body.
    BadRequest => [ApiError::BadRequest("The query string is invalid: unknown field `colour`.".into())];
    /// 401 `invalid_credentials`.
    InvalidCredentials => [ApiError::InvalidCredentials];
    /// 403 `forbidden`: the caller's role may not act on this member.
    Forbidden => [ApiError::Forbidden("An admin cannot change or remove an owner.".into())];
    /// 403 `reauth_required`: the member's password was not entered in the last 10 minutes.
    ReauthRequired => [ApiError::ReauthRequired];
    /// 404 `not_found`.
    NotFound => [ApiError::NotFound];
    /// 409 `contact_exists`.
    ContactExists => [ApiError::ContactExists { existing_id: "ct_0197e4c1a2b34d5f8e6a7b8c9d0e1f2a".into() }];
    /// 409 `already_set_up`.
    AlreadySetUp => [ApiError::AlreadySetUp];
    /// 409 `last_owner`.
    LastOwner => [ApiError::LastOwner];
    /// 409 `reveal_disabled`.
    RevealDisabled => [ApiError::RevealDisabled];
    /// 409 `conflict`: a member with this email exists.
    MemberExists => [ApiError::Conflict("A member with this email already exists.".into())];
    /// 409 `contact_exists`, or `conflict` while a request with the same `Idempotency-Key`
    /// is still in flight.
    ContactExistsOrInFlight => [
        ApiError::ContactExists { existing_id: "ct_0197e4c1a2b34d5f8e6a7b8c9d0e1f2a".into() },
        ApiError::Conflict("A request with this Idempotency-Key is still being processed; retry shortly.".into())
    ];
    /// 409 `contact_exists`, or `conflict` when many requests change the contact at once.
    ContactExistsOrBusy => [
        ApiError::ContactExists { existing_id: "ct_0197e4c1a2b34d5f8e6a7b8c9d0e1f2a".into() },
        ApiError::Conflict("The contact is being changed by many requests at once; retry shortly.".into())
    ];
    /// 409 `conflict` when many requests change the contact at once.
    Busy => [ApiError::Conflict("The contact is being changed by many requests at once; retry shortly.".into())];
    /// 412 `precondition_failed`: `If-Match` names another version.
    PreconditionFailed => [ApiError::PreconditionFailed];
    /// 422 `validation_failed`.
    Validation => [ApiError::field("name", "must be at most 100 characters")];
    /// 429 `rate_limited`.
    RateLimited => [ApiError::RateLimited { retry_after: 60 }];
}

/// The body the server sends for `error`, with an example request id.
pub fn example_body(error: &ApiError) -> Value {
    let mut body = error.body();
    body.insert("request_id".into(), json!(EXAMPLE_REQUEST_ID));
    json!({ "error": body })
}

/// One response for errors that share a status: each code described and given as an example.
pub fn response(errors: &[ApiError]) -> Response {
    let description = errors
        .iter()
        .map(|error| format!("`{}`: {}", error.code(), error))
        .collect::<Vec<_>>()
        .join("\n\n");
    let examples: BTreeMap<String, _> = errors
        .iter()
        .map(|error| {
            let example = ExampleBuilder::new()
                .summary(error.code())
                .value(Some(example_body(error)));
            (error.code().to_owned(), example)
        })
        .collect();
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ErrorBody")))
        .examples_from_iter(examples)
        .build();
    let mut response = Response::new(description);
    response
        .content
        .insert("application/json".into(), RefOr::T(content));
    let header = |description: &str| {
        let mut header = Header::new(String::schema());
        header.description = Some(description.to_owned());
        RefOr::T(header)
    };
    let status = errors.first().map(ApiError::status);
    if status.is_some_and(|s| s.as_u16() == 401) {
        response.headers.insert(
            "WWW-Authenticate".into(),
            header("`Bearer`: how to authenticate."),
        );
    }
    if status.is_some_and(|s| matches!(s.as_u16(), 429 | 503)) {
        response.headers.insert(
            "Retry-After".into(),
            header("Seconds to wait before retrying."),
        );
    }
    response
}
