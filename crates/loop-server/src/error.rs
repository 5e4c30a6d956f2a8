//! One error shape for every failure: `{"error": "<human message>", "code": "<stable code>",
//! "details": …}`. The same text is also under `message`, which the existing MCP client
//! reads. Internal failures are logged with their cause and answered with a generic 500.

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use loop_core::Error;
use serde_json::{Value, json};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Value,
    /// Headers the response carries besides the body (`Allow`, `Retry-After`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The storage fault behind the error, for the health tracker (never shown).
    pub fault: Option<Box<Error>>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: Value::Null, headers: Vec::new(), fault: None }
    }

    fn with_fault(mut self, e: Error) -> Self {
        self.fault = Some(Box::new(e));
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: &'static str) -> Self {
        self.headers.push((name, HeaderValue::from_static(value)));
        self
    }

    /// `Retry-After`, in whole seconds (at least one).
    pub fn retry_after(mut self, wait: std::time::Duration) -> Self {
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
        self.headers.push((axum::http::header::RETRY_AFTER, HeaderValue::from(seconds)));
        self
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// A bad query parameter.
    pub fn query(param: &str, message: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_query", format!("{param}: {message}"))
            .with_details(json!({ "field": param }))
    }

    /// A domain error about a query parameter (a filter, a period): a 400 naming it.
    pub fn from_query(e: loop_core::Error) -> Self {
        match e {
            loop_core::Error::Invalid { field, message, .. } => Self::query(&field, message),
            other => other.into(),
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound { entity, .. } => ApiError::not_found(entity),
            Error::Invalid { field, code, message } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, format!("{field}: {message}"))
                    .with_details(json!({ "field": field }))
            }
            Error::Conflict { code, message } => ApiError::new(StatusCode::CONFLICT, code, message),
            Error::Limited { code, message } => ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message),
            Error::Busy(cause) => {
                tracing::warn!(%cause, "database busy; answered 503");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", "The database is busy; retry in a moment")
            }
            // Storage faults are logged once per episode (see `health.rs`), not per request.
            Error::StorageFull(ref cause) => {
                tracing::debug!(%cause, "storage full; answered 507");
                ApiError::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "insufficient_storage",
                    "The database's disk (Loop's data directory) is full: nothing was written. Free some space and retry.",
                )
                .with_fault(e)
            }
            Error::Unavailable(ref cause) => {
                tracing::debug!(%cause, "storage unavailable; answered 503");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "The database cannot be reached or written just now: nothing was acknowledged. Retry in a moment.",
                )
                .with_fault(e)
            }
            Error::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal server error")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.message, "code": self.code, "message": self.message });
        if !self.details.is_null() {
            body["details"] = self.details;
        }
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        if let Some(e) = self.fault {
            response.extensions_mut().insert(crate::health::Fault(*e));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_database_is_a_503_to_retry_with_no_cause_in_the_body() {
        let response = ApiError::from(Error::Busy("database: deadlock detected in relation t".into())).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[axum::http::header::RETRY_AFTER], "1");
        let body = body_text(response);
        assert!(body.contains("\"code\":\"busy\"") && !body.contains("deadlock"), "{body}");
    }

    fn body_text(response: Response) -> String {
        let bytes = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }
}
