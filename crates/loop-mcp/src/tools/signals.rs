//! Signals in, and the state of the system out.

use serde_json::{Value, json};

use super::{ApiError, Args, Context, Output, Run, Tool, ToolSet, object, opt_text, text};

pub(super) fn tools() -> Vec<(Tool, Run)> {
    vec![
        (
            Tool {
                name: "loop_ingest_signal",
                description: "Ingest a signal (error, metric change, user feedback) into Loop. Creates a signal and a \
                    linked triage issue.",
                input_schema: object(
                    json!({
                        "source": { "type": "string", "description": "Signal source (e.g., \"agent\", \"posthog\", \"sentry\")" },
                        "type": { "type": "string", "description": "Signal type (e.g., \"error\", \"metric_change\", \"user_feedback\")" },
                        "severity": { "type": "string", "enum": ["critical", "high", "medium", "low"],
                                      "description": "Signal severity (default: medium)" },
                        "payload": { "type": "object", "additionalProperties": {}, "description": "Signal data as key-value pairs" },
                        "projectId": { "type": "string" },
                    }),
                    &["source", "type", "payload"],
                ),
                read_only: false,
                destructive: false,
                idempotent: false,
                set: ToolSet::Standard,
            },
            |ctx, args| Box::pin(ingest(ctx, args)),
        ),
        (
            Tool {
                name: "loop_get_dashboard",
                description: "Get system health metrics: issue counts, goal progress, and dispatch queue status",
                input_schema: object(json!({}), &[]),
                read_only: true,
                destructive: false,
                idempotent: true,
                set: ToolSet::Standard,
            },
            |ctx, _| Box::pin(async move { Ok(Output::data(ctx.data("GET", "/api/dashboard/stats", None).await?)) }),
        ),
        (
            Tool {
                name: "loop_list_signals",
                description: "Recent signals, newest first, with how often each occurred and the issue it opened.",
                input_schema: object(
                    json!({
                        "limit": { "type": "integer", "minimum": 1, "maximum": 100, "default": 20 },
                        "offset": { "type": "integer", "minimum": 0, "default": 0 },
                    }),
                    &[],
                ),
                read_only: true,
                destructive: false,
                idempotent: true,
                set: ToolSet::All,
            },
            |ctx, args| {
                Box::pin(async move {
                    let limit = args.get("limit").and_then(Value::as_u64).unwrap_or(20);
                    let offset = args.get("offset").and_then(Value::as_u64).unwrap_or(0);
                    let answer = ctx.call("GET", &format!("/api/signals?limit={limit}&offset={offset}"), None).await?;
                    Ok(Output::data(json!({ "signals": answer.body["data"], "total": answer.body["total"] })))
                })
            },
        ),
    ]
}

async fn ingest(ctx: &Context, args: Args) -> Result<Output, ApiError> {
    let payload = match args.get("payload") {
        Some(Value::Object(p)) => Value::Object(p.clone()),
        _ => return Err(ApiError::Arguments("payload must be an object".into())),
    };
    let mut body = json!({
        "source": text(&args, "source")?,
        "type": text(&args, "type")?,
        "severity": opt_text(&args, "severity")?.unwrap_or("medium"),
        "payload": payload,
    });
    if let Some(p) = ctx.project_for(opt_text(&args, "projectId")?) {
        body["projectId"] = json!(p);
    }
    let ingested = ctx.data("POST", "/api/signals", Some(body)).await?;
    Ok(Output::data(json!({ "signal": ingested["signal"], "issue": ingested["issue"] })))
}
