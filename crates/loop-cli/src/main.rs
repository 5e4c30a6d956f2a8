//! `loop`: the Loop server (`loop serve`) and, over HTTP, its command-line client.

mod api_key;
mod bench;
mod cli;
mod file_limit;
mod serve;
mod transfer;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "loop",
    version,
    about = "Loop: issues, dispatch and prompts for autonomous agents.",
    after_help = cli::AFTER_HELP
)]
struct Cli {
    #[command(flatten)]
    global: cli::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the HTTP API (default http://127.0.0.1:5667, embedded SQLite in the data directory).
    Serve(serve::ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(serve::StorageArgs),
    /// Write the whole database as JSON lines (to move it to another database, or as a backup).
    Export(transfer::ExportArgs),
    /// Load an export into a new, empty database (e.g. SQLite into PostgreSQL).
    Import(transfer::ImportArgs),
    /// Measure dispatch throughput and latency against a real `loop serve` (see README).
    Bench(bench::BenchArgs),
    #[command(flatten)]
    Client(Box<cli::Command>),
}

fn main() -> ExitCode {
    let matches = cli::command(Cli::command()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(args) => runtime.block_on(serve::serve(args)),
        Command::Migrate(args) => runtime.block_on(serve::migrate(args)),
        Command::Export(args) => runtime.block_on(transfer::export(args)),
        Command::Import(args) => runtime.block_on(transfer::import(args)),
        Command::Bench(args) => runtime.block_on(bench::run(args)),
        // A client command reports its own errors and picks its exit code.
        Command::Client(command) => {
            let definition = cli::command(Cli::command());
            let spellings = cli::spellings(&definition, &matches);
            return runtime.block_on(cli::run(cli.global, *command, definition, spellings));
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
