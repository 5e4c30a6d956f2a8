//! `POST /api/signals/sentry`: `Sentry-Hook-Signature` (HMAC-SHA256 of the raw body with the
//! integration's client secret). Issue and event alerts become signals, severity from the level;
//! one open signal per Sentry issue.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use loop_core::issue::{IssueStatus, IssueType};
use loop_core::signal::{Delivery, NewSignal, Severity, fingerprint, truncate};
use serde_json::{Value, json};

use super::{actor, delivery_id, header, ignored, json_body, secret, text, verify_hmac};
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::RawBody;
use crate::routes::signals::ingested;

/// Receive a Sentry integration webhook (authenticated by `Sentry-Hook-Signature`, not Bearer).
#[utoipa::path(post, path = "/api/signals/sentry", tag = "signals", security(()),
    request_body(content = Object, description = "A Sentry webhook payload"),
    responses((status = 201), (status = 200), (status = 202, description = "Ignored resource"),
        (status = 401, description = "Bad or missing signature"), (status = 404, description = "Not configured")))]
pub async fn receive(State(s): State<AppState>, headers: HeaderMap, RawBody(body): RawBody) -> ApiResult<Response> {
    if let Some(secret) = secret(&s, "Sentry", s.config.webhooks.sentry.as_ref(), "LOOP_SENTRY_CLIENT_SECRET")? {
        verify_hmac(secret, &body, header(&headers, "sentry-hook-signature"), "Sentry-Hook-Signature")?;
    }
    let payload = json_body(&headers, &body)?;
    let resource = header(&headers, "sentry-hook-resource").unwrap_or("").to_owned();
    let data = &payload["data"];
    // Issue alerts carry `data.event`; issue webhooks carry `data.issue`.
    let (subject, issue_id) = if data["event"].is_object() {
        (&data["event"], text(&data["event"], &["issue_id"]))
    } else if data["issue"].is_object() {
        (&data["issue"], text(&data["issue"], &["id"]))
    } else {
        return Ok(ignored(format!("Sentry {resource} webhook without an issue or event")));
    };
    let action = text(&payload, &["action"]).unwrap_or_default();
    if matches!(action.as_str(), "resolved" | "ignored" | "archived" | "assigned") {
        return Ok(ignored(format!("Sentry issue {action}")));
    }
    let title = text(subject, &["title"]).unwrap_or_else(|| "Sentry error".into());
    let level = text(subject, &["level"]).unwrap_or_else(|| "error".into());
    let severity = match level.as_str() {
        "fatal" => Severity::Critical,
        "error" => Severity::High,
        "warning" => Severity::Medium,
        _ => Severity::Low,
    };
    let url = text(subject, &["web_url"]).or_else(|| text(subject, &["permalink"])).unwrap_or_default();
    let culprit = text(subject, &["culprit"]).unwrap_or_default();
    let signal = NewSignal {
        issue_type: IssueType::Signal,
        status: if s.config.auto_triage { IssueStatus::Todo } else { IssueStatus::Triage },
        source: "sentry".into(),
        source_id: issue_id.clone(),
        signal_type: if resource.is_empty() { "error".into() } else { resource.clone() },
        severity,
        title: truncate(&format!("Sentry: {title}"), 500),
        description: Some(format!("**{level}** in `{culprit}`\n\n{url}")),
        payload: json!({ "action": action, "resource": resource, "level": level, "culprit": culprit, "url": url,
                         "issueId": issue_id, "title": title, "data": Value::clone(data) }),
        project_id: None,
        fingerprint: fingerprint("sentry", "error", issue_id.as_deref(), &title),
        follow_up: None,
    };
    let delivery = Delivery { provider: "sentry".into(), id: delivery_id(&headers, "request-id", &body) };
    Ok(ingested(s.store.ingest_signal(signal, Some(delivery), None, &actor("sentry")).await?))
}
