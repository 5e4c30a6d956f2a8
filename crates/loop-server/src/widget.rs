//! The feedback widget: `GET /widget.js` (public, cacheable, no dependencies) and
//! `POST /api/widget/feedback`, which takes an `ingest` token in its body, only from the
//! token's allowed origins, at a limited rate per address, and turns the feedback into a
//! signal. The page posts as `text/plain`, a simple request, so no preflight is needed; the
//! answer names the origin for CORS only when the token allows it.

use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use loop_core::Actor;
use loop_core::feedback::Feedback;
use loop_core::token::TokenRole;

use crate::AppState;
use crate::caller::signal_project;
use crate::connections::PeerAddr;
use crate::error::ApiError;
use crate::extract::parse_json;

pub const SCRIPT: &str = include_str!("../assets/widget.js");
/// Feedback an address may send per minute.
const PER_ADDRESS_PER_MINUTE: u32 = 10;
/// The largest feedback body taken.
const MAX_BODY: usize = 16 * 1024;

pub fn router() -> Router<AppState> {
    Router::new().route("/widget.js", get(script)).route("/api/widget/feedback", post(feedback))
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        SCRIPT,
    )
}

async fn feedback(
    State(s): State<AppState>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()).unwrap_or_default().to_owned();
    match accept(&s, peer, &origin, &body).await {
        Ok(()) => {
            allow(&origin, (StatusCode::CREATED, axum::Json(serde_json::json!({ "data": { "received": true } }))))
        }
        Err((e, allowed)) if allowed => allow(&origin, e),
        Err((e, _)) => e.into_response(),
    }
}

/// Takes the feedback, or says why not (and whether the origin may read that answer).
async fn accept(
    s: &AppState,
    peer: Option<Extension<PeerAddr>>,
    origin: &str,
    body: &[u8],
) -> Result<(), (ApiError, bool)> {
    let address = PeerAddr::name(peer);
    if let Err(wait) =
        s.per_address.take(&format!("widget {address}"), PER_ADDRESS_PER_MINUTE, std::time::Instant::now())
    {
        let e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too much feedback from this address; try again soon",
        );
        return Err((e.retry_after(wait), false));
    }
    if body.len() > MAX_BODY {
        return Err((ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "Feedback is at most 16 KB"), false));
    }
    let input: Feedback = parse_json(body).map_err(|e| (e, false))?;
    let refused = |message: &str| (ApiError::new(StatusCode::FORBIDDEN, "forbidden", message), false);
    let token = match crate::auth::named(s, &input.token).await {
        Ok(t) if t.role == TokenRole::Ingest => t,
        _ => return Err(refused("This widget's token is not a live ingest token")),
    };
    if !token.allowed_origins.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
        return Err(refused("This site may not send feedback with this token: add its origin to the token"));
    }
    if let Err(wait) = s.rates.take(&token.id, token.rate_per_minute, std::time::Instant::now()) {
        let e =
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "Too much feedback just now; try again soon");
        return Err((e.retry_after(wait), true));
    }
    input.check().map_err(|e| (ApiError::from(e), true))?;
    let project = signal_project(token.project_id.as_deref(), input.project_id.clone()).map_err(|e| (e, true))?;
    let actor = Actor::agent(token.name.clone());
    s.store
        .ingest_signal(input.into_signal(project), None, None, &actor)
        .await
        .map_err(|e| (ApiError::from(e), true))?;
    Ok(())
}

/// The answer, readable by `origin`'s page.
fn allow(origin: &str, answer: impl IntoResponse) -> Response {
    let mut response = answer.into_response();
    if let Ok(value) = HeaderValue::from_str(origin) {
        response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        response.headers_mut().insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}
