//! Turns actix's own extractor failures (bad JSON, oversize bodies, bad paths and queries,
//! unknown routes) into the JSON error format.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_domain::limits::BODY_MAX_BYTES;

use crate::error::ApiError;

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
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request bodies are limited to {BODY_MAX_BYTES} bytes"),
            )
        }
        JsonPayloadError::Payload(inner) if crate::body_deadline::is_deadline(inner) => {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the request body did not arrive in time",
            )
        }
        JsonPayloadError::Deserialize(inner) if inner.is_data() => {
            ApiError::bad_request("invalid_field", inner.to_string())
        }
        JsonPayloadError::Deserialize(inner) => {
            ApiError::bad_request("malformed_json", inner.to_string())
        }
        other => ApiError::bad_request("malformed_json", other.to_string()),
    }
}

fn path_error(error: &PathError) -> ApiError {
    ApiError::bad_request("invalid_path", error.to_string())
}

fn query_error(error: &QueryPayloadError) -> ApiError {
    ApiError::bad_request("invalid_query", error.to_string())
}

/// Unknown routes and methods answer in JSON too.
pub async fn not_found(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(
        "route_not_found",
        format!("no route for {} {}", request.method(), request.path()),
    ))
}
