//! The command-line client: every `loop` command except `serve`, `migrate` and `bench`. It
//! talks to a running Loop server over HTTP through `loop-client`.

mod agent;
mod api;
mod args;
mod compat;
mod config;
mod dispatch;
mod error;
mod inbox;
mod issues;
mod mcp;
mod metrics;
mod output;
mod projects;
mod roadmap;
mod sessions;
mod skills;
mod status;
mod templates;
mod tokens;
mod triage;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use self::api::Api;
use self::config::Resolved;
use self::error::CliError;
use self::output::{Mode, Out};

/// Shown at the end of `loop --help`.
pub const AFTER_HELP: &str = "\
Examples:
  loop serve                                  start a server (prints the API key on first start)
  loop config set token loop_…                save the key in ~/.loop/config.json
  loop create \"Fix login timeout\" --priority high --status todo
  loop list --status todo,in_progress         open work, as a table
  loop show 42                                one issue with its comments, sessions and history
  loop next                                   what dispatch would hand out next, with scores
  loop dispatch                               claim the next issue and print its prompt
  loop done 42 --summary \"Raised the timeout\"
  loop status --json | jq .queue.total        any command is scriptable with --json

Connection: --api-url, else LOOP_API_URL, else `url` in ~/.loop/config.json, else http://localhost:5667.
API key: --token, else LOOP_API_KEY (or LOOP_API_TOKEN), else `token` in the config file.
Issues are addressed by number (42 or #42) or by id.
Colour only on a terminal and never with NO_COLOR set (CLICOLOR_FORCE=1 forces it).
Exit codes: 0 success, 1 error, 2 usage error.
The TypeScript CLI's commands still work: issues list|view|create|start|done, comments add,
signals ingest, dispatch queue, dashboard.";

/// Output and connection flags, accepted by every command.
#[derive(Args, Debug, Clone, Default)]
pub struct GlobalArgs {
    /// Print the API's JSON instead of a table: the `data` payload, lists as {data, total}.
    #[arg(long, global = true, conflicts_with = "plain", help_heading = "Output")]
    pub json: bool,

    /// Print tab-separated rows without header or colour, for scripts.
    #[arg(long, global = true, help_heading = "Output")]
    pub plain: bool,

    /// Loop server URL [env: LOOP_API_URL; config: url; default: http://localhost:5667]
    #[arg(long, global = true, value_name = "URL", help_heading = "Connection")]
    pub api_url: Option<String>,

    /// API key [env: LOOP_API_KEY or LOOP_API_TOKEN; config: token]
    #[arg(long, global = true, value_name = "KEY", help_heading = "Connection")]
    pub token: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List issues (open ones unless --status says otherwise).
    #[command(visible_alias = "ls", after_help = issues::LIST_EXAMPLES)]
    List(issues::ListArgs),
    /// Show an issue: fields, parent, children, relations, labels, comments, sessions, history.
    #[command(visible_alias = "view")]
    Show(issues::ShowArgs),
    /// Create an issue (in triage unless --status says otherwise).
    #[command(after_help = issues::CREATE_EXAMPLES)]
    Create(issues::CreateArgs),
    /// Change an issue's fields.
    #[command(
        after_help = "Examples:\n  loop update 42 --priority urgent --add-label bug\n  loop update 42 --parent none"
    )]
    Update(issues::UpdateArgs),
    /// Mark an issue in progress.
    Start(issues::IssueArg),
    /// Mark an issue done (ends its open session with the summary).
    Done(issues::DoneArgs),
    /// Cancel an issue, optionally saying why (as a comment).
    Cancel(issues::CancelArgs),
    /// Delete an issue (it disappears from every list).
    Delete(issues::IssueArg),
    /// Make issue A block issue B: B is not dispatched until A is done or canceled.
    Block(issues::BlockArgs),
    /// Remove "A blocks B".
    Unblock(issues::BlockArgs),
    /// Comment on an issue.
    Comment(issues::CommentArgs),
    /// Record a signal (an outside observation); it becomes an issue in triage.
    #[command(after_help = triage::SIGNAL_EXAMPLES)]
    Signal(triage::SignalArgs),
    /// The triage queue; accept or decline what is in it.
    Triage(triage::TriageArgs),
    /// Projects: list, show, create, update, delete.
    Projects(projects::ProjectsArgs),
    /// Goals with their progress: list, show, create, update, delete.
    Goals(projects::GoalsArgs),
    /// Labels: list, create, update, delete.
    Labels(projects::LabelsArgs),
    /// Named tokens for agents, people and integrations: list, create, revoke (admin).
    Tokens(tokens::TokensArgs),
    /// Questions agents asked that wait for a person; answer them.
    Inbox(inbox::InboxArgs),
    /// Prompt templates with their review scores; versions, promotion, previews.
    Templates(templates::TemplatesArgs),
    /// Preview the dispatch queue: what `dispatch` would hand out, with score breakdowns. Claims nothing.
    Next(dispatch::NextArgs),
    /// Claim the next issue (or a given one) and print it with its session and prompt.
    #[command(args_conflicts_with_subcommands = true, after_help = dispatch::DISPATCH_EXAMPLES)]
    Dispatch(dispatch::DispatchArgs),
    /// Why an issue is or is not dispatchable: status, blockers, lease, score, queue position.
    Explain(issues::IssueArg),
    /// Serve MCP over stdio for an agent host (in .mcp.json: "command": "loop", "args": ["mcp"]).
    Mcp(mcp::McpArgs),
    /// Print how an agent works with Loop from a shell: claim, hold the lease, report, review.
    Prime,
    /// Renew a claim's lease (before leaseExpiresAt), so the issue stays yours.
    Heartbeat(sessions::SessionArg),
    /// Give a claimed issue back untouched: it returns to the queue.
    Release(sessions::EndArgs),
    /// Report a failed attempt: the issue returns to the queue, and the next agent sees why.
    Fail(sessions::EndArgs),
    /// Rate the prompt a claim came with (clarity, completeness, relevance; 1–5).
    Review(sessions::ReviewArgs),
    /// Sessions: what ran in one (`loop sessions show ID [--transcript]`).
    Sessions(sessions::SessionsArgs),
    /// The runner: claim ready issues, have an agent work each in its own git worktree, verify,
    /// push a branch, open a PR, report (tick: one pass; run: until stopped).
    Agent(agent::AgentArgs),
    /// Plans from the repository: `loop roadmap compile ROADMAP.md` makes (and keeps up to
    /// date) the issues and blocks a Markdown roadmap describes.
    Roadmap(roadmap::RoadmapArgs),
    /// The project's skills: `loop skills sync` uploads AGENTS.md, CLAUDE.md and
    /// .loop/skills/*.md, which every prompt for the project's issues then carries.
    Skills(skills::SkillsArgs),
    /// One screen: queue depth, work in progress and leases, goal progress, prompt health.
    Status(status::StatusArgs),
    /// Loop metrics: velocity from signal to validated outcome (and per stage), hypothesis hit
    /// rate, agent efficiency, throughput per day.
    Metrics(metrics::MetricsArgs),
    /// What the loop changed and why: done issues with commits or PRs, grouped under the
    /// hypothesis and signal that caused them.
    Changelog(metrics::ChangelogArgs),
    /// Resolve a hypothesis yourself: validated, invalidated or inconclusive, with the reason.
    Resolve(metrics::ResolveArgs),
    /// Read and write ~/.loop/config.json (url, token).
    Config(config::ConfigArgs),
    /// Print a shell completion script.
    #[command(after_help = "Examples:\n  loop completions bash > ~/.local/share/bash-completion/completions/loop\n  \
                            loop completions zsh > \"${fpath[1]}/_loop\"\n  \
                            loop completions fish > ~/.config/fish/completions/loop.fish")]
    Completions(CompletionsArgs),

    // The TypeScript CLI's command names.
    #[command(hide = true)]
    Issues(compat::IssuesArgs),
    #[command(hide = true)]
    Comments(compat::CommentsArgs),
    #[command(hide = true)]
    Signals(compat::SignalsArgs),
    #[command(hide = true)]
    Dashboard(status::StatusArgs),
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// The command line with the client's global flags hidden from the commands that ignore them
/// (`serve`, `migrate`, `bench`…; `mcp` speaks only MCP on stdout).
pub fn command(cmd: clap::Command) -> clap::Command {
    let mut cmd = cmd;
    cmd.build();
    let client_flags = ["json", "plain", "api_url", "token"];
    let output_flags = ["json", "plain"];
    let hidden = [
        ("serve", &client_flags[..]),
        ("migrate", &client_flags),
        ("export", &client_flags),
        ("import", &client_flags),
        ("bench", &client_flags),
        ("prime", &client_flags),
        ("mcp", &output_flags),
    ];
    for (name, flags) in hidden {
        cmd = cmd.mut_subcommand(name, |sc| {
            sc.mut_args(|a| {
                let hide = flags.contains(&a.get_id().as_str()) && a.is_global_set();
                if hide { a.hide(true) } else { a }
            })
        });
    }
    cmd
}

