//! `loop mcp`: the MCP server over stdio, for agent hosts (in `.mcp.json`: `"command": "loop",
//! "args": ["mcp"]`), talking to a Loop server over HTTP; and `loop prime`, the same working
//! instructions for agents that prefer a shell.

use clap::Args;
use loop_mcp::api::HttpApi;
use loop_mcp::{Context, ToolSet};

use super::config::Resolved;
use super::error::CliError;

#[derive(Args, Debug)]
pub struct McpArgs {
    /// Which tools to offer: core (claim, hold the lease, report, review), standard (core, the
    /// reference's nine, relations, commits, pull requests, explain) or all (with the queue and
    /// signals). Fewer tools cost the agent less context.
    #[arg(long, env = "LOOP_MCP_TOOLS", default_value = "standard", value_parser = clap::value_parser!(ToolSet))]
    pub tools: ToolSet,
    /// The project (id) to claim from and create issues in, unless a call names another or the
    /// current claim is in one. Not guessed from the directory the host started in.
    #[arg(long, env = "LOOP_PROJECT", value_name = "PROJECT_ID")]
    pub project: Option<String>,
    /// The agent name claims are made as (sent as X-Loop-Agent).
    #[arg(long, env = "LOOP_AGENT", default_value = "mcp")]
    pub agent: String,
}

/// Serves MCP on stdin/stdout until the host hangs up. Only the protocol goes to stdout.
pub async fn run(a: McpArgs, conn: &Resolved) -> Result<(), CliError> {
    let Some(key) = &conn.token else {
        return Err(CliError::failed(
            "loop mcp needs an API key: set LOOP_API_KEY (or LOOP_API_TOKEN) in the MCP server's environment",
        ));
    };
    let api = HttpApi::new(&conn.url, key, &a.agent).map_err(CliError::usage)?;
    let ctx = Context::new(Box::new(api), a.project);
    loop_mcp::serve_stdio(ctx, a.tools).await.map_err(|e| CliError::failed(format!("MCP over stdio: {e}")))
}

/// Prints how to work with Loop from a shell.
pub fn prime() {
    print!("{}", loop_mcp::PRIME);
}
