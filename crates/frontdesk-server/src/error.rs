//! The one place where errors become HTTP: `{"error":{"code","message"}}` with the right status.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use frontdesk_domain::{DomainError, ValidationError};
use frontdesk_store::StoreError;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The offending field, for validation errors.
    pub field: Option<&'static str>,
    /// Seconds, for `429` and `503`.
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            message,
        )
    }

    /// 503 `storage_full`: writes fail for lack of space until an operator frees some.
    pub fn storage_full() -> Self {
        let mut error = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_full",
            "the server's storage is full; nothing can be stored until space is freed",
        );
        error.retry_after = Some(30);
        error
    }

    pub fn too_many_requests(message: impl Into<String>, wait: std::time::Duration) -> Self {
        let mut error = Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
        error.retry_after = Some(wait.as_secs().max(1));
        error
    }

    fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "something went wrong on our side; it has been logged",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        match self.status {
            StatusCode::UNAUTHORIZED => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                let seconds = self.retry_after.unwrap_or(1).to_string();
                response.insert_header((header::RETRY_AFTER, seconds));
            }
            StatusCode::TOO_MANY_REQUESTS => {
                let seconds = self.retry_after.unwrap_or(60).to_string();
                response.insert_header((header::RETRY_AFTER, seconds));
            }
            // The rest of a late body is not worth waiting for: the connection goes.
            StatusCode::REQUEST_TIMEOUT => {
                response.force_close();
            }
            _ => {}
        }
        response.json(Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                field: self.field,
            },
        })
    }
}

impl From<crate::password_gate::HashingBusy> for ApiError {
    fn from(busy: crate::password_gate::HashingBusy) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!("{busy}; try again shortly"),
        )
    }
}

impl From<ValidationError> for ApiError {
    fn from(error: ValidationError) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid_value",
            message: error.to_string(),
            field: Some(error.field),
            retry_after: None,
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        let message = error.to_string();
        match error {
            DomainError::Invalid(invalid) => invalid.into(),
            DomainError::ConversationClosed => {
                Self::new(StatusCode::CONFLICT, "conversation_closed", message)
            }
            DomainError::AssignedElsewhere => {
                Self::new(StatusCode::CONFLICT, "assigned_elsewhere", message)
            }
            DomainError::IdempotencyMismatch => {
                Self::new(StatusCode::CONFLICT, "idempotency_conflict", message)
            }
            DomainError::Transition { .. } => {
                Self::new(StatusCode::CONFLICT, "invalid_transition", message)
            }
            DomainError::Forbidden(why) => Self::forbidden(why),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => Self::not_found(
                match what {
                    "conversation" => "conversation_not_found",
                    "customer" => "customer_not_found",
                    "agent" => "agent_not_found",
                    "partner" => "partner_not_found",
                    _ => "not_found",
                },
                format!("{what} not found"),
            ),
            StoreError::Rule(rule) => rule.into(),
            StoreError::Duplicate(what) => Self::new(
                StatusCode::CONFLICT,
                "already_exists",
                format!("{what} already in use"),
            ),
            StoreError::Unavailable(why) => {
                tracing::warn!(%why, "database unavailable");
                Self::unavailable("the database is not answering; try again shortly")
            }
            StoreError::Busy(why) | StoreError::RowLocked(why) => {
                tracing::warn!(%why, "database busy");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_busy",
                    "the data this request needs is locked elsewhere; try again shortly",
                )
            }
            StoreError::StorageFull(why) => {
                tracing::error!(%why, "storage full");
                Self::storage_full()
            }
            other => {
                tracing::error!(error = %other, "store failure");
                Self::internal()
            }
        }
    }
}
