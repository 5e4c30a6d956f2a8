//! `POST /api/signals/posthog`: a shared secret in `X-PostHog-Secret`, compared in constant
//! time. Actions, alerts and metric changes become signals (one open signal per metric); a
//! payload naming a metric that a goal tracks (`goal.metric`) with a numeric value updates the
//! goal's `currentValue`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use loop_core::issue::{IssueStatus, IssueType};
use loop_core::signal::{Delivery, MetricReading, NewSignal, Severity, fingerprint, truncate};
use serde_json::Value;

use super::{actor, delivery_id, header, ignored, json_body, secret, text, unauthorized};
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::RawBody;
use crate::routes::signals::ingested;

/// Receive a PostHog webhook (authenticated by `X-PostHog-Secret`, not Bearer).
#[utoipa::path(post, path = "/api/signals/posthog", tag = "signals", security(()),
    request_body(content = Object, description = "A PostHog action, alert or metric-change payload"),
    responses((status = 201), (status = 200), (status = 202, description = "Ignored: names no metric or event"),
        (status = 401, description = "Bad or missing secret"), (status = 404, description = "Not configured")))]
pub async fn receive(State(s): State<AppState>, headers: HeaderMap, RawBody(body): RawBody) -> ApiResult<Response> {
    if let Some(secret) = secret(&s, "PostHog", s.config.webhooks.posthog.as_ref(), "LOOP_POSTHOG_WEBHOOK_SECRET")? {
        let given = header(&headers, "x-posthog-secret")
            .ok_or_else(|| unauthorized("missing X-PostHog-Secret header".into()))?;
        if !secret.matches(given) {
            return Err(unauthorized("X-PostHog-Secret does not match: check the webhook secret".into()));
        }
    }
    let payload = json_body(&headers, &body)?;
    let metric = text(&payload, &["metric"])
        .or_else(|| text(&payload, &["alert", "metric"]))
        .or_else(|| text(&payload, &["alert", "name"]))
        .or_else(|| text(&payload, &["event", "event"]))
        .or_else(|| text(&payload, &["event", "name"]))
        .or_else(|| text(&payload, &["name"]));
    let Some(metric) = metric else {
        return Ok(ignored("PostHog payload names no metric, alert or event".into()));
    };
    let number = |keys: &[&[&str]]| keys.iter().find_map(|k| lookup(&payload, k).and_then(Value::as_f64));
    let current = number(&[&["current"], &["value"], &["alert", "value"], &["alert", "current"]]);
    let previous = number(&[&["previous"], &["alert", "previous"]]);
    let change = number(&[&["change"]]).or_else(|| match (current, previous) {
        (Some(c), Some(p)) if p != 0.0 => Some((c - p) / p),
        _ => None,
    });
    // |change| as a percentage: ≥50 critical, ≥25 high, ≥10 medium, else low.
    let percent = change.map(|c| if c.abs() <= 1.0 { c * 100.0 } else { c });
    let severity = match percent.map(f64::abs) {
        Some(p) if p >= 50.0 => Severity::Critical,
        Some(p) if p >= 25.0 => Severity::High,
        Some(p) if p >= 10.0 => Severity::Medium,
        Some(_) => Severity::Low,
        None => Severity::Medium,
    };
    let period =
        text(&payload, &["period"]).or_else(|| text(&payload, &["timeframe"])).unwrap_or_else(|| "recent".into());
    let title = match percent {
        Some(p) => format!("PostHog: {metric} {p:+.1}% ({period})"),
        None => format!("PostHog: {metric}"),
    };
    let signal = NewSignal {
        issue_type: IssueType::Signal,
        status: if s.config.auto_triage { IssueStatus::Todo } else { IssueStatus::Triage },
        source: "posthog".into(),
        source_id: None,
        signal_type: if payload.get("alert").is_some() { "alert".into() } else { "metric_change".into() },
        severity,
        title: truncate(&title, 500),
        description: None,
        payload: payload.clone(),
        project_id: None,
        fingerprint: fingerprint("posthog", "metric", Some(&metric), &title),
        follow_up: None,
    };
    let reading = current.map(|value| MetricReading { metric: metric.clone(), value });
    let delivery = Delivery { provider: "posthog".into(), id: delivery_id(&headers, "x-posthog-delivery", &body) };
    Ok(ingested(s.store.ingest_signal(signal, Some(delivery), reading, &actor("posthog")).await?))
}

fn lookup<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, p| cur.get(p))
}