/// How the invoked (sub)command spells its arguments: `--long` flags and positional `NAMES`,
/// so error hints name only what this command takes.
pub fn spellings(definition: &clap::Command, matches: &clap::ArgMatches) -> Vec<String> {
    let (mut cmd, mut m) = (definition, matches);
    while let Some((name, sub)) = m.subcommand() {
        let Some(c) = cmd.find_subcommand(name) else { break };
        (cmd, m) = (c, sub);
    }
    cmd.get_arguments()
        .map(|a| match a.get_long() {
            Some(long) => format!("--{long}"),
            None => match a.get_value_names() {
                Some([name, ..]) => name.to_string(),
                _ => a.get_id().as_str().to_uppercase(),
            },
        })
        .collect()
}

/// What every command gets.
pub struct Ctx {
    pub api: Api,
    pub out: Out,
    pub conn: Resolved,
}

/// Runs a client command and turns its outcome into an exit code.
pub async fn run(global: GlobalArgs, command: Command, cli: clap::Command, spellings: Vec<String>) -> ExitCode {
    let mode = if global.json {
        Mode::Json
    } else if global.plain {
        Mode::Plain
    } else {
        Mode::Human
    };
    let out = Out::new(mode);
    let conn = match &command {
        Command::Completions(a) => {
            let mut cli = cli;
            // Written whole here: `generate` panics when stdout fails, as `| head` makes it.
            let mut script = Vec::new();
            clap_complete::generate(a.shell, &mut cli, "loop", &mut script);
            return match std::io::Write::write_all(&mut std::io::stdout(), &script) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    eprintln!("error: cannot write the completions: {e}");
                    ExitCode::FAILURE
                }
                _ => ExitCode::SUCCESS,
            };
        }
        Command::Config(_) => None,
        _ => match config::resolve(&global) {
            Ok(c) => Some(c),
            Err(e) => return fail(&e, None, &spellings),
        },
    };
    let result = match (command, conn.clone()) {
        (Command::Config(a), _) => config::run(a, &global, &out),
        (command, Some(conn)) => {
            let ctx = Ctx { api: Api::new(&conn), out, conn };
            dispatch_command(command, &ctx).await
        }
        (_, None) => unreachable!("every server command resolves its connection"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e, conn.as_ref(), &spellings),
    }
}

