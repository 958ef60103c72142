//! The one place where errors become HTTP: `{"error":{"code","message"}}` with the right status.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use frontdesk_domain::{DomainError, ValidationError};
use frontdesk_store::{Entity, StoreError};
use serde::Serialize;

/// Every error code a client can be sent, over HTTP or in a WebSocket `error` frame, with its
/// HTTP status: the wire's whole error vocabulary, in one table.
macro_rules! error_codes {
    ($($variant:ident = $code:literal, $status:ident;)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode {
            $($variant,)*
        }

        impl ErrorCode {
            /// Every code, for the tests that hold the table to the docs.
            #[cfg(test)]
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The `snake_case` code clients match on.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            pub const fn status(self) -> StatusCode {
                match self {
                    $(ErrorCode::$variant => StatusCode::$status,)*
                }
            }
        }
    };
}

error_codes! {
    MalformedJson = "malformed_json", BAD_REQUEST;
    InvalidField = "invalid_field", BAD_REQUEST;
    InvalidPath = "invalid_path", BAD_REQUEST;
    InvalidQuery = "invalid_query", BAD_REQUEST;
    NotAWebsocket = "not_a_websocket", BAD_REQUEST;
    // Sent only in WebSocket `error` frames; the status is what they would be over HTTP.
    MalformedFrame = "malformed_frame", BAD_REQUEST;
    FrameTooLarge = "frame_too_large", PAYLOAD_TOO_LARGE;
    MissingCredentials = "missing_credentials", UNAUTHORIZED;
    InvalidCredentials = "invalid_credentials", UNAUTHORIZED;
    AdminTokenRequired = "admin_token_required", UNAUTHORIZED;
    Forbidden = "forbidden", FORBIDDEN;
    OriginNotAllowed = "origin_not_allowed", FORBIDDEN;
    RouteNotFound = "route_not_found", NOT_FOUND;
    NotFound = "not_found", NOT_FOUND;
    ConversationNotFound = "conversation_not_found", NOT_FOUND;
    CustomerNotFound = "customer_not_found", NOT_FOUND;
    PartnerNotFound = "partner_not_found", NOT_FOUND;
    RequestTimeout = "request_timeout", REQUEST_TIMEOUT;
    ConversationClosed = "conversation_closed", CONFLICT;
    AssignedElsewhere = "assigned_elsewhere", CONFLICT;
    IdempotencyConflict = "idempotency_conflict", CONFLICT;
    InvalidTransition = "invalid_transition", CONFLICT;
    AlreadyExists = "already_exists", CONFLICT;
    PayloadTooLarge = "payload_too_large", PAYLOAD_TOO_LARGE;
    InvalidValue = "invalid_value", UNPROCESSABLE_ENTITY;
    RateLimited = "rate_limited", TOO_MANY_REQUESTS;
    TooManyConnections = "too_many_connections", TOO_MANY_REQUESTS;
    InternalError = "internal_error", INTERNAL_SERVER_ERROR;
    DatabaseUnavailable = "database_unavailable", SERVICE_UNAVAILABLE;
    DatabaseBusy = "database_busy", SERVICE_UNAVAILABLE;
    StorageFull = "storage_full", SERVICE_UNAVAILABLE;
    Busy = "busy", SERVICE_UNAVAILABLE;
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
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
    /// An error with its code's status.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status: code.status(),
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::DatabaseUnavailable, message)
    }

    /// 503 `storage_full`: writes fail for lack of space until an operator frees some.
    pub fn storage_full() -> Self {
        let mut error = Self::new(
            ErrorCode::StorageFull,
            "the server's storage is full; nothing can be stored until space is freed",
        );
        error.retry_after = Some(30);
        error
    }

    pub fn too_many_requests(message: impl Into<String>, wait: std::time::Duration) -> Self {
        let mut error = Self::new(ErrorCode::RateLimited, message);
        error.retry_after = Some(wait.as_secs().max(1));
        error
    }

    fn internal() -> Self {
        Self::new(
            ErrorCode::InternalError,
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
                code: self.code.as_str(),
                message: &self.message,
                field: self.field,
            },
        })
    }
}

impl From<crate::password_gate::HashingBusy> for ApiError {
    fn from(busy: crate::password_gate::HashingBusy) -> Self {
        Self::new(ErrorCode::Busy, format!("{busy}; try again shortly"))
    }
}

