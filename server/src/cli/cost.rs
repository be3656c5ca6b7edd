//! `acas cost`: what AI providers cost, by day, provider, model and category.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::{EXIT_FAILED, EXIT_OK, ListFormat, output};
use crate::escalate::cost::usd;
use crate::workspace::now_ms;

pub(super) fn run(path: &Path, since: Option<Duration>, format: ListFormat) -> i32 {
    let root = match super::resolve(path) {
        Ok((root, true)) => root,
        Ok((_, false)) => {
            output::note(&format!("acas cost: {} is not a directory", path.display()));
            return EXIT_FAILED;
        }
        Err(error) => {
            output::note(&format!("acas cost: {error}"));
            return EXIT_FAILED;
        }
    };
    let since_ms = now_ms() - since.unwrap_or(Duration::from_secs(30 * 86_400)).as_millis() as i64;
    let recorded = match super::recorded("cost", &root) {
        Ok(recorded) => recorded,
        Err(code) => return code,
    };
    let rows = if recorded {
        let report =
            super::read_state("cost", &root, |s| s.cost_report(since_ms), |s| s.cost_report(since_ms));
        match report {
            Ok(rows) => rows,
            Err(error) => {
                output::note(&format!("acas cost: {error}"));
                return EXIT_FAILED;
            }
        }
    } else {
        Vec::new()
    };
    let total: u64 = rows.iter().map(|r| r.cost_micros).sum();
    match format {
        ListFormat::Text => {
            let mut text = String::from(
                "day         provider      model                  category   calls cached refused  tokens in/out        cost\n",
            );
            for r in &rows {
                text.push_str(&format!(
                    "{:<11} {:<13} {:<22} {:<10} {:>5} {:>6} {:>7}  {:>8}/{:<8} ${:>9.4}\n",
                    r.day,
                    r.provider,
                    r.model,
                    if r.category.is_empty() { "-" } else { &r.category },
                    r.calls,
                    r.cached,
                    r.refused,
                    r.input_tokens,
                    r.output_tokens,
                    usd(r.cost_micros)
                ));
            }
            text.push_str(&format!("total: ${:.4}", usd(total)));
            output::line(&text);
        }
        ListFormat::Json => {
            let rows: Vec<_> = rows
                .iter()
                .map(|r| {
                    json!({
                        "day": r.day, "provider": r.provider, "model": r.model, "category": r.category,
                        "calls": r.calls, "cached": r.cached, "refused": r.refused,
                        "input_tokens": r.input_tokens, "output_tokens": r.output_tokens,
                        "cost_usd": usd(r.cost_micros),
                    })
                })
                .collect();
            output::line(&json!({ "rows": rows, "total_usd": usd(total) }).to_string());
        }
    }
    EXIT_OK
}
