//! `loop export` and `loop import`: the whole database as JSON lines. Moves a SQLite database
//! to PostgreSQL (or back), and makes backups.
//!
//! The first line is a header; every other line is one row: `{"table": "issues", "row": {…}}`,
//! tables in an order that respects their foreign keys.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Map, Value, json};

use crate::serve::{StorageArgs, data_dir, open_store};

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Write the export to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// The export to load (`-` for standard input). The target database must be empty.
    #[arg(value_name = "FILE")]
    pub input: PathBuf,
}

pub async fn export(args: ExportArgs) -> Result<()> {
    if args.storage.database_url.is_none() {
        let dir = args.storage.data_dir.clone().map(Ok).unwrap_or_else(|| data_dir(&args.storage))?;
        if !dir.join("loop.db").exists() {
            bail!(
                "no database to export: {} does not exist (pass --data-dir or --database-url)",
                dir.join("loop.db").display()
            );
        }
    }
    let store = open_store(&args.storage, &data_dir(&args.storage)?, true).await?;
    let mut out: Box<dyn Write + Send> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    writeln!(out, "{}", loop_store_rows::EXPORT_HEADER)?;
    let mut write = |table: &str, row: Map<String, Value>| {
        writeln!(out, "{}", json!({ "table": table, "row": row }))
            .map_err(|e| loop_core::Error::Internal(format!("cannot write the export: {e}")))
    };
    let rows = store.export(&mut write).await?;
    out.flush()?;
    store.close().await;
    eprintln!("exported {rows} rows");
    Ok(())
}

pub async fn import(args: ImportArgs) -> Result<()> {
    let reader: Box<dyn BufRead> = if args.input.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(&args.input).with_context(|| format!("cannot open {}", args.input.display()))?;
        Box::new(std::io::BufReader::new(file))
    };
    let mut rows = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.context("cannot read the export")?;
        if n == 0 {
            if line.trim() != loop_store_rows::EXPORT_HEADER {
                bail!("this is not a Loop export: its first line should be {}", loop_store_rows::EXPORT_HEADER);
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let mut entry: Map<String, Value> =
            serde_json::from_str(&line).with_context(|| format!("line {}: not a JSON object", n + 1))?;
        let (Some(Value::String(table)), Some(Value::Object(row))) = (entry.remove("table"), entry.remove("row"))
        else {
            bail!("line {}: expected {{\"table\": …, \"row\": {{…}}}}", n + 1);
        };
        rows.push((table, row));
    }
    let store = open_store(&args.storage, &data_dir(&args.storage)?, true).await?;
    let loaded = store.import(rows).await;
    store.close().await;
    eprintln!("imported {} rows", loaded?);
    Ok(())
}
