//! The features' one error type: what went wrong in the product's terms. The HTTP layer turns
//! it into the contract's status and body (`http::error`), the command line into a sentence.

use crate::{model::FieldErrors, store::StoreError};

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("The requested resource was not found.")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("{}", validation_message(.0))]
    Validation(FieldErrors),
    #[error("{0}")]
    Conflict(String),
    #[error("A contact with this email already exists.")]
    ContactExists { existing_id: String },
    #[error("The workspace is already set up; sign in instead.")]
    AlreadySetUp,
    #[error("The workspace must keep at least one owner.")]
    LastOwner,
    #[error("Copying API keys is disabled on this server; create a new key instead.")]
    RevealDisabled,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error(
        "The resource has changed since it was read (If-Match did not match); read it again and retry."
    )]
    PreconditionFailed,
    #[error("The email or password is incorrect.")]
    InvalidCredentials,
    #[error("Too many attempts; try again in {retry_after} seconds.")]
    RateLimited { retry_after: u64 },
    #[error("The service is temporarily unavailable; retry shortly.")]
    Unavailable(#[source] StoreError),
    #[error("An internal error occurred.")]
    Internal(#[source] anyhow::Error),
}

pub type Result<T, E = DomainError> = std::result::Result<T, E>;

fn validation_message(fields: &FieldErrors) -> String {
    match fields.len() {
        1 => fields
            .iter()
            .map(|(k, v)| format!("`{k}` {v}."))
            .collect::<String>(),
        _ => "Some fields are invalid; see `fields` for each one.".to_owned(),
    }
}

impl DomainError {
    /// A validation error on one field.
    pub fn field(name: &str, message: impl Into<String>) -> Self {
        Self::Validation(FieldErrors::from([(name.to_owned(), message.into())]))
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::Internal(err.into())
    }
}

/// Storage failures the feature did not expect: a missing row is a 404, an unreachable
/// database "try again", anything else a bug. Expected conflicts (a taken email) are matched
/// by the feature before this conversion.
impl From<StoreError> for DomainError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => Self::NotFound,
            err @ (StoreError::Unavailable(_) | StoreError::Timeout) => Self::Unavailable(err),
            err @ (StoreError::Conflict(_) | StoreError::Other(_)) => Self::Internal(err.into()),
        }
    }
}

impl From<anyhow::Error> for DomainError {
    fn from(err: anyhow::Error) -> Self {
        Self::Internal(err)
    }
}
