//! `loop export` and `loop import`: the whole database as JSON lines. Moves a SQLite database
//! to PostgreSQL (or back), and makes backups.
//!
//! The first line is a header; every other line is one row: `{"table": "issues", "row": {…}}`,
//! tables in an order that respects their foreign keys.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, anyhow, bail};
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
    writeln!(out, "{}", loop_store::export::EXPORT_HEADER)?;
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
    let reader: Box<dyn BufRead + Send> = if args.input.as_os_str() == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        let file = std::fs::File::open(&args.input).with_context(|| format!("cannot open {}", args.input.display()))?;
        Box::new(std::io::BufReader::new(file))
    };
    let mut lines = reader.lines().enumerate();
    let header = lines.next().map(|(_, l)| l).transpose().context("cannot read the export")?;
    if header.as_deref().map(str::trim) != Some(loop_store::export::EXPORT_HEADER) {
        bail!("this is not a Loop export: its first line should be {}", loop_store::export::EXPORT_HEADER);
    }
    // Rows are parsed as the import reads them, so the file never sits in memory whole.
    let read = Arc::new(AtomicUsize::new(1));
    let counter = read.clone();
    let mut rows = lines.filter_map(move |(n, line)| {
        counter.store(n + 1, Ordering::Relaxed);
        match line {
            Ok(line) if line.trim().is_empty() => None,
            Ok(line) => Some(parse_row(n + 1, &line)),
            Err(e) => {
                Some(Err(loop_core::Error::invalid("input", "unreadable", format!("cannot read the export: {e}"))))
            }
        }
    });
    let store = open_store(&args.storage, &data_dir(&args.storage)?, true).await?;
    let loaded = store.import(&mut rows).await;
    store.close().await;
    // Where the import stopped: a row is checked as it is read, and written with those after it.
    let line = read.load(Ordering::Relaxed);
    let loaded = loaded.map_err(|e| match &e {
        loop_core::Error::Invalid { field, .. } if field.starts_with("line ") => anyhow!("{e}"),
        loop_core::Error::Invalid { .. } => anyhow!("line {line}: {e}"),
        _ => anyhow!("{e} (in the rows up to line {line})"),
    })?;
    eprintln!("imported {loaded} rows");
    Ok(())
}

/// One line of an export: `{"table": …, "row": {…}}`.
fn parse_row(line_number: usize, line: &str) -> loop_core::Result<(String, Map<String, Value>)> {
    let malformed =
        |what: &str| loop_core::Error::invalid(format!("line {line_number}"), "malformed_export", what.to_owned());
    let mut entry: Map<String, Value> = serde_json::from_str(line).map_err(|_| malformed("not a JSON object"))?;
    match (entry.remove("table"), entry.remove("row")) {
        (Some(Value::String(table)), Some(Value::Object(row))) => Ok((table, row)),
        _ => Err(malformed(r#"expected {"table": …, "row": {…}}"#)),
    }
}
