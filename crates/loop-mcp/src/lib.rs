//! Loop's MCP server, for agent hosts (Claude Code, Codex, Cursor…): the reference's nine tools
//! under their names and schemas, and the ones an agent needs to hold a lease, report, relate
//! issues and rate its prompt; each active prompt template as an MCP prompt; issues as
//! resources.
//!
//! - [`tools`]: what each tool does, over the Loop API ([`api::Api`]).
//! - `server.rs`: the protocol (rmcp), over stdio ([`serve_stdio`]) and Streamable HTTP
//!   ([`http_service`], mounted by `loop serve` at `/mcp`).

pub mod api;
mod catalog;
mod server;
pub mod tools;

pub use server::{LoopMcp, http_service, serve_stdio};
pub use tools::{Context, ToolSet};

/// How an agent works with Loop: the MCP server's instructions, and what `loop prime` prints
/// for agents that prefer a shell.
pub const PRIME: &str = "\
You take work from Loop, an issue tracker that hands out one ready issue at a time, with a prompt
that says how to do it.

1. Claim: loop_get_next_task (shell: `loop dispatch`). You get the issue, its prompt, a session
   with a lease (leaseExpiresAt) and a token scoped to this issue. Nobody else gets this issue
   while your lease holds. No task means the queue is empty: stop, or try again later.
2. Hold the lease while you work: loop_heartbeat every few minutes (shell: `loop heartbeat <session>`).
   A lease that runs out sends the issue back to the queue for another agent.
3. Work as the prompt says. Note progress and findings on the issue: loop_create_comment
   (shell: `loop comment <issue> \"...\"`). Record commits and pull requests:
   loop_attach_commit, loop_attach_pr. Work you find that is out of scope becomes a new issue:
   loop_create_issue, related or blocked with loop_create_relation.
4. Report, always, exactly once:
   - done: loop_complete_task with what you did (shell: `loop done <issue> --summary \"...\"`);
   - cannot do it, or should not: loop_release_task with why (shell: `loop release <session> --reason \"...\"`);
   - tried and failed: loop_fail_task with what went wrong (shell: `loop fail <session> --reason \"...\"`).
5. Rate the prompt you were given: loop_submit_review with clarity, completeness and relevance
   (1-5) and what to change (shell: `loop review <session> --clarity 4 ...`). Reviews are how the prompts improve.

Why an issue is not being handed out: loop_explain (shell: `loop explain <issue>`).
";
