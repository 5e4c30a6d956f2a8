//! Provider webhooks: authenticated by each provider's own signature, never by the Bearer key,
//! and processed once per delivery. Every failure is a JSON 4xx; nothing is half-written.
//!
//! A provider whose secret is not configured answers 404 saying which variable to set, unless
//! the server runs with `--insecure-webhooks` (local trials only; logged on every delivery).

pub mod github;
pub mod github_pulls;
pub mod posthog;
pub mod sentry;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use loop_core::Actor;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::{AppState, Secret};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(github::receive))
        .routes(routes!(sentry::receive))
        .routes(routes!(posthog::receive))
}

/// Who webhook changes are attributed to.
fn actor(provider: &str) -> Actor {
    Actor::agent(format!("webhook:{provider}"))
}

/// The secret to verify with, or why this provider cannot be used. `None` means the server
/// accepts unsigned deliveries (`--insecure-webhooks`).
fn secret<'a>(
    state: &'a AppState,
    provider: &str,
    configured: Option<&'a Secret>,
    variable: &str,
) -> Result<Option<&'a Secret>, ApiError> {
    match configured {
        Some(s) => Ok(Some(s)),
        None if state.config.insecure_webhooks => {
            tracing::warn!(provider, "accepting an UNSIGNED webhook delivery (--insecure-webhooks)");
            Ok(None)
        }
        None => {
            tracing::warn!(provider, variable, "webhook delivery refused: no secret is configured");
            Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "webhook_not_configured",
                format!("{provider} webhooks are not configured on this server: set {variable}"),
            ))
        }
    }
}

/// `hex` must be the HMAC-SHA256 of `body` under `secret`.
fn verify_hmac(secret: &Secret, body: &[u8], hex_signature: Option<&str>, header_name: &str) -> Result<(), ApiError> {
    let given = hex_signature
        .and_then(|h| hex::decode(h.trim()).ok())
        .ok_or_else(|| unauthorized(format!("missing or malformed {header_name} header")))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    if bool::from(mac.finalize().into_bytes().as_slice().ct_eq(&given)) {
        Ok(())
    } else {
        Err(unauthorized(format!("{header_name} does not match the body: check the webhook secret")))
    }
}

fn unauthorized(message: String) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid_signature", message)
}

/// Checks the content type and parses the (already verified) body, which every provider sends
/// as a JSON object (anything else is 400 if it is not JSON, 422 if it is not an object).
fn json_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.to_ascii_lowercase().starts_with("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the webhook as JSON (Content-Type: application/json)",
        ));
    }
    crate::extract::parse_json::<serde_json::Map<String, Value>>(body).map(Value::Object)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty())
}

/// A delivery id from the provider's header, else the body's digest (identical bodies are
/// the same delivery).
fn delivery_id(headers: &HeaderMap, name: &str, body: &[u8]) -> String {
    header(headers, name).map(str::to_owned).unwrap_or_else(|| body_digest(body))
}

fn body_digest(body: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(body)))
}

fn ignored(reason: String) -> Response {
    tracing::info!(%reason, "webhook delivery ignored");
    (StatusCode::ACCEPTED, axum::Json(json!({ "ignored": true, "reason": reason }))).into_response()
}

fn text(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    match cur {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