async fn dispatch_command(command: Command, ctx: &Ctx) -> Result<(), CliError> {
    match command {
        Command::List(a) => issues::list(a, ctx).await,
        Command::Show(a) => issues::show(a, ctx).await,
        Command::Create(a) => issues::create(a, ctx).await,
        Command::Update(a) => issues::update(a, ctx).await,
        Command::Start(a) => issues::start(a, ctx).await,
        Command::Done(a) => issues::done(a, ctx).await,
        Command::Cancel(a) => issues::cancel(a, ctx).await,
        Command::Delete(a) => issues::delete(a, ctx).await,
        Command::Block(a) => issues::block(a, ctx).await,
        Command::Unblock(a) => issues::unblock(a, ctx).await,
        Command::Comment(a) => issues::comment(a, ctx).await,
        Command::Signal(a) => triage::signal(a, ctx).await,
        Command::Triage(a) => triage::run(a, ctx).await,
        Command::Tokens(a) => tokens::run(a, ctx).await,
        Command::Inbox(a) => inbox::run(a, ctx).await,
        Command::Projects(a) => projects::projects(a, ctx).await,
        Command::Goals(a) => projects::goals(a, ctx).await,
        Command::Labels(a) => projects::labels(a, ctx).await,
        Command::Templates(a) => templates::run(a, ctx).await,
        Command::Next(a) => dispatch::next(a, ctx).await,
        Command::Dispatch(a) => dispatch::dispatch(a, ctx).await,
        Command::Explain(a) => dispatch::explain(a, ctx).await,
        Command::Mcp(a) => mcp::run(a, &ctx.conn).await,
        Command::Prime => {
            mcp::prime();
            Ok(())
        }
        Command::Heartbeat(a) => sessions::heartbeat(a, ctx).await,
        Command::Release(a) => sessions::end(a, "release", ctx).await,
        Command::Fail(a) => sessions::end(a, "fail", ctx).await,
        Command::Review(a) => sessions::review(a, ctx).await,
        Command::Sessions(a) => sessions::sessions(a, ctx).await,
        Command::Agent(a) => agent::run(a, ctx).await,
        Command::Roadmap(a) => roadmap::run(a, ctx).await,
        Command::Skills(a) => skills::run(a, ctx).await,
        Command::Status(a) | Command::Dashboard(a) => status::run(a, ctx).await,
        Command::Metrics(a) => metrics::metrics(a, ctx).await,
        Command::Changelog(a) => metrics::changelog(a, ctx).await,
        Command::Resolve(a) => metrics::resolve(a, ctx).await,
        Command::Issues(a) => compat::issues(a, ctx).await,
        Command::Comments(a) => compat::comments(a, ctx).await,
        Command::Signals(a) => compat::signals(a, ctx).await,
        Command::Config(_) | Command::Completions(_) => unreachable!("handled without a server"),
    }
}

