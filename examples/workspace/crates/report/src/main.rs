//! `report`: per-SKU table of a ledger read from a file, stdin ("-"), or the built-in sample.
//!
//!   report [FILE] [SKU-PREFIX]

use std::io::Read;

use anyhow::{bail, Context};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("usage: report [FILE|-] [SKU-PREFIX]   (built-in sample when FILE is omitted)");
        return Ok(());
    }
    if args.len() > 2 {
        bail!("too many arguments; usage: report [FILE|-] [SKU-PREFIX]");
    }
    let text = match args.first().map(String::as_str) {
        None => ledger::SAMPLE.to_string(),
        Some("-") => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).context("reading stdin")?;
            s
        }
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?,
    };
    let prefix = args.get(1).map(String::as_str).unwrap_or("");

    let ledger = ledger::load(&text).context("cannot load ledger")?;
    println!("report: {} ({})", ledger::LEDGER_BANNER, ledger.name);
    println!("{:<12} {:>9} {:>8} {:>10}", "SKU", "movements", "net qty", "value");
    let mut shown = 0;
    for line in ledger::by_sku(&ledger).iter().filter(|l| l.sku.starts_with(prefix)) {
        println!(
            "{:<12} {:>9} {:>8} {:>10}",
            line.sku,
            line.movements,
            line.net_qty,
            ledger::money(line.value_cents)
        );
        shown += 1;
    }
    println!("report: {shown} SKU(s); {}", ledger::summarise(&ledger));
    Ok(())
}
