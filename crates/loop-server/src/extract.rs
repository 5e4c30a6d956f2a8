//! Request extractors that turn every malformed input into an [`ApiError`] naming the field
//! and the rule, instead of axum's plain-text rejections.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use loop_core::Page;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::error::ApiError;

/// A JSON body, parsed strictly: wrong content type → 415, oversized → 413, stalled → 408,
/// syntax error → 400, wrong shape or value → 422 with the JSON path of the offending field.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        require_json(&req)?;
        parse_json(&read_body(req, state).await?).map(JsonBody)
    }
}

/// The body must be sent as JSON (`application/json` or `…+json`): 415 otherwise.
fn require_json(req: &Request) -> Result<(), ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || m.ends_with("+json")
        })
        .unwrap_or(false);
    if is_json {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with the header Content-Type: application/json",
        ))
    }
}

/// Reads a whole request body: over the size limit → 413, nothing sent for the body timeout
/// → 408, the client gone or the body broken → 400.
async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request body rejected: {e}"),
            );
        }
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(c) = cause {
            if c.is::<tower_http::timeout::TimeoutError>() {
                return ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_timeout",
                    "the request body stopped arriving; send it whole, without pauses",
                );
            }
            cause = c.source();
        }
        ApiError::new(StatusCode::BAD_REQUEST, "body_unreadable", format!("request body could not be read: {e}"))
    })
}

/// Parses a request body: anything that is not one well-formed JSON value → 400
/// `malformed_json`; not an object, or the wrong shape → 422 naming the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Syntax first (including trailing bytes), so a shape error is never reported as a syntax
    // error or the other way round.
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("Malformed JSON in request body: {e}"),
        ));
    }
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "body: must be a JSON object",
        )
        .with_details(json!({ "field": "body", "rule": "must be a JSON object" })));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(de);
    result.map_err(|e| {
        let path = e.path().to_string();
        let mut field = if path == "." { "body".to_string() } else { path };
        let mut message = describe(&e.into_inner());
        // A nested object field reports its own path first: `@type: …` under `conditions`.
        if let Some((inner, rest)) =
            message.strip_prefix(loop_core::input::NESTED_PATH_MARK).and_then(|m| m.split_once(": "))
        {
            if inner != "." {
                field = format!("{field}.{inner}");
            }
            message = rest.to_string();
        }
        // serde names a missing field in the message, against its parent's path.
        if let Some(name) = message.strip_prefix("missing field `").and_then(|m| m.strip_suffix('`')) {
            field = if field == "body" { name.to_owned() } else { format!("{field}.{name}") };
            message = "is required".to_owned();
        }
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", format!("{field}: {message}"))
            .with_details(json!({ "field": field, "rule": message }))
    })
}

/// serde_json reports a value of the wrong JSON type for an enum as "expected value"; say
/// what is wrong instead.
fn describe(e: &serde_json::Error) -> String {
    let message = shorten_echo(&strip_position(&e.to_string()));
    if message.starts_with("number out of range") {
        message
    } else if e.is_syntax() {
        "has the wrong type: expected one of the documented string values".to_string()
    } else {
        message
    }
}

/// serde quotes the rejected value whole (`unknown variant `…`, expected …`, `invalid type:
/// string "…", expected …`); a long one is cut as `loop_core::text::echo` cuts it.
fn shorten_echo(message: &str) -> String {
    for (open, close) in [
        ("unknown variant `", "`, expected"),
        ("invalid type: string \"", "\", expected"),
        ("invalid value: string \"", "\", expected"),
    ] {
        if let Some(rest) = message.strip_prefix(open)
            && let Some(end) = rest.rfind(close)
            && let Some(start) = loop_core::text::clipped(&rest[..end])
        {
            return format!("{open}{start}…{}", &rest[end..]);
        }
    }
    message.to_owned()
}

/// serde_json appends " at line 1 column 42" to data errors; the field path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Query parameters as a map. A key given twice is refused rather than one value silently
/// winning: lists are comma-separated (`status=todo,backlog`).
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", format!("malformed query string: {e}"))
        })?;
        let mut params = HashMap::with_capacity(pairs.len());
        for (key, value) in pairs {
            if params.contains_key(&key) {
                let rule = "is given more than once; give it once (for several values, separate them with commas)";
                return Err(ApiError::query(&key, rule));
            }
            params.insert(key, value);
        }
        Ok(Params(params))
    }
}

impl Params {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A string parameter without its surrounding whitespace; blank is the same as absent.
    pub fn text(&self, key: &str) -> Option<String> {
        self.get(key).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
    }

    /// `true` or `false`; anything else is a 400 naming the parameter.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(v) => Err(ApiError::query(key, format!("must be true or false, got {}", loop_core::text::echo(v)))),
        }
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        self.get(key)
            .map(|v| {
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| ApiError::query(key, format!("must be an integer, got {}", loop_core::text::echo(v))))
            })
            .transpose()
    }

    pub fn page(&self) -> Result<Page, ApiError> {
        self.page_or(loop_core::page::DEFAULT_LIMIT)
    }

    /// `?limit=&offset=`, with `limit` defaulting to `default_limit`.
    pub fn page_or(&self, default_limit: u32) -> Result<Page, ApiError> {
        let limit = self.int("limit")?.or(Some(default_limit as i64));
        Page::new(limit, self.int("offset")?).map_err(|e| match e {
            loop_core::Error::Invalid { field, message, .. } => ApiError::query(&field, message),
            other => other.into(),
        })
    }
}

/// A JSON body that may be left out entirely (no body, no content type) or be `null`: then
/// `T::default()`.
pub struct OptionalJsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let empty = req.headers().get(header::CONTENT_LENGTH).is_some_and(|v| v == "0")
            || (req.headers().get(header::CONTENT_TYPE).is_none()
                && req.headers().get(header::TRANSFER_ENCODING).is_none()
                && req.headers().get(header::CONTENT_LENGTH).is_none());
        if empty {
            return Ok(OptionalJsonBody(T::default()));
        }
        require_json(&req)?;
        let body = read_body(req, state).await?;
        if body.trim_ascii() == b"null" {
            return Ok(OptionalJsonBody(T::default()));
        }
        parse_json(&body).map(OptionalJsonBody)
    }
}

/// A path parameter whose rejection (for example, a segment that is not UTF-8) is a JSON 400.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(t)| Path(t))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text()))
    }
}

/// The raw request body (webhook signatures cover the exact bytes), read as [`read_body`] does.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        read_body(req, state).await.map(RawBody)
    }
}