fn fail(e: &CliError, conn: Option<&Resolved>, spellings: &[String]) -> ExitCode {
    let fallback = Resolved {
        url: config::DEFAULT_URL.into(),
        url_source: config::Source::Default,
        token: None,
        token_source: config::Source::Unset,
    };
    let text = e.render(conn.unwrap_or(&fallback), spellings);
    let label = if output::use_color(std::io::stderr().is_terminal()) {
        format!("{}error:{}", output::RED.bold().render(), output::RED.bold().render_reset())
    } else {
        "error:".to_owned()
    };
    eprintln!("{label} {text}");
    ExitCode::from(e.exit_code())
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use crate::Cli;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn server_commands_hide_the_client_flags() {
        let mut cmd = super::command(Cli::command());
        let serve = cmd.find_subcommand_mut("serve").unwrap();
        let help = serve.render_help().to_string();
        assert!(!help.contains("--api-url"), "{help}");
        let list = cmd.find_subcommand_mut("list").unwrap();
        assert!(list.render_help().to_string().contains("--api-url"));
    }

    /// A subcommand's own argument with a global flag's id would shadow it (and break parsing).
    #[test]
    fn no_command_shadows_a_global_flag() {
        fn walk(cmd: &clap::Command, path: &str, bad: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                let global_name = ["json", "plain", "api_url", "token"].contains(&id)
                    || ["json", "plain", "api-url", "token"].contains(&a.get_long().unwrap_or(""));
                if global_name && !a.is_global_set() && path != "loop bench" {
                    bad.push(format!("{path} --{}", a.get_long().unwrap_or(id)));
                }
            }
            for sc in cmd.get_subcommands() {
                walk(sc, &format!("{path} {}", sc.get_name()), bad);
            }
        }
        let mut cmd = Cli::command();
        cmd.build();
        let mut bad = Vec::new();
        walk(&cmd, "loop", &mut bad);
        assert!(bad.is_empty(), "{bad:?}");
    }

    /// `--help` that helps: every client command and every flag and argument has a description.
    #[test]
    fn every_command_and_flag_is_documented() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            if !cmd.is_hide_set() && cmd.get_about().is_none() && path != "loop" {
                missing.push(path.to_owned());
            }
            for a in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
                if a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path} {}", a.get_id()));
                }
            }
            for sc in cmd
                .get_subcommands()
                .filter(|c| !["serve", "migrate", "export", "import", "bench", "help"].contains(&c.get_name()))
            {
                walk(sc, &format!("{path} {}", sc.get_name()), missing);
            }
        }
        let mut cmd = Cli::command();
        cmd.build();
        let mut missing = Vec::new();
        walk(&cmd, "loop", &mut missing);
        assert!(missing.is_empty(), "undocumented: {missing:?}");
    }

    #[test]
    fn bench_keeps_its_own_json_flag() {
        let cli = Cli::try_parse_from(["loop", "bench", "--json"]).unwrap();
        let crate::Command::Bench(b) = cli.command else { panic!("not bench") };
        assert!(b.json);
    }
}
