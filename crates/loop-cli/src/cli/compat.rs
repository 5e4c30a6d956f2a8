//! The TypeScript CLI's command names (`loop issues list`, `loop comments add`, `loop signals
//! ingest`…), mapped onto this CLI's commands so existing scripts keep working.

use clap::{Args, Subcommand};

use super::Ctx;
use super::error::CliError;
use super::issues::{self, CancelArgs, CommentArgs, CreateArgs, DoneArgs, IssueArg, ListArgs, ShowArgs, UpdateArgs};
use super::triage::{self, SignalArgs};

#[derive(Args, Debug)]
pub struct IssuesArgs {
    #[command(subcommand)]
    pub action: IssuesAction,
}

#[derive(Subcommand, Debug)]
pub enum IssuesAction {
    /// Same as `loop list`.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Same as `loop show`.
    #[command(visible_alias = "show")]
    View(ShowArgs),
    /// Same as `loop create`.
    Create(CreateArgs),
    /// Same as `loop update`.
    Update(UpdateArgs),
    /// Same as `loop start`.
    Start(IssueArg),
    /// Same as `loop done` (`--outcome` is `--summary`).
    Done(DoneArgs),
    /// Same as `loop cancel`.
    Cancel(CancelArgs),
    /// Same as `loop delete`.
    Delete(IssueArg),
}

#[derive(Args, Debug)]
pub struct CommentsArgs {
    #[command(subcommand)]
    pub action: CommentsAction,
}

#[derive(Subcommand, Debug)]
pub enum CommentsAction {
    /// Same as `loop comment`.
    Add(CommentArgs),
}

#[derive(Args, Debug)]
pub struct SignalsArgs {
    #[command(subcommand)]
    pub action: SignalsAction,
}

#[derive(Subcommand, Debug)]
pub enum SignalsAction {
    /// Same as `loop signal`.
    Ingest(SignalArgs),
}

pub async fn issues(a: IssuesArgs, ctx: &Ctx) -> Result<(), CliError> {
    match a.action {
        IssuesAction::List(a) => issues::list(a, ctx).await,
        IssuesAction::View(a) => issues::show(a, ctx).await,
        IssuesAction::Create(a) => issues::create(a, ctx).await,
        IssuesAction::Update(a) => issues::update(a, ctx).await,
        IssuesAction::Start(a) => issues::start(a, ctx).await,
        IssuesAction::Done(a) => issues::done(a, ctx).await,
        IssuesAction::Cancel(a) => issues::cancel(a, ctx).await,
        IssuesAction::Delete(a) => issues::delete(a, ctx).await,
    }
}

pub async fn comments(a: CommentsArgs, ctx: &Ctx) -> Result<(), CliError> {
    match a.action {
        CommentsAction::Add(a) => issues::comment(a, ctx).await,
    }
}

pub async fn signals(a: SignalsArgs, ctx: &Ctx) -> Result<(), CliError> {
    match a.action {
        SignalsAction::Ingest(a) => triage::signal(a, ctx).await,
    }
}
