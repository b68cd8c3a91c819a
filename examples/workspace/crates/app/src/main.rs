//! `app`: prints a fixed greeting and a summary of a ledger (the built-in sample by default).
//!
//! With no arguments the first two lines are always:
//!   app: hello from chefd example
//!   app: ledger v1: corner-shop: 4 entries, 3 SKUs, net qty 17, value 15.90

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// Edit this string to see a code-only change in the built image.
const GREETING: &str = "hello from chefd example";

#[derive(Debug, Parser)]
#[command(name = "app", version, about = "chefd example: greeting plus a ledger summary")]
struct Args {
    /// Ledger JSON file to summarise ("-" for stdin); the built-in sample when omitted.
    file: Option<PathBuf>,
    /// Print the summary as JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!("app: {GREETING}");

    let text = match args.file.clone() {
        None => ledger::SAMPLE.to_string(),
        Some(path) => tokio::task::spawn_blocking(move || read_input(&path))
            .await
            .context("reader task failed")??,
    };
    // Validate in a worker thread: a stand-in for real async work.
    let summary = tokio::spawn(async move { ledger::load(&text).map(|l| ledger::summarise(&l)) })
        .await
        .context("summary task failed")?
        .context("cannot load ledger")?;

    if args.json {
        println!("{}", summary.to_json());
    } else {
        println!("app: {}: {summary}", ledger::LEDGER_BANNER);
    }
    Ok(())
}

fn read_input(path: &PathBuf) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).context("reading stdin")?;
        Ok(s)
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    }
}
