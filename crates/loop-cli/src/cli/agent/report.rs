//! The agents the runner knows by name, and what an agent reports about its own run: its
//! summary, model, tokens and cost, read from its output and never estimated.

use serde_json::Value;

/// The shell command for `--agent`: a preset's, or the given one as it is.
pub fn agent_command(agent: &str, model: Option<&str>) -> String {
    let model = |flag: &str| model.map(|m| format!(" {flag} '{}'", m.replace('\'', r"'\''"))).unwrap_or_default();
    match agent {
        // Print mode, the prompt on stdin, one JSON event a line (its last is the `result`).
        "claude" => {
            format!("claude -p --output-format stream-json --verbose --permission-mode acceptEdits{}", model("--model"))
        }
        // Non-interactive, edits allowed in the worktree, the prompt on stdin (`-`).
        "codex" => format!("codex exec --full-auto{} -", model("-m")),
        // Any other agent reads the model from $LOOP_MODEL.
        other => other.to_owned(),
    }
}

/// What the agent said about its run.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct AgentReport {
    pub summary: Option<String>,
    pub model: Option<String>,
    pub tokens: Option<u64>,
    pub cost_usd: Option<f64>,
}

/// Reads the report from the agent's stdout: Claude Code's final `result` event (with the
/// model from its `init` event), else a last line of JSON with `summary`, `model`, `tokens`,
/// `cost_usd`.
pub fn parse(stdout: &str) -> AgentReport {
    let events: Vec<Value> = stdout.lines().filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok()).collect();
    if let Some(result) = events.iter().rev().find(|e| e["type"] == "result") {
        let usage = &result["usage"];
        let tokens = ["input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"]
            .iter()
            .filter_map(|k| usage[*k].as_u64())
            .reduce(|a, b| a + b);
        let model =
            events.iter().find(|e| e["type"] == "system" && e["subtype"] == "init").and_then(|e| e["model"].as_str());
        return AgentReport {
            summary: result["result"].as_str().map(str::to_owned),
            model: model.map(str::to_owned),
            tokens,
            cost_usd: result["total_cost_usd"].as_f64(),
        };
    }
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    match serde_json::from_str::<Value>(last.trim()) {
        Ok(v) if v.is_object() => AgentReport {
            summary: v["summary"].as_str().map(str::to_owned),
            model: v["model"].as_str().map(str::to_owned),
            tokens: v["tokens"].as_u64(),
            cost_usd: v["cost_usd"].as_f64(),
        },
        _ => AgentReport::default(),
    }
}

/// When the agent stopped because its provider's rate limit or usage window ran out (not a
/// failure of the issue): the seconds until the reset it was told, if it was told one.
pub fn rate_limited(output: &str, now_secs: i64) -> Option<Option<u64>> {
    // Only the end of the output speaks for how the run ended.
    let tail: String = output.lines().rev().take(20).collect::<Vec<_>>().join("\n");
    let lower = tail.to_lowercase();
    let hit = [
        "usage limit reached",
        "hit your usage limit",
        "rate limit reached",
        "rate_limit_error",
        "rate limited",
        "too many requests",
    ]
    .iter()
    .any(|p| lower.contains(p));
    if !hit {
        return None;
    }
    // Claude Code: "Claude AI usage limit reached|1767225600" (the reset, in Unix seconds).
    let epoch =
        tail.split('|').nth(1).and_then(|t| t.trim().split(|c: char| !c.is_ascii_digit()).next()?.parse::<i64>().ok());
    if let Some(at) = epoch.filter(|&at| at > now_secs) {
        return Some(Some((at - now_secs) as u64));
    }
    // "try again in 42s" / "in 5 minutes" / "in 2h".
    let after = lower.split("try again in").nth(1).map(str::trim_start);
    let wait = after.and_then(|t| {
        let digits: String = t.chars().take_while(char::is_ascii_digit).collect();
        let n: u64 = digits.parse().ok()?;
        let unit = t[digits.len()..].trim_start();
        Some(match unit.chars().next() {
            Some('m') if !unit.starts_with("ms") => n * 60,
            Some('h') => n * 3600,
            _ => n,
        })
    });
    Some(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_are_recognised_with_their_reset_time() {
        let now = 1_767_200_000;
        assert_eq!(rate_limited("working\nClaude AI usage limit reached|1767203600\n", now), Some(Some(3600)));
        assert_eq!(rate_limited("Error: Rate limit reached. Please try again in 42s.", now), Some(Some(42)));
        assert_eq!(rate_limited("You've hit your usage limit. Try again in 5 minutes.", now), Some(Some(300)));
        assert_eq!(rate_limited("429 Too Many Requests", now), Some(None));
        assert_eq!(rate_limited("tests failed: 3 errors", now), None);
    }

    #[test]
    fn presets_build_their_commands_and_anything_else_runs_as_given() {
        assert!(agent_command("claude", None).starts_with("claude -p --output-format stream-json"));
        assert!(agent_command("claude", Some("haiku")).ends_with(" --model 'haiku'"));
        assert_eq!(agent_command("codex", None), "codex exec --full-auto -");
        assert_eq!(agent_command("codex", Some("o3")), "codex exec --full-auto -m 'o3' -");
        assert_eq!(agent_command("./my-agent.sh --fast", Some("m")), "./my-agent.sh --fast");
    }

    #[test]
    fn claude_codes_result_event_is_read() {
        let out = r#"{"type":"system","subtype":"init","model":"claude-sonnet-4-5","session_id":"s"}
{"type":"assistant","message":{"content":[{"type":"text","text":"working"}]}}
{"type":"result","subtype":"success","is_error":false,"result":"Raised the timeout to 30 s","total_cost_usd":0.1234,"usage":{"input_tokens":1000,"output_tokens":200,"cache_read_input_tokens":50}}"#;
        assert_eq!(
            parse(out),
            AgentReport {
                summary: Some("Raised the timeout to 30 s".into()),
                model: Some("claude-sonnet-4-5".into()),
                tokens: Some(1250),
                cost_usd: Some(0.1234),
            }
        );
    }

    #[test]
    fn any_agents_last_json_line_is_its_report_and_nothing_is_guessed() {
        let out =
            "did things\n{\"summary\": \"Added retries\", \"model\": \"m1\", \"tokens\": 900, \"cost_usd\": 0.05}\n\n";
        let r = parse(out);
        assert_eq!((r.summary.as_deref(), r.tokens, r.cost_usd), (Some("Added retries"), Some(900), Some(0.05)));
        assert_eq!(parse("just text\nno report"), AgentReport::default());
        assert_eq!(parse("{\"summary\": \"only that\"}").cost_usd, None);
    }
}
