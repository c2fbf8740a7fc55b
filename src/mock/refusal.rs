//! Gate-shaped refusals: the status, label and message of every error the emulator
//! answers, and how axum's extractor rejections become Gate's labels.

use axum::{
    Json,
    extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
};

use crate::generated::types::GateError;

/// A Gate-shaped refusal: HTTP status, label and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refusal {
    pub(super) status: StatusCode,
    pub(super) label: &'static str,
    pub(super) message: String,
}

/// The label of a refusal, left in the response's extensions for the request log.
#[derive(Debug, Clone, Copy)]
pub(super) struct RefusalLabel(pub(super) &'static str);

impl Refusal {
    pub(super) fn new(status: StatusCode, label: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            label,
            message: message.into(),
        }
    }

    pub(super) fn bad_param(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_PARAM_VALUE", message)
    }

    pub(super) fn bad_body(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST_BODY", message)
    }

    pub(super) fn missing_param(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MISSING_REQUIRED_PARAM",
            format!("Missing required parameter: {name}"),
        )
    }

    pub(super) fn missing_header(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MISSING_REQUIRED_HEADER",
            format!("Missing required header: {name}"),
        )
    }

    pub(super) fn unauthorized(label: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, label, message)
    }

    pub(super) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
    }

    pub(super) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    pub(super) fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            message,
        )
    }

    pub(super) fn too_many_requests() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_REQUESTS",
            "Request Rate limit Exceeded",
        )
    }

    pub(super) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "SERVER_ERROR", message)
    }

    /// The request body could not be read whole: too large for the limit, or broken.
    pub(super) fn from_body(rejection: &BytesRejection, limit: usize) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::too_large(limit)
        } else {
            Self::bad_body("request body could not be read")
        }
    }

    pub(super) fn too_large(limit: usize) -> Self {
        Self::bad_body(format!("request body is larger than {limit} bytes"))
    }

    /// A body that is not JSON is an unreadable body; JSON of the wrong shape is a bad
    /// parameter.
    pub(super) fn from_json(rejection: &JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(error) => {
                Self::bad_param(format!("request body: {}", error.body_text()))
            }
            other => Self::bad_body(format!(
                "request body is not valid JSON: {}",
                other.body_text()
            )),
        }
    }

    /// A path parameter axum could not decode (not UTF-8 once percent-decoded).
    pub(super) fn from_path(rejection: &PathRejection, name: &str) -> Self {
        Self::bad_param(format!("{name}: {}", rejection.body_text()))
    }

    /// A query string axum could not decode.
    pub(super) fn from_query(rejection: &QueryRejection) -> Self {
        Self::bad_param(rejection.body_text())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let label = self.label;
        let body = GateError {
            label: label.to_owned(),
            message: Some(self.message),
            detail: None,
        };
        let mut response = (self.status, Json(body)).into_response();
        response.extensions_mut().insert(RefusalLabel(label));
        response
    }
}
