//! `loop tokens`: named tokens for agents, people and integrations (needs an admin token or
//! the master key).

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use super::Ctx;
use super::api::data;
use super::error::{About, CliError};
use super::output::{self, Mode, Table, cell, col, emit, opt, s};

#[derive(Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  loop tokens create builder-1 --role agent            one claim at a time\n  \
                  loop tokens create ann --role member --expires 90d\n  \
                  loop tokens create site --role ingest --project Web --origin https://example.com\n  \
                  loop tokens                                          who has a token\n  \
                  loop tokens revoke builder-1                         stops working at once"
)]
pub struct TokensArgs {
    #[command(subcommand)]
    pub action: Option<TokensAction>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Role {
    /// Claims work and does the work of its claims; reads everything.
    Agent,
    /// What a person does on the dashboard and CLI, except administering tokens.
    Member,
    /// Everything.
    Admin,
    /// Only sends signals and widget feedback.
    Ingest,
}

#[derive(Subcommand, Debug)]
pub enum TokensAction {
    /// List every token, revoked and expired ones too (the default).
    #[command(visible_alias = "ls")]
    List,
    /// Make a token; its secret is printed once and cannot be shown again.
    Create {
        /// Its name: lowercase letters, digits, '-', '_' or '.'. Everything it does is recorded
        /// under this name.
        name: String,
        /// What it may do: agent, member, admin or ingest.
        #[arg(long, value_enum)]
        role: Role,
        /// An ingest token limited to this project (name or id).
        #[arg(long)]
        project: Option<String>,
        /// When it stops working: a number of days, like 90d (or 90).
        #[arg(long, value_name = "DAYS")]
        expires: Option<String>,
        /// The most claims it may hold at once (agent tokens: 1 unless given).
        #[arg(long)]
        max_claims: Option<u32>,
        /// The most requests it may send per minute.
        #[arg(long, value_name = "N")]
        rate: Option<u32>,
        /// A site that embeds the feedback widget with this ingest token (repeatable).
        #[arg(long = "origin", value_name = "ORIGIN")]
        origins: Vec<String>,
    },
    /// Revoke a token: it stops working at once, on every server.
    Revoke {
        /// The token's name.
        name: String,
    },
}

pub async fn run(a: TokensArgs, ctx: &Ctx) -> Result<(), CliError> {
    match a.action.unwrap_or(TokensAction::List) {
        TokensAction::List => list(ctx).await,
        TokensAction::Create { name, role, project, expires, max_claims, rate, origins } => {
            let mut body =
                json!({ "name": name, "role": format!("{role:?}").to_lowercase(), "allowedOrigins": origins });
            if let Some(p) = &project {
                body["projectId"] = json!(ctx.api.project_id(p).await?);
            }
            if let Some(e) = &expires {
                body["expiresInDays"] = json!(days(e)?);
            }
            if let Some(n) = max_claims {
                body["maxClaims"] = json!(n);
            }
            if let Some(n) = rate {
                body["ratePerMinute"] = json!(n);
            }
            let made = data(ctx.api.post("/api/tokens", body).await.about(format!("token {name}"))?);
            match ctx.out.mode {
                Mode::Json => emit(&output::json(&made)),
                Mode::Plain => emit(s(&made, "secret")),
                Mode::Human => emit(&format!(
                    "Token {} ({}) made. Its secret, shown this once:\n\n  {}\n\n{}",
                    s(&made, "name"),
                    s(&made, "role"),
                    s(&made, "secret"),
                    ctx.out.note(
                        "Use it as LOOP_API_KEY, or Authorization: Bearer <secret>. Loop keeps only its hash.",
                        0
                    )
                )),
            }
            Ok(())
        }
        TokensAction::Revoke { name } => {
            ctx.api.delete(&format!("/api/tokens/{name}")).await.about(format!("token {name}"))?;
            match ctx.out.mode {
                Mode::Json => emit(&output::json(&json!({ "revoked": name }))),
                _ => emit(&format!("Revoked token {name}: it no longer works, on any server.")),
            }
            Ok(())
        }
    }
}

/// "90d" or "90": days.
fn days(raw: &str) -> Result<u32, CliError> {
    raw.trim()
        .trim_end_matches('d')
        .parse()
        .map_err(|_| CliError::Usage(format!("--expires {raw:?}: expected a number of days, like 90d")))
}

async fn list(ctx: &Ctx) -> Result<(), CliError> {
    let tokens = data(ctx.api.get("/api/tokens").await?);
    let rows = output::arr(&tokens);
    if ctx.out.mode == Mode::Json {
        emit(&output::json(&tokens));
        return Ok(());
    }
    if rows.is_empty() && ctx.out.human() {
        emit("No named tokens yet. Make one: loop tokens create NAME --role agent|member|admin|ingest");
        return Ok(());
    }
    let mut table = Table::new(vec![col("NAME"), col("ROLE"), col("STATE"), col("LAST USED"), col("LIMITS")]);
    for t in rows {
        let state = match (opt(t, "revokedAt"), opt(t, "expiresAt")) {
            (Some(at), _) => format!("revoked {}", &at[..10.min(at.len())]),
            (None, Some(at)) => format!("expires {}", &at[..10.min(at.len())]),
            (None, None) => "live".to_owned(),
        };
        let claims = t["maxClaims"].as_u64().map_or(String::new(), |n| format!("{n} claim(s), "));
        table.row(vec![
            cell(s(t, "name"), output::BOLD),
            s(t, "role").into(),
            state.into(),
            opt(t, "lastUsedAt").unwrap_or("never").into(),
            format!("{claims}{}/min", t["ratePerMinute"]).into(),
        ]);
    }
    emit(&table.render(&ctx.out));
    Ok(())
}