impl From<ValidationError> for ApiError {
    fn from(error: ValidationError) -> Self {
        let mut api = Self::new(ErrorCode::InvalidValue, error.to_string());
        api.field = Some(error.field);
        api
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        let message = error.to_string();
        match error {
            DomainError::Invalid(invalid) => invalid.into(),
            DomainError::ConversationClosed => Self::new(ErrorCode::ConversationClosed, message),
            DomainError::AssignedElsewhere => Self::new(ErrorCode::AssignedElsewhere, message),
            DomainError::IdempotencyMismatch => Self::new(ErrorCode::IdempotencyConflict, message),
            DomainError::Transition { .. } => Self::new(ErrorCode::InvalidTransition, message),
            DomainError::Forbidden(why) => Self::forbidden(why),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => Self::new(
                match what {
                    Entity::Conversation => ErrorCode::ConversationNotFound,
                    Entity::Customer => ErrorCode::CustomerNotFound,
                    Entity::Partner => ErrorCode::PartnerNotFound,
                    Entity::Row => ErrorCode::NotFound,
                },
                format!("{what} not found"),
            ),
            StoreError::Rule(rule) => rule.into(),
            StoreError::Duplicate(what) => {
                Self::new(ErrorCode::AlreadyExists, format!("{what} already in use"))
            }
            StoreError::Unavailable(why) => {
                tracing::warn!(%why, "database unavailable");
                Self::unavailable("the database is not answering; try again shortly")
            }
            StoreError::Busy(why) | StoreError::RowLocked(why) => {
                tracing::warn!(%why, "database busy");
                Self::new(
                    ErrorCode::DatabaseBusy,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Codes that travel only in WebSocket `error` frames, documented in docs/realtime.md.
    const FRAME_ONLY: [ErrorCode; 2] = [ErrorCode::MalformedFrame, ErrorCode::FrameTooLarge];

    /// docs/api.md's error table, as (status, code) pairs.
    fn documented() -> Vec<(u16, String)> {
        let api = include_str!("../../../docs/api.md");
        let table = api
            .split("## Errors")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .unwrap_or_default();
        let mut pairs = Vec::new();
        for row in table.lines().filter(|l| l.starts_with("| ")) {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let (Some(status), Some(codes)) = (cells.get(1), cells.get(2)) else {
                continue;
            };
            let Ok(status) = status.parse::<u16>() else {
                continue;
            };
            for code in codes.split(',') {
                pairs.push((status, code.trim().trim_matches('`').to_owned()));
            }
        }
        pairs
    }

    #[test]
    fn every_code_is_documented_with_its_status() {
        let documented = documented();
        // The table parsed at all: one row per code a response can carry.
        assert!(
            documented.len() >= ErrorCode::ALL.len() - FRAME_ONLY.len(),
            "{documented:?}"
        );
        for code in ErrorCode::ALL {
            if FRAME_ONLY.contains(code) {
                continue;
            }
            let status = code.status().as_u16();
            assert!(
                documented.contains(&(status, code.as_str().to_owned())),
                "{code} ({status}) is not in docs/api.md's error table with that status"
            );
        }
        // And the table names no code the server cannot send.
        for (status, code) in &documented {
            assert!(
                ErrorCode::ALL.iter().any(|c| c.as_str() == code),
                "docs/api.md documents {status} {code}, which the server never sends"
            );
        }
    }

    #[test]
    fn frame_codes_are_documented_in_realtime_md() {
        let realtime = include_str!("../../../docs/realtime.md");
        for code in FRAME_ONLY {
            assert!(
                realtime.contains(&format!("`{code}`")),
                "{code} is not in docs/realtime.md"
            );
        }
    }

    #[test]
    fn codes_are_unique_snake_case_and_keep_their_status() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} twice");
            assert!(
                text.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{text}"
            );
            let error = ApiError::new(*code, "x");
            assert_eq!(error.status, code.status());
            assert_eq!(error.code, *code);
        }
        // A few statuses clients depend on, spelled out.
        assert_eq!(
            ErrorCode::InvalidValue.status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(ErrorCode::ConversationClosed.status(), StatusCode::CONFLICT);
        assert_eq!(
            ErrorCode::TooManyConnections.status(),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            ErrorCode::StorageFull.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
