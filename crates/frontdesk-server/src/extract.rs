//! Turns actix's own extractor failures (bad JSON, oversize bodies, bad paths and queries,
//! unknown routes) into the JSON error format.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_domain::limits::BODY_MAX_BYTES;

use crate::error::{ApiError, ErrorCode};

pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(BODY_MAX_BYTES)
        // curl users forget the header; the body is parsed as JSON either way.
        .content_type_required(false)
        .error_handler(|error, _req| json_error(&error).into())
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|error, _req| path_error(&error).into())
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error, _req| query_error(&error).into())
}

fn json_error(error: &JsonPayloadError) -> ApiError {
    match error {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("request bodies are limited to {BODY_MAX_BYTES} bytes"),
            )
        }
        JsonPayloadError::Payload(inner) if crate::body_deadline::is_deadline(inner) => {
            ApiError::new(
                ErrorCode::RequestTimeout,
                "the request body did not arrive in time",
            )
        }
        JsonPayloadError::Deserialize(inner) if inner.is_data() => {
            ApiError::new(ErrorCode::InvalidField, inner.to_string())
        }
        JsonPayloadError::Deserialize(inner) => {
            ApiError::new(ErrorCode::MalformedJson, inner.to_string())
        }
        other => ApiError::new(ErrorCode::MalformedJson, other.to_string()),
    }
}

fn path_error(error: &PathError) -> ApiError {
    ApiError::new(ErrorCode::InvalidPath, error.to_string())
}

fn query_error(error: &QueryPayloadError) -> ApiError {
    ApiError::new(ErrorCode::InvalidQuery, error.to_string())
}

/// Unknown routes and methods answer in JSON too.
pub async fn not_found(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        ErrorCode::RouteNotFound,
        format!("no route for {} {}", request.method(), request.path()),
    ))
}
