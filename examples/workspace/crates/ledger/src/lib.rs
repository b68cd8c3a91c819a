//! A tiny ledger: a named list of stock movements, parsed from JSON, validated and summarised.
//!
//! ```json
//! {"name": "shop", "entries": [{"sku": "APPLE-1", "qty": 3, "unit_cents": 45}]}
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Banner printed by the binaries; edit it to see a leaf-library change in the built image.
pub const LEDGER_BANNER: &str = "ledger v1";

/// Built-in sample ledger used when no file is given.
pub const SAMPLE: &str = r#"{
  "name": "corner-shop",
  "entries": [
    {"sku": "APPLE-1",  "qty": 12, "unit_cents": 45, "note": "morning delivery"},
    {"sku": "PEAR-2",   "qty": 6,  "unit_cents": 80},
    {"sku": "APPLE-1",  "qty": -4, "unit_cents": 45, "note": "sold"},
    {"sku": "BREAD-10", "qty": 3,  "unit_cents": 250}
  ]
}"#;

/// One stock movement: positive `qty` is stock in, negative is stock out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub sku: String,
    pub qty: i64,
    pub unit_cents: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    pub name: String,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Error)]
pub enum LedgerError {
    #[error("invalid ledger JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("ledger {0:?} has no entries")]
    Empty(String),
    #[error("entry {index} ({sku:?}): {reason}")]
    Invalid {
        index: usize,
        sku: String,
        reason: &'static str,
    },
}

/// Totals over a whole ledger; amounts in cents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub name: String,
    pub entries: usize,
    pub skus: usize,
    pub net_qty: i64,
    pub value_cents: i64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} entries, {} SKUs, net qty {}, value {}",
            self.name,
            self.entries,
            self.skus,
            self.net_qty,
            money(self.value_cents)
        )
    }
}

impl Summary {
    /// The summary as one line of JSON, tagged with [`LEDGER_BANNER`].
    pub fn to_json(&self) -> String {
        serde_json::json!({ "banner": LEDGER_BANNER, "summary": self }).to_string()
    }
}

/// Per-SKU totals, sorted by SKU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkuLine {
    pub sku: String,
    pub movements: usize,
    pub net_qty: i64,
    pub value_cents: i64,
}

/// Formats cents as `123.45` (negative amounts keep their sign).
pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}{}.{:02}", c / 100, c % 100)
}

/// Parses a ledger without validating it.
pub fn parse(json: &str) -> Result<Ledger, LedgerError> {
    Ok(serde_json::from_str(json)?)
}

/// Checks the rules every ledger must follow.
pub fn validate(ledger: &Ledger) -> Result<(), LedgerError> {
    if ledger.entries.is_empty() {
        return Err(LedgerError::Empty(ledger.name.clone()));
    }
    for (index, e) in ledger.entries.iter().enumerate() {
        let invalid = |reason| LedgerError::Invalid {
            index,
            sku: e.sku.clone(),
            reason,
        };
        if e.sku.trim().is_empty() {
            return Err(invalid("empty SKU"));
        }
        if !e.sku.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(invalid("SKU must be ASCII letters, digits and '-'"));
        }
        if e.qty == 0 {
            return Err(invalid("quantity must not be zero"));
        }
        if e.unit_cents < 0 {
            return Err(invalid("unit price must not be negative"));
        }
    }
    Ok(())
}

/// Parses and validates.
pub fn load(json: &str) -> Result<Ledger, LedgerError> {
    let ledger = parse(json)?;
    validate(&ledger)?;
    Ok(ledger)
}

pub fn summarise(ledger: &Ledger) -> Summary {
    let lines = by_sku(ledger);
    Summary {
        name: ledger.name.clone(),
        entries: ledger.entries.len(),
        skus: lines.len(),
        net_qty: lines.iter().map(|l| l.net_qty).sum(),
        value_cents: lines.iter().map(|l| l.value_cents).sum(),
    }
}

pub fn by_sku(ledger: &Ledger) -> Vec<SkuLine> {
    let mut map: BTreeMap<&str, SkuLine> = BTreeMap::new();
    for e in &ledger.entries {
        let line = map.entry(e.sku.as_str()).or_insert_with(|| SkuLine {
            sku: e.sku.clone(),
            movements: 0,
            net_qty: 0,
            value_cents: 0,
        });
        line.movements += 1;
        line.net_qty += e.qty;
        line.value_cents += e.qty * e.unit_cents;
    }
    map.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_summary() {
        let ledger = load(SAMPLE).expect("sample is valid");
        let s = summarise(&ledger);
        assert_eq!(s.entries, 4);
        assert_eq!(s.skus, 3);
        assert_eq!(s.net_qty, 17);
        assert_eq!(s.value_cents, 8 * 45 + 6 * 80 + 3 * 250);
        assert_eq!(
            s.to_string(),
            "corner-shop: 4 entries, 3 SKUs, net qty 17, value 15.90"
        );
        assert_eq!(by_sku(&ledger)[0].sku, "APPLE-1");
        assert!(s.to_json().contains(r#""net_qty":17"#));
    }

    #[test]
    fn rejects_invalid_entries() {
        let zero = r#"{"name":"x","entries":[{"sku":"A-1","qty":0,"unit_cents":1}]}"#;
        match load(zero) {
            Err(LedgerError::Invalid { index: 0, reason, .. }) => assert!(reason.contains("zero")),
            other => panic!("expected Invalid, got {other:?}"),
        }
        assert!(matches!(
            load(r#"{"name":"x","entries":[]}"#),
            Err(LedgerError::Empty(_))
        ));
        assert!(matches!(load("{not json"), Err(LedgerError::Json(_))));
        assert_eq!(money(-1234), "-12.34");
    }
}
